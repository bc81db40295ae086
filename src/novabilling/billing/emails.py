"""Customer emails, sent from the ``emails`` queue (5 tries, exponential backoff).

Services queue them with ``queue(...)`` after commit; handlers reload everything from the
database (delivery is at least once; a dedup ``job_id`` per event keeps a double enqueue
from sending twice). A failing SMTP server only fails these jobs: billing never waits on
email. The tenant's own ``settings.smtp`` is used when set, else the process mailer.

Job payloads (``emails`` queue, every payload carries ``tenant_id``):

- ``email.invoice_issued``   ``{invoice_id, to?, checkout_url?}`` - with the PDF attached
- ``email.invoice_voided``   ``{invoice_id}``
- ``email.payment_received`` ``{invoice_id, method?, reference?}``
- ``email.payment_failed``   ``{invoice_id, reason?, next_retry_at?}``
- ``email.trial_ending``     ``{subscription_id}``
- ``email.subscription_canceled`` ``{subscription_id}``

``invoice.render_pdf`` ``{tenant_id, invoice_id}`` (``billing`` queue) stores the PDF.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

from novabilling.kit.jobs import (
    QUEUE_BILLING,
    QUEUE_EMAILS,
    Job,
    JobHandler,
    PermanentJobError,
    enqueue_after_commit,
)
from novabilling.kit.timestamps import parse_instant
from novabilling.notifications import messages
from novabilling.notifications.mailer import Mailer, SmtpMailer, sender_from_settings
from novabilling.notifications.smtp_settings import open_settings
from novabilling.notifications.views import Mailbox, PaymentView, SubscriptionView

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from novabilling.invoices.documents import TenantProfile
    from novabilling.runtime import Runtime

log = structlog.get_logger(__name__)

INVOICE_ISSUED = "email.invoice_issued"
INVOICE_VOIDED = "email.invoice_voided"
PAYMENT_RECEIVED = "email.payment_received"
PAYMENT_FAILED = "email.payment_failed"
TRIAL_ENDING = "email.trial_ending"
SUBSCRIPTION_CANCELED = "email.subscription_canceled"
RENDER_PDF = "invoice.render_pdf"
EMAIL_ATTEMPTS = 6


def queue(tenant_id: str, name: str, data: dict[str, Any], *, key: str | None = None) -> None:
    """Queue an email after commit; ``key`` makes it once-only (dedup job id)."""
    job_id = f"{tenant_id}:{name}:{key}" if key else None
    enqueue_after_commit(
        QUEUE_EMAILS,
        name,
        {"tenant_id": tenant_id, **data},
        job_id=job_id,
        attempts=EMAIL_ATTEMPTS,
    )


def queue_invoice_email(
    tenant_id: str,
    invoice_id: str,
    *,
    to: str | None = None,
    checkout_url: str | None = None,
    resend: bool = False,
) -> None:
    data: dict[str, Any] = {"invoice_id": invoice_id}
    if to:
        data["to"] = to
    if checkout_url:
        data["checkout_url"] = checkout_url
    queue(tenant_id, INVOICE_ISSUED, data, key=None if resend else invoice_id)


def queue_render_pdf(tenant_id: str, invoice_id: str) -> None:
    enqueue_after_commit(
        QUEUE_BILLING,
        RENDER_PDF,
        {"tenant_id": tenant_id, "invoice_id": invoice_id},
        job_id=f"{tenant_id}:pdf:{invoice_id}",
        attempts=3,
    )


# ---------------------------------------------------------------------------- handlers


def _mailer(runtime: Runtime, tenant: TenantProfile) -> tuple[Mailer, Mailbox]:
    smtp = tenant.settings.get("smtp")
    if isinstance(smtp, dict) and smtp.get("host"):
        smtp = open_settings(smtp, encryptor=runtime.encryptor, tenant_id=tenant.id)
        return SmtpMailer.from_tenant_settings(smtp), sender_from_settings(smtp) or runtime.sender
    return runtime.mailer, runtime.sender


Work = Callable[
    ["Runtime", "AsyncSession", "TenantProfile", dict[str, Any]], Awaitable[EmailMessage | None]
]


def _handler(runtime: Runtime, work: Work) -> JobHandler:
    async def handle(job: Job) -> None:
        from novabilling.invoices.documents import load_tenant

        tenant_id = str(job.data["tenant_id"])
        tenant = await load_tenant(runtime.central, tenant_id)
        maker = await runtime.engines.sessionmaker(tenant_id)
        async with maker() as session:
            message = await work(runtime, session, tenant, job.data)
            await session.commit()
        if message is None:
            return
        mailer, _ = _mailer(runtime, tenant)
        await mailer.send(message)
        log.info("email.sent", job=job.name, to=str(message["To"]))

    return handle


async def _invoice(session: AsyncSession, invoice_id: str) -> Any:
    from novabilling.invoices.models import Invoice

    invoice = await session.get(Invoice, invoice_id)
    if invoice is None:
        raise PermanentJobError(f"invoice {invoice_id} not found")
    return invoice


async def _invoice_issued(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage:
    from dataclasses import replace

    from novabilling.invoices.documents import invoice_view, render_and_store

    invoice = await _invoice(session, str(data["invoice_id"]))
    pdf = await render_and_store(session, invoice, tenant, runtime.settings.data_dir)
    view, customer = await invoice_view(session, invoice, tenant)
    if data.get("checkout_url"):
        view = replace(view, notes=f"Pay online: {data['checkout_url']}")
    _, sender = _mailer(runtime, tenant)
    return messages.invoice_issued(
        view, sender=sender, recipient=str(data.get("to") or customer.email), pdf=pdf
    )


async def _invoice_voided(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage:
    from novabilling.invoices.documents import invoice_view

    invoice = await _invoice(session, str(data["invoice_id"]))
    view, customer = await invoice_view(session, invoice, tenant)
    _, sender = _mailer(runtime, tenant)
    return messages.invoice_voided(view, sender=sender, recipient=customer.email)


async def _payment_view(
    session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> PaymentView:
    from novabilling.invoices.documents import invoice_view

    invoice = await _invoice(session, str(data["invoice_id"]))
    view, customer = await invoice_view(session, invoice, tenant)
    retry = data.get("next_retry_at")
    return PaymentView(
        tenant=tenant.view,
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
    _, sender = _mailer(runtime, tenant)
    return messages.payment_received(payment, sender=sender, recipient=payment.customer_email)


async def _payment_failed(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage:
    payment = await _payment_view(session, tenant, data)
    _, sender = _mailer(runtime, tenant)
    return messages.payment_failed(payment, sender=sender, recipient=payment.customer_email)


async def _subscription_view(
    session: AsyncSession, tenant: TenantProfile, subscription_id: str
) -> SubscriptionView:
    from novabilling.customers.models import Customer
    from novabilling.plans.models import Plan, PlanPrice
    from novabilling.subscriptions.models import Subscription

    sub = await session.get(Subscription, subscription_id)
    if sub is None:
        raise PermanentJobError(f"subscription {subscription_id} not found")
    customer = await session.get(Customer, sub.customer_id)
    plan = await session.get(Plan, sub.plan_id)
    if customer is None or plan is None:
        raise PermanentJobError(f"subscription {subscription_id} lost its customer or plan")
    amount = await session.scalar(
        select(PlanPrice.amount_minor).where(
            PlanPrice.plan_id == plan.id, PlanPrice.currency == sub.currency.upper()
        )
    )
    return SubscriptionView(
        tenant=tenant.view,
        customer_name=customer.name or customer.email,
        customer_email=customer.email,
        plan_name=plan.name,
        status=sub.status,
        currency=sub.currency,
        amount_minor=int(amount or 0),
        billing_interval=plan.billing_interval.lower(),
        trial_ends_at=sub.trial_end,
        current_period_end=sub.current_period_end,
        canceled_at=sub.canceled_at,
        ends_at=sub.canceled_at or sub.cancel_at,
    )


async def _trial_ending(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage | None:
    view = await _subscription_view(session, tenant, str(data["subscription_id"]))
    if view.status != "TRIALING" or view.trial_ends_at is None:
        return None
    days = max(0, (view.trial_ends_at - runtime.clock.now()).days)
    _, sender = _mailer(runtime, tenant)
    return messages.trial_ending(view, days_left=days, sender=sender, recipient=view.customer_email)


async def _subscription_canceled(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage:
    view = await _subscription_view(session, tenant, str(data["subscription_id"]))
    _, sender = _mailer(runtime, tenant)
    return messages.subscription_canceled(view, sender=sender, recipient=view.customer_email)


async def _render_pdf(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> None:
    from novabilling.invoices.documents import render_and_store

    invoice = await _invoice(session, str(data["invoice_id"]))
    await render_and_store(session, invoice, tenant, runtime.settings.data_dir)
    return None


def handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    return {
        (QUEUE_EMAILS, INVOICE_ISSUED): _handler(runtime, _invoice_issued),
        (QUEUE_EMAILS, INVOICE_VOIDED): _handler(runtime, _invoice_voided),
        (QUEUE_EMAILS, PAYMENT_RECEIVED): _handler(runtime, _payment_received),
        (QUEUE_EMAILS, PAYMENT_FAILED): _handler(runtime, _payment_failed),
        (QUEUE_EMAILS, TRIAL_ENDING): _handler(runtime, _trial_ending),
        (QUEUE_EMAILS, SUBSCRIPTION_CANCELED): _handler(runtime, _subscription_canceled),
        (QUEUE_BILLING, RENDER_PDF): _handler(runtime, _render_pdf),
    }
