"""The payment e-mails (``notifications.jobs``): a receipt when an invoice is paid, a
notice when a payment failed (with the next retry, if dunning set one)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.invoices.documents import invoice_view, tenant_view
from novabilling.invoices.emails import load_invoice
from novabilling.kit.jobs import QUEUE_EMAILS, JobHandler
from novabilling.kit.timestamps import parse_instant
from novabilling.notifications import jobs as emails
from novabilling.notifications import messages
from novabilling.notifications.views import PaymentView
from novabilling.runtime import Runtime
from novabilling.tenancy.profiles import TenantProfile
from novabilling.tenants.mail import email_handler, mailer_for


async def _payment_view(
    session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> PaymentView:
    invoice = await load_invoice(session, str(data["invoice_id"]))
    view, customer = await invoice_view(session, invoice, tenant)
    retry = data.get("next_retry_at")
    return PaymentView(
        tenant=tenant_view(tenant),
        customer_name=view.customer_name,
        customer_email=customer.email,
        invoice_number=invoice.invoice_number,
        currency=invoice.currency,
        amount_minor=invoice.total_minor,
        occurred_at=invoice.paid_at or invoice.updated_at,
        method=str(data.get("method") or "manual"),
        reference=data.get("reference"),
        failure_reason=data.get("reason"),
        next_retry_at=parse_instant(retry) if retry else None,
        amount_due_minor=view.amount_due_minor,
    )


async def _payment_received(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage:
    payment = await _payment_view(session, tenant, data)
    _, sender = mailer_for(runtime, tenant)
    return messages.payment_received(payment, sender=sender, recipient=payment.customer_email)


async def _payment_failed(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage:
    payment = await _payment_view(session, tenant, data)
    _, sender = mailer_for(runtime, tenant)
    return messages.payment_failed(payment, sender=sender, recipient=payment.customer_email)


def handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    return {
        (QUEUE_EMAILS, emails.PAYMENT_RECEIVED): email_handler(runtime, _payment_received),
        (QUEUE_EMAILS, emails.PAYMENT_FAILED): email_handler(runtime, _payment_failed),
    }
