"""The invoice e-mails (``notifications.jobs``: invoice issued, invoice voided, payment
reminder) and the PDF render job: handlers that reload the invoice and build the message
or the file."""

from __future__ import annotations

from dataclasses import replace
from email.message import EmailMessage
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.invoices.documents import invoice_view, render_and_store
from novabilling.invoices.lifecycle import RENDER_PDF_JOB
from novabilling.invoices.models import FAILED, PENDING, Invoice
from novabilling.kit.jobs import QUEUE_BILLING, QUEUE_EMAILS, JobHandler, PermanentJobError
from novabilling.kit.timestamps import parse_instant
from novabilling.notifications import jobs as emails
from novabilling.notifications import messages
from novabilling.runtime import Runtime
from novabilling.tenancy.profiles import TenantProfile
from novabilling.tenants.mail import email_handler, mailer_for


async def load_invoice(session: AsyncSession, invoice_id: str) -> Invoice:
    invoice = await session.get(Invoice, invoice_id)
    if invoice is None:
        raise PermanentJobError(f"invoice {invoice_id} not found")
    return invoice


async def _invoice_issued(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage:
    invoice = await load_invoice(session, str(data["invoice_id"]))
    pdf = await render_and_store(session, invoice, tenant, runtime.settings.data_dir)
    view, customer = await invoice_view(session, invoice, tenant)
    if data.get("checkout_url"):
        view = replace(view, notes=f"Pay online: {data['checkout_url']}")
    _, sender = mailer_for(runtime, tenant)
    return messages.invoice_issued(
        view, sender=sender, recipient=str(data.get("to") or customer.email), pdf=pdf
    )


async def _invoice_voided(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage:
    invoice = await load_invoice(session, str(data["invoice_id"]))
    view, customer = await invoice_view(session, invoice, tenant)
    _, sender = mailer_for(runtime, tenant)
    return messages.invoice_voided(view, sender=sender, recipient=customer.email)


async def _payment_reminder(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage | None:
    """A reminder of the series (``invoices.reminders``); none once the invoice is paid or
    voided (it was queued while unpaid)."""
    invoice = await load_invoice(session, str(data["invoice_id"]))
    if invoice.status not in (PENDING, FAILED):
        return None
    pdf = await render_and_store(session, invoice, tenant, runtime.settings.data_dir)
    view, customer = await invoice_view(session, invoice, tenant)
    _, sender = mailer_for(runtime, tenant)
    at = data.get("at")  # when the tick found it due: "in 3 days" counts from then
    return messages.payment_reminder(
        view,
        stage=str(data["stage"]),
        now=parse_instant(str(at)) if at else runtime.clock.now(),
        sender=sender,
        recipient=customer.email,
        pdf=pdf,
    )


async def _render_pdf(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> None:
    invoice = await load_invoice(session, str(data["invoice_id"]))
    await render_and_store(session, invoice, tenant, runtime.settings.data_dir)
    return None


def handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    return {
        (QUEUE_EMAILS, emails.INVOICE_ISSUED): email_handler(runtime, _invoice_issued),
        (QUEUE_EMAILS, emails.INVOICE_VOIDED): email_handler(runtime, _invoice_voided),
        (QUEUE_EMAILS, emails.PAYMENT_REMINDER): email_handler(runtime, _payment_reminder),
        (QUEUE_BILLING, RENDER_PDF_JOB): email_handler(runtime, _render_pdf),
    }
