"""Wire shapes of /api/credit-notes (contract credit-notes.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import StringConstraints

from novabilling.customers.models import Customer
from novabilling.invoices.models import CreditNote, Invoice
from novabilling.kit import money, timestamps
from novabilling.kit.money import WireAmount
from novabilling.kit.timestamps import InstantInput
from novabilling.kit.wire import DecimalText, FreeForm, Timestamp, WireModel, WireOut

Reason = Literal["DUPLICATE", "PRODUCT_UNSATISFACTORY", "ORDER_CHANGE", "OTHER"]
Status = Literal["DRAFT", "FINALIZED", "VOIDED"]
Id = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=3)]


class CreditNoteCreate(WireModel):
    invoice_id: Id
    customer_id: Id
    amount: WireAmount
    currency: Code
    reason: Reason
    metadata: dict[str, Any] | None = None
    status: Status = "DRAFT"
    created_at: InstantInput | None = None


class CreditWalletIn(WireModel):
    """Which wallet (default: the customer's oldest ACTIVE one in the note's currency)."""

    wallet_id: Id | None = None


class CreditNotePatch(WireModel):
    amount: WireAmount | None = None
    reason: Reason | None = None
    metadata: dict[str, Any] | None = None

    def explicit_nulls(self) -> list[str]:
        return [
            n
            for n in ("amount", "reason")
            if n in self.model_fields_set and getattr(self, n) is None
        ]


def invoice_embed(invoice: Invoice, *fields: str) -> dict[str, Any]:
    """``{id, invoiceNumber, amount}`` plus the named extra fields (currency, status)."""
    body: dict[str, Any] = {
        "id": invoice.id,
        "invoiceNumber": invoice.invoice_number,
        "amount": money.to_wire(invoice.total_minor, invoice.currency),
    }
    if "currency" in fields:
        body["currency"] = invoice.currency
    if "status" in fields:
        body["status"] = invoice.status
    return body


def credit_note_out(
    note: CreditNote, *, customer: Customer | None, invoice: dict[str, Any] | None
) -> dict[str, Any]:
    """The credit note object; ``refundedAmount`` / ``refundedAt`` are additive (the part
    of a note on a PAID invoice refunded to the provider)."""
    body: dict[str, Any] = {
        "id": note.id,
        "invoiceId": note.invoice_id,
        "customerId": note.customer_id,
        "amount": money.to_wire(note.amount_minor, note.currency),
        "currency": note.currency,
        "reason": note.reason,
        "status": note.status,
        "metadata": note.metadata_,
        "refundedAmount": money.to_wire(note.refunded_minor or 0, note.currency),
        "refundedAt": timestamps.to_wire(note.refunded_at) if note.refunded_at else None,
        "creditedAmount": money.to_wire(note.credited_minor or 0, note.currency),
        "creditedAt": timestamps.to_wire(note.credited_at) if note.credited_at else None,
        "creditedWalletId": note.credited_wallet_id,
        "createdAt": timestamps.to_wire(note.created_at),
        "updatedAt": timestamps.to_wire(note.updated_at),
        "customer": (
            {"id": customer.id, "name": customer.name, "email": customer.email}
            if customer is not None
            else None
        ),
    }
    if invoice is not None:
        body["invoice"] = invoice
    return body


class CreditNoteInvoiceOut(WireOut):
    """The invoice a credit note is on (``currency`` and ``status`` on some reads)."""

    id: str
    invoice_number: str | None
    amount: DecimalText
    currency: str | None = None
    status: str | None = None


class CreditNoteCustomerOut(WireOut):
    id: str
    name: str | None
    email: str


class CreditNoteOut(WireOut):
    """A credit note; ``refundedAmount`` is the part refunded to the provider."""

    id: str
    invoice_id: str
    customer_id: str
    amount: DecimalText
    currency: str
    reason: str | None
    status: str
    metadata: FreeForm | None
    refunded_amount: DecimalText
    refunded_at: Timestamp | None
    credited_amount: DecimalText
    credited_at: Timestamp | None
    credited_wallet_id: str | None
    created_at: Timestamp
    updated_at: Timestamp
    customer: CreditNoteCustomerOut | None
    invoice: CreditNoteInvoiceOut | None = None
