"""Interim usage invoices inside a running period (contract charges.md "Billing timing",
"Progressive billing"; invoice-composition.md "Interim invoices").

The debounced ``usage.check`` job queued by the event intake runs ``check``: for the
subscription's running period P = [S, E) it prices the usage of [S, now) (overrides
applied, minimums not) and subtracts what earlier invoices of P already billed:

- IN_ADVANCE charges: every positive un-billed amount is billed now;
- IN_ARREARS charges, when the plan has a ``progressiveBillingThreshold`` > 0: if their
  positive un-billed amounts reach the threshold, they are billed now too and the
  subscription's ``lastProgressiveBillingAt`` is set.

The interim invoice holds only ``usage`` lines (then taxes and wallet credits), never the
plan fee, a true-up, coupons or add-ons; ``metadata.progressive`` is true and
``periodStart``/``periodEnd`` name P, outside the one-per-period key. Its usage lines carry
P's start, so the period invoice (and any later interim one) bills only what is still
un-billed: nothing twice. The subscription row is locked for the whole check, which
serialises it with the renewal.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.billing import invoice_credits, taxation
from novabilling.billing.metering import Metered, usage_lines
from novabilling.billing.renewals import TickContext, period_inputs
from novabilling.invoices import builder, lifecycle
from novabilling.invoices.billed import billed_for_periods
from novabilling.kit.jobs import job_buffer
from novabilling.plans.models import Plan
from novabilling.runtime import Runtime
from novabilling.subscriptions.models import Subscription
from novabilling.usage.models import IN_ADVANCE, IN_ARREARS
from novabilling.usage.rating import Subject, minor_of_e4, rate

__all__ = ["check", "interim_draft"]

log = structlog.get_logger(__name__)


async def _lock(session: AsyncSession, subscription_id: str) -> Subscription | None:
    stmt = select(Subscription).where(Subscription.id == subscription_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def interim_draft(
    session: AsyncSession, ctx: TickContext, sub: Subscription, plan: Plan | None
) -> tuple[builder.Draft | None, bool]:
    """The interim invoice due now for ``sub`` (None: nothing to bill) and whether it
    bills IN_ARREARS usage past the progressive threshold."""
    now = ctx.now
    period = (sub.current_period_start, sub.current_period_end)
    if sub.status != "ACTIVE" or not period[0] < now < period[1]:
        return None, False
    currency = sub.currency.upper()
    subject = Subject(
        subscription_id=sub.id,
        customer_id=sub.customer_id,
        plan_id=sub.plan_id,
        currency=currency,
        window=(period[0], now),
        started_at=sub.started_at,
    )
    rated = (await rate(session, [subject], minimums=False))[sub.id]
    billed = (await billed_for_periods(session, [(sub.id, period[0])]))[(sub.id, period[0])]
    advance = [
        line
        for line in usage_lines([r for r in rated if r.timing == IN_ADVANCE], billed, period)
        if line.amount_minor > 0
    ]
    threshold_e4 = plan.progressive_billing_threshold_e4 if plan is not None else None
    arrears: list[builder.UsageCharge] = []
    if threshold_e4:
        candidates = [
            line
            for line in usage_lines([r for r in rated if r.timing == IN_ARREARS], billed, period)
            if line.amount_minor > 0
        ]
        if sum(line.amount_minor for line in candidates) >= minor_of_e4(threshold_e4, currency):
            arrears = candidates
    lines = tuple(advance + arrears)
    if not lines:
        return None, False
    customer = await ctx.customer(session, sub.customer_id)
    tax = (await taxation.load(session, [(sub.plan_id, sub.customer_id)])).of(
        sub.plan_id, sub.customer_id
    )
    inputs = period_inputs(
        ctx,
        sub,
        plan=plan,
        customer=customer,
        period=period,
        fee_period=None,
        amount_minor=0,
        metered=Metered(usage=lines),
        tax=tax,
    )
    inputs = await invoice_credits.load(session, replace(inputs, interim=True))
    return builder.build(inputs), bool(arrears)


async def check(
    runtime: Runtime, tenant_id: str, subscription_id: str, *, now: datetime | None = None
) -> lifecycle.Issued | None:
    """Issue ``subscription_id``'s interim invoice if one is due (job ``usage.check``)."""
    assert runtime.jobs is not None
    tenant = await runtime.tenant_profiles.get(tenant_id)
    ctx = TickContext(tenant=tenant, now=now or runtime.clock.now(), clock=runtime.clock)
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with job_buffer(runtime.jobs) as buffer:
        async with maker() as session:
            sub = await _lock(session, subscription_id)
            if sub is None:
                return None
            plan = await ctx.plan(session, sub.plan_id)
            draft, progressive = await interim_draft(session, ctx, sub, plan)
            if draft is None:
                await session.rollback()
                return None
            [issued] = await lifecycle.issue(
                session,
                [draft],
                tenant_id=tenant_id,
                clock=runtime.clock,
                charge={0: sub.payment_method_id is not None},
            )
            await invoice_credits.record(session, draft, issued.id)
            if progressive:
                sub.last_progressive_billing_at = ctx.now
            await session.commit()
        await buffer.flush()
    log.info(
        "usage.interim_invoiced",
        subscription_id=subscription_id,
        invoice_id=issued.id,
        progressive=progressive,
    )
    return issued
