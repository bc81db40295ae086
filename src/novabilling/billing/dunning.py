"""Dunning: what happens after automatic collection of an invoice fails or succeeds.

Schedule: retries at +1, +3 and +5 days after the invoice was issued, kept only while
inside the grace window (the plan's ``invoiceGracePeriodDays`` when set, else the tenant
setting ``dunningGraceDays``, else 7 days). A failure with no retry left cancels the
subscription. Every transition goes through ``subscriptions.lifecycle`` and is recorded
in ``subscription_events``.

Hooks for the payments domain (call inside its own transaction; they flush, never commit):

- ``record_failure(session, tenant_id=, invoice_id=, reason=, clock=)`` after a charge
  FAILED: invoice -> FAILED with ``next_retry_at``; subscription -> PAST_DUE (or CANCELED
  when no retry is left); the payment-failed email is queued.
- ``settle_paid(session, tenant_id=, invoice=, clock=, provider=, record_payment=False)``
  after a charge SUCCEEDED: invoice -> PAID, subscription PAST_DUE -> ACTIVE, receipt
  queued. ``record_payment=True`` (mark-paid) also inserts the SUCCEEDED manual Payment.

The tick (``billing/tick.py``) finds FAILED invoices whose ``next_retry_at`` has passed and
queues ``payments.charge`` again (``attempt`` = retries so far), leasing the invoice for an
hour so a lost job is retried, never duplicated within the lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.billing import emails
from novabilling.invoices.models import CANCELED, FAILED, PAID, Invoice
from novabilling.kit.clock import Clock
from novabilling.kit.timestamps import to_wire

log = structlog.get_logger(__name__)

RETRY_OFFSETS_DAYS: tuple[int, ...] = (1, 3, 5)
DEFAULT_GRACE_DAYS = 7
LEASE = timedelta(hours=1)


def next_retry(
    issued_at: datetime, failures: int, grace_days: int, now: datetime
) -> datetime | None:
    """When to retry after ``failures`` failed attempts, or None when none is left."""
    if failures < 1 or failures > len(RETRY_OFFSETS_DAYS):
        return None
    at = issued_at + timedelta(days=RETRY_OFFSETS_DAYS[failures - 1])
    if at > issued_at + timedelta(days=grace_days):
        return None
    return max(at, now)


async def _grace_days(session: AsyncSession, invoice: Invoice, tenant_grace: int | None) -> int:
    if invoice.subscription_id is not None:
        from novabilling.plans.models import Plan
        from novabilling.subscriptions.models import Subscription

        days = await session.scalar(
            select(Plan.invoice_grace_period_days)
            .join(Subscription, Subscription.plan_id == Plan.id)
            .where(Subscription.id == invoice.subscription_id)
        )
        if days:
            return int(days)
    return tenant_grace if tenant_grace is not None else DEFAULT_GRACE_DAYS


async def record_failure(
    session: AsyncSession,
    *,
    tenant_id: str,
    invoice_id: str,
    reason: str | None,
    clock: Clock,
    tenant_grace_days: int | None = None,
) -> Invoice | None:
    """A charge of ``invoice_id`` failed. Returns the invoice (None if gone/settled)."""
    from novabilling.subscriptions import lifecycle, outbound_events
    from novabilling.subscriptions.models import Subscription

    invoice = await session.scalar(
        select(Invoice).where(Invoice.id == invoice_id).with_for_update()
    )
    if invoice is None or invoice.status in (PAID, CANCELED):
        return None
    now = clock.now()
    invoice.collection_attempts += 1
    grace = await _grace_days(session, invoice, tenant_grace_days)
    retry = next_retry(
        invoice.finalized_at or invoice.created_at, invoice.collection_attempts, grace, now
    )
    invoice.status = FAILED
    invoice.next_retry_at = retry
    invoice.updated_at = now
    if invoice.subscription_id is not None:
        sub = await session.scalar(
            select(Subscription).where(Subscription.id == invoice.subscription_id).with_for_update()
        )
        if sub is not None and sub.status != "CANCELED":
            if retry is not None:
                await lifecycle.mark_past_due(session, sub, now=now, next_retry_at=retry)
            else:
                ended = await lifecycle.cancel_now(
                    session, sub, now=now, reason="dunning_exhausted"
                )
                outbound_events.publish(tenant_id, sub, ended, clock=clock)
                emails.queue(
                    tenant_id,
                    emails.SUBSCRIPTION_CANCELED,
                    {"subscription_id": sub.id},
                    key=sub.id,
                )
    await session.flush()
    emails.queue(
        tenant_id,
        emails.PAYMENT_FAILED,
        {
            "invoice_id": invoice.id,
            "reason": reason,
            "next_retry_at": to_wire(retry) if retry else None,
        },
        key=f"{invoice.id}:{invoice.collection_attempts}",
    )
    log.info(
        "billing.payment_failed",
        invoice_id=invoice.id,
        attempts=invoice.collection_attempts,
        next_retry_at=retry.isoformat() if retry else None,
    )
    return invoice


async def settle_paid(
    session: AsyncSession,
    *,
    tenant_id: str,
    invoice: Invoice,
    clock: Clock,
    provider: str = "manual",
    reference: str | None = None,
    record_payment: bool = False,
) -> Invoice:
    """Mark ``invoice`` PAID now; reactivate its PAST_DUE subscription; queue the receipt."""
    now = clock.now()
    invoice.status = PAID
    invoice.paid_at = now
    invoice.next_retry_at = None
    invoice.updated_at = now
    if record_payment:
        from novabilling.payments.models import KIND_MANUAL, SUCCEEDED, Payment

        session.add(
            Payment(
                invoice_id=invoice.id,
                customer_id=invoice.customer_id,
                provider=provider,
                kind=KIND_MANUAL,
                amount_minor=invoice.total_minor,
                currency=invoice.currency,
                status=SUCCEEDED,
                paid_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    if invoice.subscription_id is not None:
        from novabilling.subscriptions import lifecycle
        from novabilling.subscriptions.models import Subscription

        sub = await session.scalar(
            select(Subscription).where(Subscription.id == invoice.subscription_id).with_for_update()
        )
        if sub is not None and sub.status == "PAST_DUE":
            await lifecycle.reactivate(session, sub, now=now)
    await session.flush()
    emails.queue(
        tenant_id,
        emails.PAYMENT_RECEIVED,
        {"invoice_id": invoice.id, "method": provider, "reference": reference},
        key=invoice.id,
    )
    return invoice
