"""Invoice wire shapes: request bodies and the dicts routers return (contract invoices.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from novabilling.customers.models import Customer
from novabilling.customers.schemas import CustomerOut, customer_out
from novabilling.invoices.models import Invoice
from novabilling.kit import money, timestamps
from novabilling.kit.money import WireAmount
from novabilling.kit.timestamps import InstantInput
from novabilling.kit.wire import DecimalText, FreeForm, Timestamp, WireModel, WireOut

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class InvoiceItemIn(WireModel):
    description: NonEmpty
    quantity: Annotated[int, Field(ge=1, le=1_000_000_000)]
    unit_amount: WireAmount


class InvoiceCreate(WireModel):
    customer_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    subscription_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    items: Annotated[list[InvoiceItemIn], Field(max_length=500)]
    due_date: InstantInput
    status: str | None = None
    invoice_number: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    currency: str | None = None
    paid_at: InstantInput | None = None
    created_at: InstantInput | None = None


LIST_FILTERS = ("status", "customerId", "subscriptionId", "dateFrom", "dateTo")


def _ts(value: Any) -> str | None:
    return timestamps.to_wire(value) if value is not None else None


def invoice_out(invoice: Invoice, customer: Customer | None = None) -> dict[str, Any]:
    """Invoice object; ``customer`` embedded when given."""
    body: dict[str, Any] = {
        "id": invoice.id,
        "customerId": invoice.customer_id,
        "subscriptionId": invoice.subscription_id,
        "invoiceNumber": invoice.invoice_number,
        "amount": money.to_wire(invoice.total_minor, invoice.currency),
        "currency": invoice.currency,
        "status": invoice.status,
        "dueDate": timestamps.to_wire(invoice.due_date),
        "paidAt": _ts(invoice.paid_at),
        "pdfUrl": invoice.pdf_url,
        "metadata": invoice.metadata_,
        "createdAt": timestamps.to_wire(invoice.created_at),
        "updatedAt": timestamps.to_wire(invoice.updated_at),
    }
    if customer is not None:
        body["customer"] = customer_out(customer)
    return body


def invoice_detail(
    invoice: Invoice,
    customer: Customer,
    *,
    subscription: dict[str, Any] | None,
    payments: list[dict[str, Any]],
) -> dict[str, Any]:
    """GET /api/invoices/{id}: Invoice + customer + subscription + payments."""
    return {**invoice_out(invoice, customer), "subscription": subscription, "payments": payments}


def item_out(description: str, quantity: int, unit_minor: int, currency: str) -> dict[str, Any]:
    """A ``metadata.items`` entry with JSON numbers."""
    return {
        "description": description,
        "quantity": quantity,
        "unitAmount": money.to_number(unit_minor, currency),
    }


class InvoiceOut(WireOut):
    """The Invoice object; ``customer`` where the route embeds it."""

    id: str
    customer_id: str
    subscription_id: str | None
    invoice_number: str | None
    amount: DecimalText
    currency: str
    status: str
    due_date: Timestamp
    paid_at: Timestamp | None
    pdf_url: str | None
    metadata: FreeForm | None
    created_at: Timestamp
    updated_at: Timestamp
    customer: CustomerOut | None = None


class MarkPaidIn(WireModel):
    """Body of POST /api/invoices/{id}/mark-paid (optional; documentation model)."""

    payment_method: str | None = Field(
        default=None, description="How it was paid (free text); default `manual`"
    )


class SendEmailIn(WireModel):
    """Body of POST /api/invoices/{id}/send-email (optional; documentation model)."""

    email: str | None = Field(
        default=None, description="Recipient; default: the customer's email address"
    )


class CheckoutIn(WireModel):
    """Body of POST /api/invoices/{id}/checkout (optional; documentation model)."""

    provider: str | None = Field(
        default=None,
        description="A provider name (`paystack`, `stripe`, `flutterwave`, `mpesa`); "
        "default: the first active provider of the tenant's `settings.providerOrder` for "
        "the invoice's currency, else the highest-priority one that takes the currency",
    )
    callback_url: str | None = Field(
        default=None, description="Where the payer returns after a hosted checkout"
    )
