"""Collecting money, orchestrated: the payments layer talks to providers and records their
answers; the billing engine applies dunning to a failed automatic charge in the same
transaction. No provider call is made while a transaction is open.

- ``collect`` (``payments.charge`` {tenant_id, invoice_id, attempt}): charge the saved
  methods (``payments.failover.begin_next`` -> ``charge.send_charge`` -> ``record``),
  the next provider after a decline or no answer; dunning once every eligible provider
  failed (``failover.after_failure``).
- ``reconcile`` (``payments.reconcile`` {tenant_id, payment_id?}): ask the provider about
  PROCESSING payments whose check is due, and about PENDING refunds; a charge that never
  gets an answer fails as ``unconfirmed`` and failover / dunning acts.
- ``process_inbox`` (``webhooks.process`` / ``webhooks.process_batch``): an inbound
  webhook stored in the central inbox -> confirm with the provider -> record.
- ``refund_overpayment`` (``payments.refund_overpayment`` {tenant_id, payment_id}).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.billing import dunning, test_clocks
from novabilling.errors import BusinessRule
from novabilling.invoices import lifecycle as invoice_lifecycle
from novabilling.payments import charge, failover, provider_order, refunds, service
from novabilling.payments.credentials import ProviderHandle, provider_factory
from novabilling.payments.inbound import EVENT_KEY, split_reference
from novabilling.payments.models import PROCESSING, Payment
from novabilling.payments.providers.base import EventKind, Outcome, ProviderError, Transaction
from novabilling.runtime import Runtime
from novabilling.tenancy.models import WebhookInbox

log = structlog.get_logger(__name__)


async def _order(runtime: Runtime, tenant_id: str) -> failover.Order:
    return await provider_order.for_tenant(provider_factory(runtime), tenant_id)


async def record_answer(
    runtime: Runtime,
    *,
    tenant_id: str,
    payment_id: str,
    txn: Transaction,
) -> service.Recorded | None:
    """Step 3 of every collection: the answer recorded and, for a failed automatic
    charge, what follows (``failover.after_failure``) in the same commit: dunning once
    every eligible provider failed, else the next provider - tried by the calling chain
    (``collect``) and by a ``payments.charge`` job queued here, which carries on when the
    answer came through reconcile or a webhook, or when the chain's worker died."""
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        recorded = await charge.record(
            session,
            tenant_id=tenant_id,
            payment_id=payment_id,
            txn=txn,
            encryptor=runtime.encryptor,
            clock=runtime.clock,
        )
        if recorded is not None and recorded.charge_failed:
            await _after_failure(runtime, session, tenant_id, payment_id)
        await session.commit()
    return recorded


async def _after_failure(
    runtime: Runtime, session: AsyncSession, tenant_id: str, payment_id: str
) -> None:
    payment = await service.get_payment(session, payment_id=payment_id)
    step, invoice = await failover.after_failure(
        session,
        tenant_id=tenant_id,
        payment=payment,
        factory=provider_factory(runtime),
        order=await _order(runtime, tenant_id),
    )
    log.info("payment.charge_failed_next", payment_id=payment_id, next=step.value)
    if step is failover.Next.EXHAUSTED:
        tenant = await runtime.tenant_profiles.get(tenant_id)
        # a customer on a test clock: the retry schedule runs on the clock's time
        clock = await test_clocks.clock_for_invoice(session, payment.invoice_id, runtime.clock)
        await dunning.record_failure(
            session,
            tenant_id=tenant_id,
            invoice_id=payment.invoice_id,
            reason=payment.failure_reason,
            clock=clock,
            tenant_grace_days=tenant.setting_int("dunningGraceDays"),
        )
    elif step is failover.Next.CONTINUE and invoice is not None:
        # Also from a chain, which goes on by itself: should its worker die here, the job
        # carries on (it starts nothing while a charge is in flight).
        invoice_lifecycle.queue_charge(
            tenant_id, invoice.id, attempt=invoice.collection_attempts, again=f"after:{payment_id}"
        )


MAX_CHAIN = 16  # providers tried by one job, at most (there are seven)


async def collect(
    runtime: Runtime, *, tenant_id: str, invoice_id: str, attempt: int | None = None
) -> service.Recorded | None:
    """Charge the invoice's saved methods, provider after provider while they decline or
    do not answer (``payments.failover``); returns the last answer recorded."""
    maker = await runtime.engines.sessionmaker(tenant_id)
    order = await _order(runtime, tenant_id)
    passed: frozenset[str] = frozenset()  # our own charges left unanswered
    recorded: service.Recorded | None = None
    for _ in range(MAX_CHAIN):
        started = await failover.begin_next(
            maker,
            tenant_id=tenant_id,
            invoice_id=invoice_id,
            factory=provider_factory(runtime),
            encryptor=runtime.encryptor,
            clock=runtime.clock,
            order=order,
            attempt=attempt,
            passed=passed,
        )
        if started is None:
            break
        attempt = started.attempt  # the rest of the chain stays in this attempt
        txn = await charge.send_charge(started.charge)
        payment_id = started.charge.payment_id
        answer = await record_answer(runtime, tenant_id=tenant_id, payment_id=payment_id, txn=txn)
        recorded = answer or recorded
        if txn.outcome is Outcome.UNKNOWN:
            passed = passed | {payment_id}  # no answer: reconcile asks; we move on
        elif txn.outcome is not Outcome.FAILED:
            break  # paid, or in progress (PENDING): nothing else is tried
    return recorded


async def _due_payments(
    runtime: Runtime, tenant_id: str, payment_id: str | None
) -> list[tuple[str, str]]:
    """(payment id, provider) of PROCESSING payments to ask about now."""
    maker = await runtime.engines.sessionmaker(tenant_id)
    stmt = select(Payment.id, Payment.provider).where(Payment.status == PROCESSING)
    if payment_id:
        stmt = stmt.where(Payment.id == payment_id)
    else:
        stmt = stmt.where(Payment.next_check_at <= runtime.clock.now()).limit(100)
    async with maker() as session:
        return [(pid, name) for pid, name in (await session.execute(stmt)).all()]


async def _ask(
    handle: ProviderHandle, runtime: Runtime, tenant_id: str, payment_id: str
) -> Transaction:
    """The provider's view of one payment; its unreachability is an UNKNOWN answer."""
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        payment = await service.get_payment(session, payment_id=payment_id)
    try:
        return await charge.confirm(handle, payment)
    except ProviderError as exc:
        log.warning("payment.reconcile_failed", payment_id=payment_id, error=exc.message)
        return Transaction(reference=payment_id, outcome=Outcome.UNKNOWN, message=exc.message)


async def reconcile(runtime: Runtime, *, tenant_id: str, payment_id: str | None = None) -> int:
    """PROCESSING payments due for a check (or the one named) and PENDING refunds;
    returns how many reached a final state."""
    factory = provider_factory(runtime)
    done = 0
    for pid, provider in await _due_payments(runtime, tenant_id, payment_id):
        handle = await factory.get(tenant_id, provider)
        if handle is None:
            continue
        txn = await _ask(handle, runtime, tenant_id, pid)
        recorded = await record_answer(runtime, tenant_id=tenant_id, payment_id=pid, txn=txn)
        done += int(recorded is not None)
    maker = await runtime.engines.sessionmaker(tenant_id)
    done += await refunds.poll_pending(maker, tenant_id=tenant_id, factory=factory)
    return done


async def _apply_event(
    runtime: Runtime, *, tenant_id: str, provider: str, event: dict[str, Any]
) -> str:
    """One stored inbound event; returns the inbox row's final status."""
    kind = event.get("kind")
    maker = await runtime.engines.sessionmaker(tenant_id)
    if kind == EventKind.REFUND_UPDATED.value:
        async with maker() as session:
            found = await refunds.apply_update(
                session,
                provider_refund_id=event.get("provider_reference"),
                our_reference=None,
                outcome=Outcome(event["outcome"]) if event.get("outcome") else None,
                payment_id=split_reference(event.get("reference"))[0],
                amount_minor=event.get("amount_minor"),
            )
            await session.commit()
        return "PROCESSED" if found is not None else "IGNORED"
    if kind not in (EventKind.PAYMENT_SUCCEEDED.value, EventKind.PAYMENT_FAILED.value):
        return "IGNORED"  # unrelated event types change nothing (contract Improve)
    handle = await provider_factory(runtime).get(tenant_id, provider)
    async with maker() as session:
        payment = await service.find_for_event(
            session,
            payment_id=split_reference(event.get("reference"))[0],
            provider_reference=event.get("provider_reference"),
        )
        if payment is not None and event.get("receipt"):
            payment.metadata_ = {**(payment.metadata_ or {}), "mpesaReceipt": event["receipt"]}
            await session.commit()
    if payment is None or handle is None or payment.provider != provider:
        log.info("webhook.unmatched", provider=provider, reference=event.get("reference"))
        return "IGNORED"
    txn = await _ask(handle, runtime, tenant_id, payment.id)  # never trust the body alone
    await record_answer(runtime, tenant_id=tenant_id, payment_id=payment.id, txn=txn)
    return "PROCESSED"


async def process_inbox(runtime: Runtime, *, tenant_id: str, inbox_id: str) -> str:
    async with runtime.central() as central:
        row = await central.get(WebhookInbox, inbox_id)
        if row is None or row.status in ("PROCESSED", "IGNORED"):
            return "skipped"
        provider, event = row.provider, dict((row.headers or {}).get(EVENT_KEY) or {})
    outcome = await _apply_event(runtime, tenant_id=tenant_id, provider=provider, event=event)
    async with runtime.central() as central:
        row = await central.get(WebhookInbox, inbox_id)
        if row is not None:
            row.status = outcome
            row.attempts += 1
            row.processed_at = runtime.clock.now()
            await central.commit()
    return outcome


async def process_inbox_batch(runtime: Runtime, rows: list[tuple[str, str]]) -> None:
    """Each (tenant id, inbox id) on its own: one failing row does not stop the others;
    the job then fails (and is retried) with the first error, and the retry skips the
    rows already processed."""
    first_error: Exception | None = None
    for tenant_id, inbox_id in rows:
        try:
            await process_inbox(runtime, tenant_id=tenant_id, inbox_id=inbox_id)
        except Exception as exc:  # noqa: BLE001 - reported below, after the other rows
            log.warning("webhook.process_failed", inbox_id=inbox_id, error=repr(exc))
            first_error = first_error or exc
    if first_error is not None:
        raise first_error


async def refund_overpayment(runtime: Runtime, *, tenant_id: str, payment_id: str) -> None:
    """Give an overpayment back through its provider (idempotent: nothing left, nothing
    to do); a refusal flags it for the tenant."""
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        payment = await service.get_payment(session, payment_id=payment_id)
    if payment.refunded_minor >= payment.amount_minor:
        return  # refunded already (this job ran before)
    try:
        await refunds.refund_payment(
            maker,
            tenant_id=tenant_id,
            payment_id=payment_id,
            amount=None,
            reason="Overpayment: the invoice was already settled",
            factory=provider_factory(runtime),
        )
    except BusinessRule as exc:  # the provider refused: flag it, do not retry
        await service.flag_for_attention(maker, payment_id=payment_id, reason=str(exc))
        log.warning("payment.overpayment_not_refunded", payment_id=payment_id, error=str(exc))
