"""One tenant's billing tick: find due work in the database and do it (DESIGN rule 2).

Due work, all read from DB state at ``now``:
1. subscriptions whose period ended, trial ended or scheduled cancellation was reached
   (``status`` live and ``current_period_end <= now`` or ``cancel_at <= now``), taken in
   batches, each done in its own transaction by ``renewals.process``; a subscription
   behind by several periods stays due and is taken again until it is current; one far
   behind (``renewals.CATCH_UP_WINDOW``) is billed for its current period only;
2. (first) first invoices of ACTIVE IN_ADVANCE subscriptions created without a trial;
3. DRAFT subscription invoices whose grace period ended -> finalized;
4. FAILED invoices whose dunning retry is due -> ``payments.charge`` queued (leased);
5. automatic collection that stalled because its job was lost (Redis down at enqueue, a
   worker killed): PENDING invoices of subscriptions with a saved payment method, issued
   more than ``STALLED_AFTER`` ago and never charged -> ``payments.charge`` again; charges
   still PROCESSING whose provider check is due -> ``payments.reconcile`` for them. Job
   ids carry the hour, so each is queued at most once an hour; the charge path is
   idempotent (in-flight and stale-attempt checks, derived provider reference);
6. trials ending within 3 days -> one reminder email (marked by a subscription event);
   unpaid invoices around their due date -> the payment reminder series, each stage once
   (``invoices.reminders``, marked by a ``payment_reminders`` row);
7. wallets past their ``expirationAt`` -> credits voided, TERMINATED
   (``wallets.consumption.expire_due``);
8. outbox rows whose unit of work never pushed them (the process died after its commit)
   -> relayed to the queue (``kit.outbox.relay_stale``).

Test clocks (``billing.test_clocks``): the scheduler's tick never touches the customers
attached to a test clock (nor their subscriptions, invoices and payments); advancing a
clock runs this same tick with ``test_clock_id`` at the clock's time, on that clock's
customers only (every query above scoped by ``scoped``).

Running it twice at the same instant does nothing the second time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.billing import batch, dunning, renewals
from novabilling.billing.renewals import Outcome, TickContext
from novabilling.customers.models import Customer
from novabilling.invoices import lifecycle as invoice_lifecycle
from novabilling.invoices import reminders as payment_reminders
from novabilling.invoices import service as invoice_service
from novabilling.invoices.models import DRAFT, FAILED, PENDING, Invoice
from novabilling.kit.clock import Clock
from novabilling.kit.jobs import QUEUE_PAYMENTS, JobQueue, enqueue_after_commit, job_buffer
from novabilling.kit.outbox import relay_stale
from novabilling.notifications import jobs as emails
from novabilling.payments.models import FAILED as PAYMENT_FAILED
from novabilling.payments.models import KIND_CHARGE, PROCESSING, Payment, PaymentProviderConfig
from novabilling.runtime import Runtime
from novabilling.subscriptions import lifecycle
from novabilling.subscriptions.models import Subscription, SubscriptionEvent
from novabilling.wallets import consumption as wallet_consumption

log = structlog.get_logger(__name__)

BATCH = 1000
CHUNK = 250
RECONCILE_JOB = "payments.reconcile"  # {tenant_id, payment_id}: billing.collection
TRIAL_REMINDER = timedelta(days=3)
# A charge job runs seconds after the invoice is issued; this long without any attempt
# means it was lost.
STALLED_AFTER = timedelta(minutes=15)
_LIVE = ("ACTIVE", "TRIALING", "PAST_DUE", "PAUSED")
_tenant_locks: dict[str, asyncio.Lock] = {}


@dataclass
class TickResult:
    tenant_id: str
    outcomes: dict[str, int] = field(default_factory=dict)
    first_invoices: int = 0
    finalized: int = 0
    retries: int = 0
    recharged: int = 0  # lost charge jobs queued again
    reconciles: int = 0  # unanswered charges handed to payments.reconcile
    reminders: int = 0
    payment_reminders: int = 0
    wallets_expired: int = 0
    relayed: int = 0  # outbox rows pushed late (their unit of work died after commit)

    def add(self, outcome: Outcome) -> None:
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1

    @property
    def invoiced(self) -> int:
        return self.outcomes.get(Outcome.INVOICED.value, 0) + self.first_invoices


async def _can_charge(session: AsyncSession) -> bool:
    """Whether the tenant has an active payment provider (payments domain table)."""
    found = await session.scalar(
        select(PaymentProviderConfig.id).where(PaymentProviderConfig.is_active.is_(True)).limit(1)
    )
    return found is not None


def scoped(stmt: Any, customer_id: Any, test_clock_id: str | None) -> Any:
    """``stmt`` limited to the customers of one test clock, or (None: the scheduler's
    tick) to the customers on no clock."""
    if test_clock_id is None:
        attached = select(Customer.id).where(Customer.test_clock_id.is_not(None))
        return stmt.where(or_(customer_id.is_(None), customer_id.not_in(attached)))
    return stmt.where(
        customer_id.in_(select(Customer.id).where(Customer.test_clock_id == test_clock_id))
    )


def _due(ctx: TickContext):  # type: ignore[no-untyped-def]
    now = ctx.now
    stmt = select(Subscription.id).where(
        Subscription.status.in_(_LIVE),
        or_(
            and_(
                Subscription.status != "PAUSED",
                Subscription.current_period_end <= now,
            ),
            Subscription.cancel_at <= now,
        ),
    )
    return scoped(stmt, Subscription.customer_id, ctx.test_clock_id)


async def _ids(maker: async_sessionmaker[AsyncSession], stmt: object) -> list[str]:
    async with maker() as session:
        return list((await session.scalars(stmt)).all())  # type: ignore[call-overload]


async def _renew_all(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, queue: JobQueue, result: TickResult
) -> None:
    """Plain renewals in bulk transactions (``batch.py``), the rest one by one."""
    while True:
        stmt = _due(ctx).order_by(Subscription.current_period_end, Subscription.id)
        ids = await _ids(maker, stmt.limit(BATCH))
        progress = False
        for offset in range(0, len(ids), CHUNK):
            chunk = ids[offset : offset + CHUNK]
            async with job_buffer(queue) as buffer:
                renewed, rest = await batch.renew_batch(maker, ctx, chunk)
                await buffer.flush()
            for _ in range(renewed):
                result.add(Outcome.INVOICED)
            progress = progress or bool(renewed)
            # one buffer for the chunk: each subscription commits on its own, their jobs
            # are pushed (and their outbox rows dropped) together
            async with job_buffer(queue) as buffer:
                for sub_id in (i for i in chunk if i in rest):
                    outcome = await renewals.process(maker, ctx, sub_id)
                    result.add(outcome)
                    if outcome in (Outcome.INVOICED, Outcome.ADVANCED, Outcome.CANCELED):
                        progress = True
                await buffer.flush()
        if not ids or not progress:
            return


async def _first_invoices(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, queue: JobQueue, result: TickResult
) -> None:
    invoiced = exists().where(
        Invoice.subscription_id == Subscription.id,
        Invoice.period_start == Subscription.current_period_start,
    )
    stmt = select(Subscription.id).where(
        Subscription.status == "ACTIVE",
        Subscription.billing_timing == renewals.IN_ADVANCE,
        Subscription.trial_end.is_(None),
        Subscription.current_period_start == Subscription.started_at,
        ~invoiced,
    )
    if not renewals.back_billing(ctx.tenant):  # far behind: renewed to the current period
        stmt = stmt.where(Subscription.current_period_end > ctx.now - renewals.CATCH_UP_WINDOW)
    stmt = scoped(stmt, Subscription.customer_id, ctx.test_clock_id)
    for sub_id in await _ids(maker, stmt.limit(BATCH)):
        async with job_buffer(queue) as buffer:
            if await renewals.invoice_first_period(maker, ctx, sub_id):
                result.first_invoices += 1
            await buffer.flush()


async def _finalize_drafts(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, queue: JobQueue, result: TickResult
) -> None:
    """Subscription invoices whose grace period ended: the same finalize as the API's."""
    stmt = select(Invoice.id).where(Invoice.status == DRAFT, Invoice.grace_ends_at <= ctx.now)
    stmt = scoped(stmt, Invoice.customer_id, ctx.test_clock_id)
    for invoice_id in await _ids(maker, stmt.limit(BATCH)):
        async with job_buffer(queue) as buffer, maker() as session:
            finalized = await invoice_service.finalize_if_draft(
                session, tenant=ctx.tenant, invoice_id=invoice_id, clock=ctx.clock
            )
            if not finalized:
                continue
            await session.commit()
            await buffer.flush()
            result.finalized += 1


async def _retries(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, queue: JobQueue, result: TickResult
) -> None:
    stmt = select(Invoice.id).where(Invoice.status == FAILED, Invoice.next_retry_at <= ctx.now)
    stmt = scoped(stmt, Invoice.customer_id, ctx.test_clock_id)
    for invoice_id in await _ids(maker, stmt.limit(BATCH)):
        async with job_buffer(queue) as buffer, maker() as session:
            invoice = await session.scalar(
                select(Invoice).where(Invoice.id == invoice_id).with_for_update()
            )
            if invoice is None or invoice.status != FAILED or invoice.next_retry_at is None:
                continue
            if invoice.next_retry_at > ctx.now:
                continue
            invoice.next_retry_at = ctx.now + dunning.LEASE
            invoice_lifecycle.queue_charge(
                ctx.tenant.id, invoice.id, attempt=invoice.collection_attempts
            )
            await session.commit()
            await buffer.flush()
            result.retries += 1


async def _stalled_collections(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, queue: JobQueue, result: TickResult
) -> None:
    again = ctx.now.strftime("%Y%m%d%H")
    attempted = exists().where(
        Payment.invoice_id == Invoice.id,
        or_(Payment.kind == KIND_CHARGE, Payment.status != PAYMENT_FAILED),
    )
    uncharged = (
        select(Invoice.id, Invoice.collection_attempts)
        .join(Subscription, Subscription.id == Invoice.subscription_id)
        .where(
            Invoice.status == PENDING,
            Invoice.finalized_at <= ctx.now - STALLED_AFTER,
            Invoice.total_minor > 0,
            Subscription.payment_method_id.is_not(None),
            ~attempted,
        )
        .order_by(Invoice.finalized_at, Invoice.id)
        .limit(BATCH)
    )
    uncharged = scoped(uncharged, Invoice.customer_id, ctx.test_clock_id)
    unanswered = (
        select(Payment.id, Payment.check_attempts)
        .where(
            Payment.status == PROCESSING,
            Payment.kind == KIND_CHARGE,
            Payment.next_check_at <= ctx.now,
        )
        .order_by(Payment.next_check_at, Payment.id)
        .limit(BATCH)
    )
    unanswered = scoped(unanswered, Payment.customer_id, ctx.test_clock_id)
    async with maker() as session:
        can_charge = await _can_charge(session)
        charges = (await session.execute(uncharged)).all() if can_charge else []
        checks = (await session.execute(unanswered)).all()
    async with job_buffer(queue) as buffer:
        for invoice_id, attempt in charges:
            invoice_lifecycle.queue_charge(ctx.tenant.id, invoice_id, attempt=attempt, again=again)
        for payment_id, check in checks:
            queue_reconcile(ctx.tenant.id, payment_id, check=check, again=again)
        await buffer.flush()
    result.recharged += len(charges)
    result.reconciles += len(checks)


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


async def _trial_reminders(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, queue: JobQueue, result: TickResult
) -> None:
    reminded = exists().where(
        SubscriptionEvent.subscription_id == Subscription.id,
        SubscriptionEvent.reason == "trial_will_end",
    )
    stmt = select(Subscription.id).where(
        Subscription.status == "TRIALING",
        Subscription.trial_end > ctx.now,
        Subscription.trial_end <= ctx.now + TRIAL_REMINDER,
        ~reminded,
    )
    stmt = scoped(stmt, Subscription.customer_id, ctx.test_clock_id)
    for sub_id in await _ids(maker, stmt.limit(BATCH)):
        async with job_buffer(queue) as buffer, maker() as session:
            sub = await session.get(Subscription, sub_id)
            if sub is None or sub.status != "TRIALING":
                continue
            await lifecycle.record_event(
                session,
                sub,
                from_status=sub.status,
                reason="trial_will_end",
                at=ctx.now,
                data={"trialEnd": sub.trial_end.isoformat() if sub.trial_end else None},
            )
            emails.queue(
                ctx.tenant.id, emails.TRIAL_ENDING, {"subscription_id": sub.id}, key=sub.id
            )
            await session.commit()
            await buffer.flush()
            result.reminders += 1


async def _expire_wallets(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, queue: JobQueue, result: TickResult
) -> None:
    while True:
        async with job_buffer(queue) as buffer, maker() as session:
            done = await wallet_consumption.expire_due(
                session, tenant_id=ctx.tenant.id, clock=ctx.clock, now=ctx.now
            )
            await session.commit()
            await buffer.flush()
        result.wallets_expired += done
        if done < wallet_consumption.EXPIRY_BATCH:
            return


async def _payment_reminders(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, queue: JobQueue, result: TickResult
) -> None:
    """The reminder series: rows and e-mails in one transaction; a unique-key race with
    another tick rolls back this one (the next tick sends what is still due). Scoped like
    every step: a test clock's customers get theirs at the clock's time only."""
    async with job_buffer(queue) as buffer, maker() as session:
        try:
            count = await payment_reminders.queue_due(
                session,
                tenant_id=ctx.tenant.id,
                now=ctx.now,
                scope=lambda stmt: scoped(stmt, Invoice.customer_id, ctx.test_clock_id),
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            buffer.discard()
            return
        await buffer.flush()
    result.payment_reminders += count


async def run_tenant_tick(
    runtime: Runtime,
    tenant_id: str,
    *,
    now: datetime | None = None,
    clock: Clock | None = None,
    test_clock_id: str | None = None,
) -> TickResult:
    """Do every piece of due work of one tenant at ``now`` (default: the clock), on the
    customers of no test clock, or (``test_clock_id``, with that clock's ``clock``) on
    the customers of that clock only."""
    assert runtime.jobs is not None
    queue = runtime.jobs
    lock = _tenant_locks.setdefault(tenant_id, asyncio.Lock())
    clock = clock or runtime.clock
    async with lock:
        at = now or clock.now()
        tenant = await runtime.tenant_profiles.get(tenant_id)
        maker = await runtime.engines.sessionmaker(tenant_id)
        ctx = TickContext(tenant=tenant, now=at, clock=clock, test_clock_id=test_clock_id)
        result = TickResult(tenant_id=tenant_id)
        await _first_invoices(maker, ctx, queue, result)
        await _renew_all(maker, ctx, queue, result)
        await _finalize_drafts(maker, ctx, queue, result)
        await _retries(maker, ctx, queue, result)
        await _stalled_collections(maker, ctx, queue, result)
        await _trial_reminders(maker, ctx, queue, result)
        await _payment_reminders(maker, ctx, queue, result)  # scoped like the steps above
        if test_clock_id is None:  # tenant-wide work on wall time: not a clock's
            await _expire_wallets(maker, ctx, queue, result)
            result.relayed = await relay_stale(maker, queue)
    log.info(
        "billing.tick",
        tenant_id=tenant_id,
        test_clock_id=test_clock_id,
        at=at.isoformat(),
        outcomes=result.outcomes,
        first_invoices=result.first_invoices,
        finalized=result.finalized,
        retries=result.retries,
        recharged=result.recharged,
        reconciles=result.reconciles,
        reminders=result.reminders,
        payment_reminders=result.payment_reminders,
        wallets_expired=result.wallets_expired,
        relayed=result.relayed,
    )
    return result
