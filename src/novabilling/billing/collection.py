"""Collecting money, orchestrated: the payments layer talks to providers and records their
answers; the billing engine applies dunning to a failed automatic charge in the same
transaction. No provider call is made while a transaction is open.

- ``collect`` (``payments.charge`` {tenant_id, invoice_id, attempt}): charge the saved
  method (``payments.charge.begin_charge`` -> ``send_charge`` -> ``record``).
- ``reconcile`` (``payments.reconcile`` {tenant_id, payment_id?}): ask the provider about
  PROCESSING payments whose check is due, and about PENDING refunds; a charge that never
  gets an answer fails as ``unconfirmed`` and dunning acts.
- ``process_inbox`` (``webhooks.process`` / ``webhooks.process_batch``): an inbound
  webhook stored in the central inbox -> confirm with the provider -> record.
- ``refund_overpayment`` (``payments.refund_overpayment`` {tenant_id, payment_id}).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import select

from novabilling.billing import dunning, test_clocks
from novabilling.errors import BusinessRule
from novabilling.payments import charge, refunds, service
from novabilling.payments.credentials import ProviderHandle, provider_factory
from novabilling.payments.inbound import EVENT_KEY, split_reference
from novabilling.payments.models import PROCESSING, Payment
from novabilling.payments.providers.base import EventKind, Outcome, ProviderError, Transaction
from novabilling.runtime import Runtime
from novabilling.tenancy.models import WebhookInbox

log = structlog.get_logger(__name__)


async def _record(
    runtime: Runtime, *, tenant_id: str, payment_id: str, txn: Transaction
) -> service.Recorded | None:
    """Step 3 of every collection: the answer recorded, dunning applied, one commit."""
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
            tenant = await runtime.tenant_profiles.get(tenant_id)
            # a customer on a test clock: the retry schedule runs on the clock's time
            clock = await test_clocks.clock_for_invoice(session, recorded.invoice_id, runtime.clock)
            await dunning.record_failure(
                session,
                tenant_id=tenant_id,
                invoice_id=recorded.invoice_id,
                reason=recorded.reason,
                clock=clock,
                tenant_grace_days=tenant.setting_int("dunningGraceDays"),
            )
        await session.commit()
    return recorded


async def collect(
    runtime: Runtime, *, tenant_id: str, invoice_id: str, attempt: int | None = None
) -> service.Recorded | None:
    maker = await runtime.engines.sessionmaker(tenant_id)
    started = await charge.begin_charge(
        maker,
        tenant_id=tenant_id,
        invoice_id=invoice_id,
        factory=provider_factory(runtime),
        encryptor=runtime.encryptor,
        clock=runtime.clock,
        attempt=attempt,
    )
    if started is None:
        return None
    txn = await charge.send_charge(started)
    return await _record(runtime, tenant_id=tenant_id, payment_id=started.payment_id, txn=txn)


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
        return [(pid, name) for pid, name in (await session.execute(stmt)).tuples().all()]


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
        recorded = await _record(runtime, tenant_id=tenant_id, payment_id=pid, txn=txn)
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
    await _record(runtime, tenant_id=tenant_id, payment_id=payment.id, txn=txn)
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
