"""Test clocks, billed (Stripe-like; README "Test clocks").

A customer created with ``testClockId`` lives on that clock: its requests (customer and
subscription creation, cancel, pause, resume, plan change) happen at the clock's frozen
time, the collection of its charges and dunning use that time too
(``clock_for_customer`` / ``clock_for_subscription`` / ``clock_for_invoice``), and the
scheduler's tick never touches it (``tick.scoped``).

``advance`` moves the clock forward and does, for the clock's customers only, what the
scheduler would have done meanwhile: it runs the ONE billing tick (``tick.run_tenant_tick``
with the clock's id and time) at each instant where work falls due - a period end, a
scheduled cancellation, a trial reminder, a grace period's end, a dunning retry, a
provider check - in order, and once at the target time. At most ``MAX_TICKS`` ticks per
advance: instants closer together than a ``MAX_TICKS``-th of the span are done by one tick,
as the scheduler does after a stall (every period still billed, within the catch-up
window). Jobs the ticks queue (e-mails, charges) run on the worker as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.billing import accounts, tick
from novabilling.customers.models import Customer
from novabilling.invoices.models import DRAFT, FAILED, Invoice
from novabilling.kit.clock import Clock, FixedClock
from novabilling.kit.pagination import envelope
from novabilling.payments.models import KIND_CHARGE, PROCESSING, Payment
from novabilling.runtime import Runtime
from novabilling.subscriptions.models import Subscription
from novabilling.testclocks import service
from novabilling.testclocks.models import TestClockRow
from novabilling.testclocks.schemas import TestClockCreate, clock_out
from novabilling.webhooks import outbound

log = structlog.get_logger(__name__)

MAX_TICKS = 1000
_RUNNING = ("ACTIVE", "TRIALING", "PAST_DUE")


# --- the time of an attached object ------------------------------------------------------


async def _frozen(session: AsyncSession, clock_id: str | None, default: Clock) -> Clock:
    if clock_id is None:
        return default
    frozen = await session.scalar(
        select(TestClockRow.frozen_time).where(TestClockRow.id == clock_id)
    )
    return FixedClock(frozen) if frozen is not None else default


async def clock_for_customer(session: AsyncSession, customer_id: str, default: Clock) -> Clock:
    """The customer's test clock (frozen at its time), or ``default``."""
    clock_id = await session.scalar(
        select(Customer.test_clock_id).where(Customer.id == customer_id)
    )
    return await _frozen(session, clock_id, default)


async def clock_for_subscription(
    session: AsyncSession, subscription_id: str, default: Clock
) -> Clock:
    clock_id = await session.scalar(
        select(Customer.test_clock_id)
        .join(Subscription, Subscription.customer_id == Customer.id)
        .where(Subscription.id == subscription_id)
    )
    return await _frozen(session, clock_id, default)


async def clock_for_invoice(session: AsyncSession, invoice_id: str, default: Clock) -> Clock:
    clock_id = await session.scalar(
        select(Customer.test_clock_id)
        .join(Invoice, Invoice.customer_id == Customer.id)
        .where(Invoice.id == invoice_id)
    )
    return await _frozen(session, clock_id, default)


# --- requests ----------------------------------------------------------------------------


async def _counts(session: AsyncSession, clock_ids: list[str]) -> dict[str, int]:
    rows = await session.execute(
        select(Customer.test_clock_id, func.count())
        .where(Customer.test_clock_id.in_(clock_ids))
        .group_by(Customer.test_clock_id)
    )
    return {str(clock_id): int(n) for clock_id, n in rows.all()}


async def create(session: AsyncSession, *, body: TestClockCreate, clock: Clock) -> dict[str, Any]:
    row = await service.create_clock(session, body=body, clock=clock)
    return clock_out(row, customers=0)


async def get(session: AsyncSession, clock_id: str) -> dict[str, Any]:
    row = await service.get_clock(session, clock_id)
    counts = await _counts(session, [row.id])
    return clock_out(row, customers=counts.get(row.id, 0))


async def page(session: AsyncSession, *, page: int, limit: int) -> dict[str, Any]:
    rows, total = await service.clocks_page(session, page=page, limit=limit)
    counts = await _counts(session, [r.id for r in rows])
    data = [clock_out(r, customers=counts.get(r.id, 0)) for r in rows]
    return envelope(data, total, page, limit)


async def delete_clock(
    session: AsyncSession,
    clock_id: str,
    *,
    tenant_id: str,
    clock: Clock,
    data_dir: Path | None = None,
) -> int:
    """Delete the clock and everything attached to it (its customers with their
    subscriptions, invoices and payments, as ``DELETE /api/customers/{id}`` deletes them,
    ACTIVE subscriptions included). Returns how many customers went."""
    row = await service.get_clock(session, clock_id, for_update=True)
    customers = list(
        (await session.scalars(select(Customer).where(Customer.test_clock_id == row.id))).all()
    )
    for customer in customers:
        await accounts.delete_blocker(session, customer.id)  # row locks, in the engine's order
        await accounts.delete_for_customer(session, customer.id, data_dir=data_dir)
        data = {
            "customerId": customer.id,
            "externalId": customer.external_id,
            "email": customer.email,
        }
        outbound.emit(tenant_id, "customer.deleted", data, clock=clock, key=customer.id)
    await session.execute(delete(Customer).where(Customer.test_clock_id == row.id))
    await service.delete_clock(session, row)
    return len(customers)


# --- advancing ---------------------------------------------------------------------------


@dataclass
class Run:
    ticks: int = 0
    invoiced: int = 0
    renewals: dict[str, int] = field(default_factory=dict)
    finalized: int = 0
    retries: int = 0
    reminders: int = 0

    def add(self, result: tick.TickResult) -> None:
        self.ticks += 1
        self.invoiced += result.invoiced
        for name, count in result.outcomes.items():
            self.renewals[name] = self.renewals.get(name, 0) + count
        self.finalized += result.finalized
        self.retries += result.retries
        self.reminders += result.reminders

    def out(self) -> dict[str, Any]:
        return {
            "ticks": self.ticks,
            "invoiced": self.invoiced,
            "renewals": dict(sorted(self.renewals.items())),
            "finalized": self.finalized,
            "retries": self.retries,
            "reminders": self.reminders,
        }


async def next_due(
    maker: async_sessionmaker[AsyncSession], clock_id: str, *, after: datetime
) -> datetime | None:
    """The first instant after ``after`` at which the tick has work for the clock's
    customers (None: nothing scheduled)."""
    attached = select(Customer.id).where(Customer.test_clock_id == clock_id)
    mine = Subscription.customer_id.in_(attached)
    candidates = [
        select(func.min(Subscription.current_period_end)).where(
            mine, Subscription.status.in_(_RUNNING), Subscription.current_period_end > after
        ),
        select(func.min(Subscription.cancel_at)).where(
            mine, Subscription.status != "CANCELED", Subscription.cancel_at > after
        ),
        select(func.min(Subscription.trial_end)).where(
            mine,
            Subscription.status == "TRIALING",
            Subscription.trial_end > after + tick.TRIAL_REMINDER,
        ),
        select(func.min(Invoice.grace_ends_at)).where(
            Invoice.customer_id.in_(attached),
            Invoice.status == DRAFT,
            Invoice.grace_ends_at > after,
        ),
        select(func.min(Invoice.next_retry_at)).where(
            Invoice.customer_id.in_(attached),
            Invoice.status == FAILED,
            Invoice.next_retry_at > after,
        ),
        select(func.min(Payment.next_check_at)).where(
            Payment.customer_id.in_(attached),
            Payment.status == PROCESSING,
            Payment.kind == KIND_CHARGE,
            Payment.next_check_at > after,
        ),
    ]
    found: list[datetime] = []
    async with maker() as session:
        for n, stmt in enumerate(candidates):
            value = await session.scalar(stmt)
            if value is not None:
                found.append(value - tick.TRIAL_REMINDER if n == 2 else value)
    return min(found, default=None)


async def advance(
    runtime: Runtime, *, tenant_id: str, clock_id: str, target: datetime
) -> dict[str, Any]:
    """Move the clock to ``target``, billing its customers on the way (module docstring).
    400 naming ``frozenTime`` for a target not after the clock's time or more than two
    years later; 409 while another advance of the clock runs."""
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        _row, start = await service.begin_advance(
            session, clock_id, target=target, clock=runtime.clock
        )
        await session.commit()
    run = Run()
    least_step = (target - start) / MAX_TICKS
    at = start
    try:
        while True:
            result = await tick.run_tenant_tick(
                runtime, tenant_id, now=at, clock=FixedClock(at), test_clock_id=clock_id
            )
            run.add(result)
            if at >= target:
                break
            async with maker() as session:  # the clock's time, for jobs running meanwhile
                await service.move(session, clock_id, at=at, clock=runtime.clock)
                await session.commit()
            due = await next_due(maker, clock_id, after=at)
            at = target if due is None else min(target, max(due, at + least_step))
    finally:
        async with maker() as session:
            row = await service.move(session, clock_id, at=at, clock=runtime.clock, done=True)
            counts = await _counts(session, [row.id])
            out = clock_out(row, customers=counts.get(row.id, 0))
            await session.commit()
    log.info("test_clock.advance", test_clock_id=clock_id, **run.out())
    return {**out, "run": run.out()}
