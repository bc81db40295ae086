"""The payment e-mails (``notifications.jobs``): a receipt when an invoice is paid (the
paid invoice's PDF attached; the reference the payer knows: the M-Pesa receipt number for
M-Pesa, the provider's transaction id otherwise), a notice when a payment failed (with
the next retry, if dunning set one), and a refund notice (this refund, the payment, the
total refunded so far)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.invoices.documents import invoice_view, render_and_store, tenant_view
from novabilling.invoices.emails import load_invoice
from novabilling.kit.jobs import QUEUE_EMAILS, JobHandler, PermanentJobError
from novabilling.kit.timestamps import parse_instant
from novabilling.notifications import jobs as emails
from novabilling.notifications import messages
from novabilling.notifications.views import PaymentView, RefundView
from novabilling.payments.models import FAILED, Payment, Refund
from novabilling.runtime import Runtime
from novabilling.tenancy.profiles import TenantProfile
from novabilling.tenants.mail import email_handler, mailer_for


async def _payment_view(
    session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> PaymentView:
    invoice = await load_invoice(session, str(data["invoice_id"]))
    view, customer = await invoice_view(session, invoice, tenant)
    retry = data.get("next_retry_at")
    payment = await session.get(Payment, data["payment_id"]) if data.get("payment_id") else None
    label, reference = _reference(payment, data.get("reference"))
    return PaymentView(
        tenant=tenant_view(tenant),
        customer_name=view.customer_name,
        customer_email=customer.email,
        invoice_number=invoice.invoice_number,
        currency=invoice.currency,
        amount_minor=invoice.total_minor,
        occurred_at=invoice.paid_at or invoice.updated_at,
        method=str(data.get("method") or "manual"),
        reference=reference,
        reference_label=label,
        failure_reason=data.get("reason"),
        next_retry_at=parse_instant(retry) if retry else None,
        amount_due_minor=view.amount_due_minor,
    )


def _reference(payment: Payment | None, sent: Any) -> tuple[str, str | None]:
    """What the payer can look the payment up by. M-Pesa: the receipt number on their
    phone's confirmation SMS (the callback's ``MpesaReceiptNumber``), never the STK
    request id; others: the provider's transaction id."""
    if payment is None:
        return "Reference", str(sent) if sent else None
    if payment.provider == "mpesa":
        receipt = (payment.metadata_ or {}).get("mpesaReceipt")
        return "M-Pesa receipt", str(receipt) if receipt else None
    return "Reference", payment.provider_transaction_id


async def _payment_received(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage:
    payment = await _payment_view(session, tenant, data)
    invoice = await load_invoice(session, str(data["invoice_id"]))
    pdf = await render_and_store(session, invoice, tenant, runtime.settings.data_dir)
    _, sender = mailer_for(runtime, tenant)
    return messages.payment_received(
        payment, sender=sender, recipient=payment.customer_email, pdf=pdf
    )


async def _payment_failed(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage:
    payment = await _payment_view(session, tenant, data)
    _, sender = mailer_for(runtime, tenant)
    return messages.payment_failed(payment, sender=sender, recipient=payment.customer_email)


async def _refund_issued(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage | None:
    refund = await session.get(Refund, str(data["refund_id"]))
    if refund is None:
        raise PermanentJobError(f"refund {data['refund_id']} not found")
    if refund.status == FAILED:
        return None  # the provider turned it down after all: nothing to announce
    payment = await session.get(Payment, refund.payment_id)
    if payment is None:
        raise PermanentJobError(f"refund {refund.id} lost its payment")
    invoice = await load_invoice(session, payment.invoice_id)
    view, customer = await invoice_view(session, invoice, tenant)
    _, sender = mailer_for(runtime, tenant)
    refund_view = RefundView(
        tenant=tenant_view(tenant),
        customer_name=view.customer_name,
        customer_email=customer.email,
        invoice_number=invoice.invoice_number,
        currency=refund.currency,
        amount_minor=refund.amount_minor,
        refunded_total_minor=payment.refunded_minor,
        paid_minor=payment.amount_minor,
        method=payment.provider,
        refunded_at=refund.created_at,
        reason=refund.reason,
    )
    return messages.refund_issued(refund_view, sender=sender, recipient=customer.email)


def handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    return {
        (QUEUE_EMAILS, emails.PAYMENT_RECEIVED): email_handler(runtime, _payment_received),
        (QUEUE_EMAILS, emails.PAYMENT_FAILED): email_handler(runtime, _payment_failed),
        (QUEUE_EMAILS, emails.REFUND_ISSUED): email_handler(runtime, _refund_issued),
    }
