"""One subscription's due work, in ONE transaction (DESIGN rule 3, STYLE §4 "A billing run").

``process(maker, ctx, subscription_id)`` locks the subscription (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL: a row another worker holds is skipped), asks
``subscriptions.lifecycle.due_action`` what is due and does it:

- ``cancel``: a scheduled cancellation is reached -> CANCELED (IN_ARREARS subscriptions
  first get the invoice of the period they used);
- ``trial_end`` / ``renew``: ``advance_period`` moves it into the next period and the
  period's invoice is created: IN_ADVANCE bills the coming period at the (possibly just
  changed) price, IN_ARREARS the period that ended at the price it had; a trial's end
  bills nothing for IN_ARREARS. Pending proration lines are added and consumed.

The invoice is unique per (subscription, period start): a racing renewal gets the
``IntegrityError``, rolls back everything (period advance included) and stops. Jobs (the
charge, the invoice email) are pushed only after the commit. A SIGKILL before the commit
leaves nothing; the next tick redoes the work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.billing import emails
from novabilling.customers.models import Customer
from novabilling.invoices import numbering
from novabilling.invoices.documents import TenantProfile, invoice_event
from novabilling.invoices.models import DRAFT, PAID, PENDING, Invoice
from novabilling.invoices.service import LineIn, add_lines, net_terms_days
from novabilling.kit.clock import TestClock as FixedClock
from novabilling.kit.jobs import QUEUE_PAYMENTS, enqueue_after_commit
from novabilling.kit.money import to_number
from novabilling.kit.timestamps import to_wire
from novabilling.plans.models import Plan
from novabilling.subscriptions import lifecycle
from novabilling.subscriptions.models import PendingInvoiceItem, Subscription
from novabilling.webhooks import outbound

log = structlog.get_logger(__name__)

CHARGE_JOB = "payments.charge"  # names of novabilling.payments.jobs (CHARGE, RECONCILE)
RECONCILE_JOB = "payments.reconcile"
IN_ADVANCE = "IN_ADVANCE"


class Outcome(StrEnum):
    INVOICED = "invoiced"  # period advanced and invoiced
    ADVANCED = "advanced"  # period advanced, nothing to bill (trial end, in arrears)
    CANCELED = "canceled"
    NOTHING = "nothing"  # not due (any more)
    SKIPPED = "skipped"  # locked by another worker
    CONFLICT = "conflict"  # another worker invoiced this period first


@dataclass
class TickContext:
    """What one tenant tick shares between its subscriptions (read-only caches)."""

    tenant: TenantProfile
    now: datetime
    can_charge: bool = False
    plans: dict[str, Plan] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)

    async def plan(self, session: AsyncSession, plan_id: str) -> Plan | None:
        if plan_id not in self.plans:
            found = await session.get(Plan, plan_id)
            if found is None:
                return None
            self.plans[plan_id] = found
        return self.plans[plan_id]

    async def customer(self, session: AsyncSession, customer_id: str) -> Customer | None:
        if customer_id not in self.customers:
            found = await session.get(Customer, customer_id)
            if found is None:
                return None
            self.customers[customer_id] = found
        return self.customers[customer_id]


def _grace_days(plan: Plan | None, tenant: TenantProfile) -> int:
    if plan is not None and plan.invoice_grace_period_days:
        return plan.invoice_grace_period_days
    return max(0, tenant.setting_int("invoiceGracePeriodDays") or 0)


async def _pending_lines(
    session: AsyncSession, sub: Subscription, now: datetime
) -> list[PendingInvoiceItem]:
    rows = await session.scalars(
        select(PendingInvoiceItem)
        .where(
            PendingInvoiceItem.subscription_id == sub.id,
            PendingInvoiceItem.invoice_id.is_(None),
            PendingInvoiceItem.created_at <= now,
        )
        .order_by(PendingInvoiceItem.created_at, PendingInvoiceItem.id)
    )
    return list(rows.all())


def _describe(plan_name: str, interval: str, start: datetime, end: datetime) -> str:
    return f"{plan_name} ({interval.lower()}) {start:%Y-%m-%d} - {end:%Y-%m-%d}"


async def create_period_invoice(
    session: AsyncSession,
    ctx: TickContext,
    sub: Subscription,
    *,
    period: tuple[datetime, datetime],
    amount_minor: int,
    plan: Plan | None,
) -> Invoice:
    """Insert, number and finalize (or leave DRAFT in a grace period) one period's invoice
    with the pending proration lines. Raises ``IntegrityError`` if the period is invoiced."""
    now = ctx.now
    start, end = period
    plan_name = plan.name if plan is not None else "Subscription"
    lines = [
        LineIn(
            description=_describe(plan_name, sub.billing_interval, start, end),
            quantity=1,
            unit_amount_minor=amount_minor,
            type="plan",
            period_start=start,
            period_end=end,
        )
    ]
    pending = await _pending_lines(session, sub, now)
    lines += [
        LineIn(
            description=item.description,
            quantity=1,
            unit_amount_minor=item.amount_minor,
            type=item.kind,
            period_start=item.period_start,
            period_end=item.period_end,
        )
        for item in pending
    ]
    total = sum(line.amount_minor for line in lines)
    carry = 0
    if total < 0:  # more credit than charge: bill zero, carry the rest to the next invoice
        carry = total
        lines.append(LineIn("Credit carried forward", 1, -total, type="credit_carried"))
        total = 0
    customer = await ctx.customer(session, sub.customer_id)
    terms_customer = customer if customer is not None else Customer(net_payment_terms=None)
    terms = net_terms_days(terms_customer, plan.net_payment_terms if plan else None, ctx.tenant)
    grace = _grace_days(plan, ctx.tenant)
    currency = sub.currency.upper()
    status = PAID if total == 0 else (DRAFT if grace > 0 else PENDING)
    metadata: dict[str, Any] = {
        "planName": plan_name,
        "billingInterval": sub.billing_interval,
        "billingTiming": sub.billing_timing,
        "periodStart": to_wire(start),
        "periodEnd": to_wire(end),
        "items": [
            {
                "description": ln.description,
                "quantity": ln.quantity,
                "unitAmount": to_number(ln.unit_amount_minor, currency),
                "type": ln.type,
            }
            for ln in lines
        ],
        "taxAmount": 0,
    }
    grace_ends = now + timedelta(days=grace) if status == DRAFT else None
    if grace_ends is not None:
        metadata["gracePeriodEndsAt"] = to_wire(grace_ends)
    invoice = Invoice(
        customer_id=sub.customer_id,
        subscription_id=sub.id,
        invoice_number="",
        status=status,
        currency=currency,
        subtotal_minor=total,
        tax_minor=0,
        total_minor=total,
        due_date=now + timedelta(days=terms),
        paid_at=now if status == PAID else None,
        finalized_at=None if status == DRAFT else now,
        period_start=start,
        period_end=end,
        grace_ends_at=grace_ends,
        metadata_=metadata,
        created_at=now,
        updated_at=now,
    )
    # The number last: the counter row stays locked only from here to the commit.
    invoice.invoice_number = await numbering.next_number(session)
    session.add(invoice)
    await session.flush()  # IntegrityError here if the period is already invoiced
    add_lines(session, invoice, lines)
    if pending:
        await session.execute(
            update(PendingInvoiceItem)
            .where(PendingInvoiceItem.id.in_([item.id for item in pending]))
            .values(invoice_id=invoice.id)
            .execution_options(synchronize_session=False)
        )
    if carry:
        session.add(
            PendingInvoiceItem(
                subscription_id=sub.id,
                customer_id=sub.customer_id,
                currency=sub.currency,
                kind="credit_carried",
                description="Credit carried forward",
                amount_minor=carry,
                period_start=start,
                period_end=end,
                created_at=now,
            )
        )
    await session.flush()
    return invoice


def emit(ctx: TickContext, event: str, data: dict[str, Any], key: str) -> None:
    """Outbound tenant webhook, only when the tenant has a ``webhookUrl``."""
    if ctx.tenant.webhook_url:
        outbound.emit(ctx.tenant.id, event, data, clock=FixedClock(ctx.now), key=key)


def _sub_event(sub: Subscription, **extra: Any) -> dict[str, Any]:
    return {"subscriptionId": sub.id, "customerId": sub.customer_id, "planId": sub.plan_id, **extra}


def after_issue(ctx: TickContext, sub: Subscription, invoice: Invoice) -> None:
    """Jobs for a freshly issued invoice, pushed after the commit."""
    if invoice.status != PENDING:
        return
    emails.queue_invoice_email(ctx.tenant.id, invoice.id)
    emit(ctx, "invoice.finalized", invoice_event(invoice), invoice.id)
    if ctx.can_charge and sub.payment_method_id:
        queue_charge(ctx.tenant.id, invoice.id, attempt=0)


def queue_charge(tenant_id: str, invoice_id: str, *, attempt: int, again: str = "") -> None:
    """``payments.charge`` {tenant_id, invoice_id, attempt}: collect with the saved method.
    ``again`` (e.g. an hour stamp) makes a fresh job id to re-queue a job that was lost."""
    job_id = f"{tenant_id}:charge:{invoice_id}:{attempt}" + (f":{again}" if again else "")
    enqueue_after_commit(
        QUEUE_PAYMENTS,
        CHARGE_JOB,
        {"tenant_id": tenant_id, "invoice_id": invoice_id, "attempt": attempt},
        job_id=job_id,
        attempts=3,
    )


def queue_reconcile(tenant_id: str, payment_id: str, *, check: int, again: str) -> None:
    """``payments.reconcile`` {tenant_id, payment_id}: ask the provider what happened to a
    payment still PROCESSING (one job id per check number and ``again`` stamp)."""
    enqueue_after_commit(
        QUEUE_PAYMENTS,
        RECONCILE_JOB,
        {"tenant_id": tenant_id, "payment_id": payment_id},
        job_id=f"{tenant_id}:reconcile:{payment_id}:{check}:{again}",
        attempts=3,
    )


async def _lock(session: AsyncSession, subscription_id: str) -> Subscription | None:
    stmt = select(Subscription).where(Subscription.id == subscription_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return await session.scalar(stmt)


async def _first_period_uninvoiced(session: AsyncSession, sub: Subscription) -> bool:
    """An ACTIVE IN_ADVANCE subscription still in its first period (no trial) whose
    period has no invoice yet (created back-dated, or the tick had not run)."""
    if (
        sub.status != "ACTIVE"
        or sub.billing_timing != IN_ADVANCE
        or sub.trial_end is not None
        or sub.current_period_start != sub.started_at
    ):
        return False
    found = await session.scalar(
        select(Invoice.id).where(
            Invoice.subscription_id == sub.id, Invoice.period_start == sub.current_period_start
        )
    )
    return found is None


async def _apply(session: AsyncSession, ctx: TickContext, sub: Subscription) -> Outcome:
    now = ctx.now
    action = lifecycle.due_action(sub, now=now)
    if action is None:
        return Outcome.NOTHING
    plan = await ctx.plan(session, sub.plan_id)
    if action == "cancel":
        invoice = None
        ended = sub.current_period_end <= now and sub.cancel_at is not None
        if (
            ended
            and sub.billing_timing != IN_ADVANCE
            and sub.status != "TRIALING"
            and sub.cancel_at is not None
            and sub.cancel_at >= sub.current_period_end
        ):
            invoice = await create_period_invoice(
                session,
                ctx,
                sub,
                period=(sub.current_period_start, sub.current_period_end),
                amount_minor=sub.amount_minor,
                plan=plan,
            )
        await lifecycle.cancel_now(session, sub, now=now, reason="canceled_at_period_end")
        if invoice is not None:
            after_issue(ctx, sub, invoice)
        emails.queue(
            ctx.tenant.id, emails.SUBSCRIPTION_CANCELED, {"subscription_id": sub.id}, key=sub.id
        )
        emit(
            ctx,
            "subscription.canceled",
            {"subscriptionId": sub.id, "customerId": sub.customer_id, "cancelAt": to_wire(now)},
            sub.id,
        )
        return Outcome.CANCELED
    was_trial = sub.status == "TRIALING"
    if await _first_period_uninvoiced(session, sub):  # back-dated: bill period 0 first
        first = await create_period_invoice(
            session,
            ctx,
            sub,
            period=(sub.current_period_start, sub.current_period_end),
            amount_minor=sub.amount_minor,
            plan=plan,
        )
        after_issue(ctx, sub, first)
    past = (sub.current_period_start, sub.current_period_end, sub.amount_minor)
    start, end = await lifecycle.advance_period(session, sub, now=now)
    emit(
        ctx,
        "subscription.trial_ended" if was_trial else "subscription.renewed",
        _sub_event(sub, currentPeriodStart=to_wire(start), currentPeriodEnd=to_wire(end)),
        f"{sub.id}:{to_wire(start)}",
    )
    if sub.billing_timing == IN_ADVANCE:
        plan = await ctx.plan(session, sub.plan_id)  # a scheduled change may have applied
        invoice = await create_period_invoice(
            session, ctx, sub, period=(start, end), amount_minor=sub.amount_minor, plan=plan
        )
    elif not was_trial:
        invoice = await create_period_invoice(
            session, ctx, sub, period=(past[0], past[1]), amount_minor=past[2], plan=plan
        )
    else:
        return Outcome.ADVANCED
    after_issue(ctx, sub, invoice)
    return Outcome.INVOICED


async def process(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, subscription_id: str
) -> Outcome:
    """Do one subscription's due work in its own transaction; commit; return what happened.
    Call inside a ``job_buffer`` and flush it after this returns."""
    async with maker() as session:
        try:
            sub = await _lock(session, subscription_id)
            if sub is None:
                return Outcome.SKIPPED
            outcome = await _apply(session, ctx, sub)
            if outcome is Outcome.NOTHING:
                await session.rollback()
                return outcome
            await session.commit()
        except IntegrityError:
            await session.rollback()
            log.info("billing.renewal_conflict", subscription_id=subscription_id)
            from novabilling.kit.jobs import current_job_buffer

            buffer = current_job_buffer()
            if buffer is not None:
                buffer.discard()
            return Outcome.CONFLICT
    return outcome


async def first_invoice(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, subscription_id: str
) -> bool:
    """Invoice the first period of an ACTIVE IN_ADVANCE subscription created without a
    trial (subscriptions.md step 4). Idempotent through the unique period key."""
    async with maker() as session:
        try:
            sub = await _lock(session, subscription_id)
            if sub is None or not await _first_period_uninvoiced(session, sub):
                return False
            plan = await ctx.plan(session, sub.plan_id)
            invoice = await create_period_invoice(
                session,
                ctx,
                sub,
                period=(sub.current_period_start, sub.current_period_end),
                amount_minor=sub.amount_minor,
                plan=plan,
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return False
    after_issue(ctx, sub, invoice)
    return True
