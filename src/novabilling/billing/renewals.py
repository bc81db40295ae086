"""One subscription's due work, in ONE transaction (DESIGN rule 3, STYLE §4 "A billing run").

``process(maker, ctx, subscription_id)`` locks the subscription (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL: a row another worker holds is skipped), asks
``subscriptions.lifecycle.due_action`` what is due and does it:

- ``cancel``: a scheduled cancellation is reached -> CANCELED (IN_ARREARS subscriptions
  first get the invoice of the period they used);
- ``trial_end`` / ``renew``: ``advance_period`` moves it into the next period and the
  period's invoice is issued (contract invoice-composition.md, "When invoices are made"):
  IN_ADVANCE bills the coming period at the (possibly just changed) price, IN_ARREARS the
  period that ended at the price it had; a trial's end bills nothing for IN_ARREARS.

Every invoice is drafted by ``invoices.builder`` from ``period_inputs`` and inserted by
``invoices.lifecycle.issue``; it is unique per (subscription, period start): a racing
renewal gets the ``IntegrityError``, rolls back everything (period advance included) and
stops. Side effects are staged in the tenant outbox with the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.billing import invoice_credits, taxation
from novabilling.billing.metering import Due, Metered, meter
from novabilling.customers.models import Customer
from novabilling.invoices import builder, lifecycle
from novabilling.invoices.models import Invoice
from novabilling.invoices.service import grace_days, net_terms_days
from novabilling.kit.clock import Clock
from novabilling.kit.jobs import current_job_buffer
from novabilling.kit.timestamps import to_wire
from novabilling.notifications import jobs as emails
from novabilling.plans.models import Plan
from novabilling.subscriptions import lifecycle as subscription_lifecycle
from novabilling.subscriptions.models import PendingInvoiceItem, Subscription
from novabilling.tenancy.profiles import TenantProfile
from novabilling.tenants.service import BACK_BILLING
from novabilling.webhooks import outbound

log = structlog.get_logger(__name__)

IN_ADVANCE = "IN_ADVANCE"
# Bounded catch-up (issue 14, defect 5): a subscription whose period ended longer ago than
# this is "far behind" (imported back-dated, or its tenant's billing stopped for weeks);
# it is billed for its current period only, the periods between are skipped without
# invoices (``subscriptions.lifecycle.skip_far_periods``, logged and recorded). Within the
# window every missed period is billed (an outage of the billing engine is made good).
# The tenant setting ``backBilling: true`` bills every missed period instead.
CATCH_UP_WINDOW = timedelta(days=31)


def back_billing(tenant: TenantProfile) -> bool:
    return tenant.settings.get(BACK_BILLING) is True


def far_behind(tenant: TenantProfile, period_end: datetime, now: datetime) -> bool:
    """Whether a period ending at ``period_end`` is too old to bill at ``now``."""
    return period_end <= now - CATCH_UP_WINDOW and not back_billing(tenant)


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
    clock: Clock
    test_clock_id: str | None = None  # a test clock's tick: its customers only
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


async def pending_lines(
    session: AsyncSession, subscription_id: str, now: datetime
) -> tuple[builder.PendingLine, ...]:
    rows = await session.scalars(
        select(PendingInvoiceItem)
        .where(
            PendingInvoiceItem.subscription_id == subscription_id,
            PendingInvoiceItem.invoice_id.is_(None),
            PendingInvoiceItem.created_at <= now,
        )
        .order_by(PendingInvoiceItem.created_at, PendingInvoiceItem.id)
    )
    return tuple(
        builder.PendingLine(
            id=item.id,
            kind=item.kind,
            description=item.description,
            amount_minor=item.amount_minor,
            period_start=item.period_start,
            period_end=item.period_end,
        )
        for item in rows.all()
    )


def period_inputs(
    ctx: TickContext,
    sub: Subscription,
    *,
    plan: Plan | None,
    customer: Customer | None,
    period: tuple[datetime, datetime],
    fee_period: tuple[datetime, datetime] | None,
    amount_minor: int,
    pending: tuple[builder.PendingLine, ...] = (),
    metered: Metered | None = None,
    tax: taxation.TaxInputs = taxation.NO_TAX,
) -> builder.Inputs:
    """The builder's inputs for ``sub``'s invoice of ``period`` (plan fee for
    ``fee_period`` at ``amount_minor``, or the customer's override price; None: no fee),
    with the usage and minimum commitment ``metered``."""
    metered = metered or Metered()
    custom = metered.price_minor is not None
    if metered.price_minor is not None:
        amount_minor = metered.price_minor
    plan_terms = plan.net_payment_terms if plan is not None else None
    customer_terms = customer.net_payment_terms if customer is not None else None
    return builder.Inputs(
        customer_id=sub.customer_id,
        currency=sub.currency.upper(),
        now=ctx.now,
        terms=builder.Terms(
            net_days=net_terms_days(customer_terms, plan_terms, ctx.tenant),
            grace_days=grace_days(plan, ctx.tenant),
        ),
        subscription_id=sub.id,
        plan=builder.Plan(
            name=plan.name if plan is not None else "Subscription",
            billing_interval=sub.billing_interval,
            billing_timing=sub.billing_timing,
            amount_minor=amount_minor,
            custom_pricing=custom,
        ),
        period=period,
        fee_period=fee_period,
        pending=pending,
        usage=metered.usage,
        commitment=metered.commitment,
        taxes=tax.taxes,
        charge_taxes=tax.charge_taxes,
    )


async def issue_period_invoice(
    session: AsyncSession,
    ctx: TickContext,
    sub: Subscription,
    *,
    period: tuple[datetime, datetime],
    amount_minor: int,
    plan: Plan | None,
    fee: bool = True,
    usage_window: tuple[datetime, datetime] | None = None,
    skip_empty: bool = False,
) -> lifecycle.Issued | None:
    """Draft and issue ``sub``'s invoice of ``period`` with its pending lines and the
    usage of ``usage_window`` (the period that ended). Raises ``IntegrityError`` when the
    period is already invoiced. ``skip_empty``: nothing is issued for a draft without
    lines (None)."""
    due = Due(
        sub,
        usage_window,
        fee_included=fee and usage_window == period,
        plan_minimum_e4=plan.minimum_commitment_e4 if plan is not None else None,
    )
    metered = (await meter(session, [due]))[sub.id]
    inputs = period_inputs(
        ctx,
        sub,
        plan=plan,
        customer=await ctx.customer(session, sub.customer_id),
        period=period,
        fee_period=period if fee else None,
        amount_minor=amount_minor,
        pending=await pending_lines(session, sub.id, ctx.now),
        metered=metered,
        tax=(await taxation.load(session, [(sub.plan_id, sub.customer_id)])).of(
            sub.plan_id, sub.customer_id
        ),
    )
    draft = builder.build(await invoice_credits.load(session, inputs))
    if skip_empty and not draft.lines:
        return None
    issued = await lifecycle.issue(
        session,
        [draft],
        tenant_id=ctx.tenant.id,
        clock=ctx.clock,
        charge={0: sub.payment_method_id is not None},
    )
    await invoice_credits.record(session, draft, issued[0].id)
    return issued[0]


def emit(ctx: TickContext, event: str, data: dict[str, object], key: str) -> None:
    """Outbound tenant webhook, only when the tenant has a ``webhookUrl``."""
    if ctx.tenant.webhook_url:
        outbound.emit(ctx.tenant.id, event, data, clock=ctx.clock, key=key)


def _sub_event(sub: Subscription, **extra: object) -> dict[str, object]:
    return {"subscriptionId": sub.id, "customerId": sub.customer_id, "planId": sub.plan_id, **extra}


async def _lock(session: AsyncSession, subscription_id: str) -> Subscription | None:
    stmt = select(Subscription).where(Subscription.id == subscription_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return await session.scalar(stmt)


async def first_period_uninvoiced(session: AsyncSession, sub: Subscription) -> bool:
    """An ACTIVE IN_ADVANCE subscription still in its first period (no trial) whose
    period has no invoice yet (imported back-dated)."""
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


async def _cancel_due(session: AsyncSession, ctx: TickContext, sub: Subscription) -> Outcome:
    now = ctx.now
    ended = sub.current_period_end <= now and sub.cancel_at is not None
    last = (sub.current_period_start, sub.current_period_end)
    if (
        ended
        and sub.status != "TRIALING"
        and sub.cancel_at is not None
        and sub.cancel_at >= sub.current_period_end
    ):
        if sub.billing_timing != IN_ADVANCE:  # the period used: fee and usage
            await issue_period_invoice(
                session,
                ctx,
                sub,
                period=last,
                amount_minor=sub.amount_minor,
                plan=await ctx.plan(session, sub.plan_id),
                usage_window=last,
            )
        else:  # the fee was billed in advance: the usage of the last period, if any
            await issue_period_invoice(
                session,
                ctx,
                sub,
                period=(last[1], last[1]),
                amount_minor=0,
                plan=await ctx.plan(session, sub.plan_id),
                fee=False,
                usage_window=last,
                skip_empty=True,
            )
    await subscription_lifecycle.cancel_now(session, sub, now=now, reason="canceled_at_period_end")
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


async def _apply(session: AsyncSession, ctx: TickContext, sub: Subscription) -> Outcome:
    action = subscription_lifecycle.due_action(sub, now=ctx.now)
    if action is None:
        return Outcome.NOTHING
    if action == "cancel":
        return await _cancel_due(session, ctx, sub)
    if far_behind(ctx.tenant, sub.current_period_end, ctx.now):
        await subscription_lifecycle.skip_far_periods(session, sub, now=ctx.now)
    was_trial = sub.status == "TRIALING"
    plan = await ctx.plan(session, sub.plan_id)
    if await first_period_uninvoiced(session, sub) and not far_behind(
        ctx.tenant, sub.current_period_end, ctx.now
    ):  # imported back-dated: period 0 first
        await issue_period_invoice(
            session,
            ctx,
            sub,
            period=(sub.current_period_start, sub.current_period_end),
            amount_minor=sub.amount_minor,
            plan=plan,
        )
    past = (sub.current_period_start, sub.current_period_end, sub.amount_minor)
    start, end = await subscription_lifecycle.advance_period(session, sub, now=ctx.now)
    emit(
        ctx,
        "subscription.trial_ended" if was_trial else "subscription.renewed",
        _sub_event(sub, currentPeriodStart=to_wire(start), currentPeriodEnd=to_wire(end)),
        f"{sub.id}:{to_wire(start)}",
    )
    if was_trial and sub.status == "ACTIVE":
        emails.queue(ctx.tenant.id, emails.TRIAL_CONVERTED, {"subscription_id": sub.id}, key=sub.id)
    used = None if was_trial else (past[0], past[1])  # a trial's usage is not billed
    if sub.billing_timing == IN_ADVANCE:
        plan = await ctx.plan(session, sub.plan_id)  # a scheduled change may have applied
        await issue_period_invoice(
            session,
            ctx,
            sub,
            period=(start, end),
            amount_minor=sub.amount_minor,
            plan=plan,
            usage_window=used,
        )
    elif not was_trial:
        await issue_period_invoice(
            session,
            ctx,
            sub,
            period=(past[0], past[1]),
            amount_minor=past[2],
            plan=plan,
            usage_window=used,
        )
    else:
        return Outcome.ADVANCED
    return Outcome.INVOICED


async def invoice_first_period(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, subscription_id: str
) -> bool:
    """Invoice the first period of an ACTIVE IN_ADVANCE subscription that has none
    (imported back-dated; new ones are invoiced in the transaction that creates them).
    Idempotent through the unique period key."""
    async with maker() as session:
        try:
            sub = await _lock(session, subscription_id)
            if sub is None or not await first_period_uninvoiced(session, sub):
                return False
            if far_behind(ctx.tenant, sub.current_period_end, ctx.now):
                return False  # the renewal skips to the current period and bills it
            await issue_period_invoice(
                session,
                ctx,
                sub,
                period=(sub.current_period_start, sub.current_period_end),
                amount_minor=sub.amount_minor,
                plan=await ctx.plan(session, sub.plan_id),
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            buffer = current_job_buffer()
            if buffer is not None:
                buffer.drop_unstaged()
            return False
    return True


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
            buffer = current_job_buffer()
            if buffer is not None:
                buffer.drop_unstaged()
            return Outcome.CONFLICT
    return outcome
