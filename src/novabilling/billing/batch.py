"""The renewal fast path: plain renewals of many subscriptions in one transaction (the
per-subscription path in ``renewals.py`` handles everything else).

"Plain" = ACTIVE or PAST_DUE, period ended, no cancellation due or scheduled, no plan
change scheduled, no pending lines, first period already invoiced, the period end on the
anchor's schedule and not far behind (``renewals.CATCH_UP_WINDOW``). For those,
``lifecycle.advance_period`` amounts to moving
``[current_period_start, current_period_end)`` one period forward and logging a
``renewed`` event. This module only locks the batch, drafts one invoice per subscription
with ``invoices.builder`` (the same inputs as ``renewals.period_inputs``; usage, overrides
and commitments of the whole chunk metered at once by ``metering.meter``), inserts them with
``invoices.lifecycle.issue`` (one number block, one fan-out job) and moves the periods -
all in ONE transaction, so a crash leaves nothing half done and the batch is simply redone.

Anything unexpected (a unique-period conflict with another worker, a row that stopped
being plain) rolls the batch back and hands its subscriptions to the per-subscription path.
Customers with credits to take (``invoice_credits``) are left to that path too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.billing import invoice_credits, taxation
from novabilling.billing.metering import Due, meter
from novabilling.billing.renewals import (
    CATCH_UP_WINDOW,
    IN_ADVANCE,
    TickContext,
    back_billing,
    period_inputs,
)
from novabilling.customers.models import Customer
from novabilling.invoices import builder, lifecycle
from novabilling.kit.ids import new_id
from novabilling.kit.jobs import current_job_buffer
from novabilling.kit.periods import next_period
from novabilling.kit.timestamps import to_wire
from novabilling.subscriptions.models import PendingInvoiceItem, Subscription, SubscriptionEvent

_SUB = cast(Table, Subscription.__table__)
_EVENTS = cast(Table, SubscriptionEvent.__table__)


async def _plain(session: AsyncSession, ids: list[str], ctx: TickContext) -> list[Any]:
    now = ctx.now
    stmt = select(_SUB).where(
        _SUB.c.id.in_(ids),
        _SUB.c.status.in_(("ACTIVE", "PAST_DUE")),
        _SUB.c.current_period_end <= now,
        _SUB.c.cancel_at.is_(None),
        _SUB.c.cancel_at_period_end.is_(False),
        _SUB.c.scheduled_plan_id.is_(None),
    )
    if not back_billing(ctx.tenant):  # far behind: the per-subscription path skips periods
        stmt = stmt.where(_SUB.c.current_period_end > now - CATCH_UP_WINDOW)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list((await session.execute(stmt)).all())
    if not rows:
        return rows
    with_items = set(
        (
            await session.scalars(
                select(PendingInvoiceItem.subscription_id).where(
                    PendingInvoiceItem.subscription_id.in_([r.id for r in rows]),
                    PendingInvoiceItem.invoice_id.is_(None),
                )
            )
        ).all()
    )
    with_credits = await invoice_credits.customers_with_credits(
        session, [r.customer_id for r in rows], now
    )
    return [
        r
        for r in rows
        if r.id not in with_items
        and r.customer_id not in with_credits
        and not (
            r.billing_timing == IN_ADVANCE
            and r.trial_end is None
            and r.current_period_start == r.started_at
        )
    ]


def _renewal(row: Any, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The period a plain renewal bills: the coming one (IN_ADVANCE) or the ended one."""
    if row.billing_timing == IN_ADVANCE:
        return start, end
    return row.current_period_start, row.current_period_end


def _event(row: Any, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "subscription_id": row.id,
        "from_status": row.status,
        "to_status": row.status,
        "reason": "renewed",
        "at": now,
        "data": {
            "previousPeriod": [to_wire(row.current_period_start), to_wire(row.current_period_end)],
            "period": [to_wire(start), to_wire(end)],
        },
    }


async def renew_batch(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, ids: list[str]
) -> tuple[int, set[str]]:
    """Renew the plain subscriptions among ``ids`` in one transaction. Returns how many
    were invoiced and the ids this path did not renew (for the per-subscription path)."""
    now = ctx.now
    async with maker() as session:
        rows = await _plain(session, ids, ctx)
        renewed: list[tuple[Any, datetime, datetime]] = []
        for row in rows:
            try:
                start, end = next_period(
                    row.billing_anchor, row.billing_interval, row.current_period_end
                )
            except ValueError:
                continue
            renewed.append((row, start, end))
        if not renewed:
            await session.rollback()
            return 0, set(ids)
        customers = {
            c.id: c
            for c in (
                await session.scalars(
                    select(Customer).where(Customer.id.in_({r.customer_id for r, _, _ in renewed}))
                )
            ).all()
        }
        dues = []
        for row, _, _ in renewed:
            plan = await ctx.plan(session, row.plan_id)
            dues.append(
                Due(
                    row,
                    (row.current_period_start, row.current_period_end),
                    fee_included=row.billing_timing != IN_ADVANCE,
                    plan_minimum_e4=plan.minimum_commitment_e4 if plan is not None else None,
                )
            )
        metered = await meter(session, dues)  # one aggregation per charge for the chunk
        taxes = await taxation.load(session, [(r.plan_id, r.customer_id) for r, _, _ in renewed])
        drafts = []
        for row, start, end in renewed:
            period = _renewal(row, start, end)
            inputs = period_inputs(
                ctx,
                row,
                plan=await ctx.plan(session, row.plan_id),
                customer=customers.get(row.customer_id),
                period=period,
                fee_period=period,
                amount_minor=row.amount_minor,
                metered=metered[row.id],
                tax=taxes.of(row.plan_id, row.customer_id),
            )
            drafts.append(builder.build(inputs))
        try:
            await lifecycle.issue(
                session,
                drafts,
                tenant_id=ctx.tenant.id,
                clock=ctx.clock,
                charge={
                    n: row.payment_method_id is not None for n, (row, _, _) in enumerate(renewed)
                },
            )
            await session.execute(_EVENTS.insert(), [_event(r, s, e, now) for r, s, e in renewed])
            await session.execute(
                _SUB.update()
                .where(_SUB.c.id == bindparam("b_id"))
                .values(
                    current_period_start=bindparam("b_start"),
                    current_period_end=bindparam("b_end"),
                    updated_at=now,
                ),
                [{"b_id": r.id, "b_start": s, "b_end": e} for r, s, e in renewed],
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            buffer = current_job_buffer()
            if buffer is not None:
                buffer.drop_unstaged()
            return 0, set(ids)
    done = {row.id for row, _, _ in renewed}
    return len(done), set(ids) - done
