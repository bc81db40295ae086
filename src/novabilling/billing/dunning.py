"""Dunning: what happens after automatic collection of an invoice fails.

Schedule: retries at +1, +3 and +5 days after the invoice was issued, kept only while
inside the grace window (the plan's ``invoiceGracePeriodDays`` when set, else the tenant
setting ``dunningGraceDays``, else 7 days). A failure with no retry left cancels the
subscription. The payments layer reports a failed charge (``payments.service.Recorded``);
the billing engine calls ``record_failure`` in the same transaction: the invoice goes
FAILED through ``invoices.lifecycle.fail``, the subscription PAST_DUE (or CANCELED) through
``subscriptions.lifecycle``, and the customer is told. A paid invoice is settled by the
invoice lifecycle itself (it also reactivates a PAST_DUE subscription).

The tick (``billing/tick.py``) finds FAILED invoices whose ``next_retry_at`` has passed and
queues ``payments.charge`` again (``attempt`` = retries so far), leasing the invoice for an
hour so a lost job is retried, never duplicated within the lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.invoices import lifecycle as invoice_lifecycle
from novabilling.invoices.models import CANCELED, DRAFT, PAID, Invoice
from novabilling.kit.clock import Clock
from novabilling.kit.timestamps import to_wire
from novabilling.notifications import jobs as emails
from novabilling.plans.models import Plan
from novabilling.subscriptions import lifecycle, outbound_events
from novabilling.subscriptions.models import Subscription

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
    invoice = await session.scalar(
        select(Invoice).where(Invoice.id == invoice_id).with_for_update()
    )
    if invoice is None or invoice.status in (PAID, CANCELED, DRAFT):
        return None
    now = clock.now()
    grace = await _grace_days(session, invoice, tenant_grace_days)
    retry = next_retry(
        invoice.finalized_at or invoice.created_at, invoice.collection_attempts + 1, grace, now
    )
    await invoice_lifecycle.fail(session, invoice, clock=clock, retry_at=retry)
    if invoice.subscription_id is not None:
        await _subscription_after_failure(
            session, tenant_id, invoice.subscription_id, retry=retry, clock=clock
        )
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


async def _subscription_after_failure(
    session: AsyncSession,
    tenant_id: str,
    subscription_id: str,
    *,
    retry: datetime | None,
    clock: Clock,
) -> None:
    """PAST_DUE until the next retry; CANCELED when no retry is left."""
    sub = await session.scalar(
        select(Subscription).where(Subscription.id == subscription_id).with_for_update()
    )
    if sub is None or sub.status == "CANCELED":
        return
    now = clock.now()
    if retry is not None:
        if sub.status != "PAUSED":
            await lifecycle.mark_past_due(session, sub, now=now, next_retry_at=retry)
        return
    ended = await lifecycle.cancel_now(session, sub, now=now, reason="dunning_exhausted")
    outbound_events.publish(tenant_id, sub, ended, clock=clock)
    emails.queue(tenant_id, emails.SUBSCRIPTION_CANCELED, {"subscription_id": sub.id}, key=sub.id)
