"""Wire shapes of /api/payment-providers and /api/payments (contract payment-providers.md,
payments.md). Money leaves as canonical decimal strings via ``kit.money.to_wire``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StringConstraints

from novabilling.invoices.schemas import InvoiceOut
from novabilling.kit import money
from novabilling.kit.timestamps import InstantInput, to_wire
from novabilling.kit.wire import DecimalText, FreeForm, Timestamp, WireModel, WireOut
from novabilling.payments.models import Payment, PaymentProviderConfig

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Priority = Annotated[int, Field(ge=1, le=1_000_000)]


# -- providers ----------------------------------------------------------------------------


class ProviderCreate(WireModel):
    provider_name: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    credentials: dict[str, Any]
    is_active: StrictBool | None = None
    priority: Priority | None = None


class ProviderUpdate(WireModel):
    provider_name: str | None = None  # accepted, ignored (contract)
    credentials: dict[str, Any] | None = None
    is_active: StrictBool | None = None
    priority: Priority | None = None


def provider_out(row: PaymentProviderConfig) -> dict[str, Any]:
    """Never the credentials (DESIGN rule 6)."""
    return {
        "id": row.id,
        "providerName": row.provider_name,
        "isActive": row.is_active,
        "priority": row.priority,
        "createdAt": to_wire(row.created_at),
        "updatedAt": to_wire(row.updated_at),
    }


# -- payments -----------------------------------------------------------------------------


class PaymentCreate(WireModel):
    invoice_id: NonEmpty
    provider: NonEmpty
    amount: money.WireAmount
    currency: Annotated[str, StringConstraints(min_length=1, max_length=3)]
    status: Literal["PROCESSING", "SUCCEEDED", "FAILED", "REFUNDED"]
    provider_transaction_id: Annotated[str, StringConstraints(max_length=255)] | None = None
    failure_reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
    created_at: InstantInput | None = None


class RefundCreate(WireModel):
    amount: money.WireAmount | None = None
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None


PAYMENT_FILTERS = ("status", "provider", "invoiceId", "dateFrom", "dateTo")

InvoiceRenderer = Callable[[Any, Any], dict[str, Any]]


def payment_out(
    payment: Payment, invoice: dict[str, Any] | None = None, *, embed: bool = True
) -> dict[str, Any]:
    """Payment object; ``invoice`` is the already rendered Invoice (+ customer) object."""
    body: dict[str, Any] = {
        "id": payment.id,
        "invoiceId": payment.invoice_id,
        "provider": payment.provider,
        "providerTransactionId": payment.provider_transaction_id,
        "amount": money.to_wire(payment.amount_minor, payment.currency),
        "currency": payment.currency,
        "status": payment.status,
        "failureReason": payment.failure_reason,
        "metadata": payment.metadata_,
        "createdAt": to_wire(payment.created_at),
        "updatedAt": to_wire(payment.updated_at),
    }
    if embed:
        body["invoice"] = invoice
    return body


def checkout_out(payment: Payment) -> dict[str, Any]:
    return {
        "checkoutUrl": payment.checkout_url,
        "paymentId": payment.id,
        "provider": payment.provider,
        "expiresAt": to_wire(payment.expires_at) if payment.expires_at else None,
    }


class ProviderOut(WireOut):
    """A payment provider configuration: never its credentials."""

    id: str
    provider_name: str
    is_active: bool
    priority: int
    created_at: Timestamp
    updated_at: Timestamp


class ProviderTestOut(WireOut):
    success: bool
    message: str


class PaymentOut(WireOut):
    """The Payment object; ``invoice`` (with its ``customer``) where the
    route embeds it."""

    id: str
    invoice_id: str
    provider: str
    provider_transaction_id: str | None
    amount: DecimalText
    currency: str
    status: str
    failure_reason: str | None
    metadata: FreeForm | None
    created_at: Timestamp
    updated_at: Timestamp
    invoice: InvoiceOut | None = None


class CheckoutOut(WireOut):
    """Where to send the payer (`checkoutUrl`), and the pending payment."""

    checkout_url: str | None
    payment_id: str
    provider: str
    expires_at: Timestamp | None
