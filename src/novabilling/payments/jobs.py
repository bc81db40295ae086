"""Job handlers of the payments domain (registered by ``worker.py`` through
``payment_handlers(runtime)``). Each opens the tenant session, calls services, commits, and
is safe to run twice.

- ``webhooks`` / ``webhooks.process`` ``{tenant_id, inbox_id}``: an inbox row -> confirm with
  the provider's verify API -> ``service.record_outcome`` / ``refunds.apply_update``.
- ``payments`` / ``payments.charge`` ``{tenant_id, invoice_id, attempt?}``: charge the saved
  authorization (``charge.charge_invoice``; a job whose ``attempt`` is behind the invoice's
  ``collection_attempts`` is stale and skipped); PENDING/UNKNOWN schedules a reconcile.
- ``payments`` / ``payments.reconcile`` ``{tenant_id, payment_id?}``: ask the provider about
  PROCESSING payments that are due (``next_check_at``) and PENDING refunds. The billing
  tick queues it for each automatic charge still PROCESSING once its check is due.
- ``webhooks`` / ``webhook.deliver``: outbound tenant webhooks (``webhooks.outbound``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

from novabilling.kit.jobs import QUEUE_PAYMENTS, QUEUE_WEBHOOKS, Job, JobHandler
from novabilling.payments import charge, refunds, service
from novabilling.payments.credentials import provider_factory
from novabilling.payments.models import PROCESSING, Payment
from novabilling.payments.providers.base import EventKind, Outcome, ProviderError
from novabilling.tenancy.models import WebhookInbox
from novabilling.webhooks import outbound
from novabilling.webhooks.inbound import EVENT_KEY, split_reference
from novabilling.webhooks.inbox import PROCESS, PROCESS_BATCH

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from novabilling.runtime import Runtime

log = structlog.get_logger(__name__)

CHARGE = "payments.charge"
RECONCILE = "payments.reconcile"


async def _find_payment(session: AsyncSession, event: dict[str, Any]) -> Payment | None:
    payment_id, _ = split_reference(event.get("reference"))
    if payment_id:
        found = await session.get(Payment, payment_id)
        if found is not None:
            return found
    ref = event.get("provider_reference")
    if ref:
        return await session.scalar(select(Payment).where(Payment.provider_transaction_id == ref))
    return None


async def process_inbox(runtime: Runtime, *, tenant_id: str, inbox_id: str) -> str:
    async with runtime.central() as central:
        row = await central.get(WebhookInbox, inbox_id)
        if row is None or row.status in ("PROCESSED", "IGNORED"):
            return "skipped"
        provider, event = row.provider, dict((row.headers or {}).get(EVENT_KEY) or {})
    outcome = await _apply(runtime, tenant_id=tenant_id, provider=provider, event=event)
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


async def _apply(runtime: Runtime, *, tenant_id: str, provider: str, event: dict[str, Any]) -> str:
    factory = provider_factory(runtime)
    handle = await factory.get(tenant_id, provider)
    kind = event.get("kind")
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        if kind == EventKind.REFUND_UPDATED.value:
            outcome = Outcome(event["outcome"]) if event.get("outcome") else None
            found = await refunds.apply_update(
                session,
                provider_refund_id=event.get("provider_reference"),
                our_reference=None,
                outcome=outcome,
                payment_id=split_reference(event.get("reference"))[0],
                amount_minor=event.get("amount_minor"),
            )
            await session.commit()
            return "PROCESSED" if found is not None else "IGNORED"
        if kind not in (EventKind.PAYMENT_SUCCEEDED.value, EventKind.PAYMENT_FAILED.value):
            return "IGNORED"  # unrelated event types change nothing (contract Improve)
        payment = await _find_payment(session, event)
        if payment is None or handle is None or payment.provider != provider:
            log.info("webhook.unmatched", provider=provider, reference=event.get("reference"))
            return "IGNORED"
        if event.get("receipt"):
            payment.metadata_ = {**(payment.metadata_ or {}), "mpesaReceipt": event["receipt"]}
        txn = await charge.confirm(handle, payment)  # never trust the webhook body alone
        await service.record_outcome(
            session,
            tenant_id=tenant_id,
            payment=payment,
            txn=txn,
            encryptor=runtime.encryptor,
            clock=runtime.clock,
        )
        await session.commit()
    return "PROCESSED"


async def reconcile(runtime: Runtime, *, tenant_id: str, payment_id: str | None = None) -> int:
    """PROCESSING payments due for a check (or the one named) and PENDING refunds."""
    factory = provider_factory(runtime)
    now = runtime.clock.now()
    maker = await runtime.engines.sessionmaker(tenant_id)
    done = 0
    async with maker() as session:
        stmt = select(Payment).where(Payment.status == PROCESSING)
        if payment_id:
            stmt = stmt.where(Payment.id == payment_id)
        else:
            stmt = stmt.where(Payment.next_check_at <= now).limit(100)
        for payment in list(await session.scalars(stmt)):
            handle = await factory.get(tenant_id, payment.provider)
            if handle is None:
                continue
            try:
                txn = await charge.confirm(handle, payment)
            except ProviderError as exc:
                log.warning("payment.reconcile_failed", payment_id=payment.id, error=exc.message)
                service.schedule_check(payment, now)
                continue
            await service.record_outcome(
                session,
                tenant_id=tenant_id,
                payment=payment,
                txn=txn,
                encryptor=runtime.encryptor,
                clock=runtime.clock,
            )
            done += int(payment.status != PROCESSING)
        done += await refunds.poll_pending(session, tenant_id=tenant_id, factory=factory)
        await session.commit()
    return done


async def charge_job(
    runtime: Runtime, *, tenant_id: str, invoice_id: str, attempt: int | None = None
) -> None:
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        await charge.charge_invoice(
            session,
            runtime=runtime,
            tenant_id=tenant_id,
            invoice_id=invoice_id,
            factory=provider_factory(runtime),
            attempt=attempt,
        )
        await session.commit()


def payment_handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    async def on_inbox(job: Job) -> None:
        await process_inbox(
            runtime, tenant_id=str(job.data["tenant_id"]), inbox_id=str(job.data["inbox_id"])
        )

    async def on_inbox_batch(job: Job) -> None:
        await process_inbox_batch(runtime, [(str(t), str(i)) for t, i in job.data["rows"]])

    async def on_charge(job: Job) -> None:
        attempt = job.data.get("attempt")
        await charge_job(
            runtime,
            tenant_id=str(job.data["tenant_id"]),
            invoice_id=str(job.data["invoice_id"]),
            attempt=attempt if isinstance(attempt, int) else None,
        )

    async def on_reconcile(job: Job) -> None:
        payment_id = job.data.get("payment_id")
        await reconcile(
            runtime,
            tenant_id=str(job.data["tenant_id"]),
            payment_id=str(payment_id) if payment_id else None,
        )

    return {
        (QUEUE_WEBHOOKS, PROCESS): on_inbox,
        (QUEUE_WEBHOOKS, PROCESS_BATCH): on_inbox_batch,
        (QUEUE_PAYMENTS, CHARGE): on_charge,
        (QUEUE_PAYMENTS, RECONCILE): on_reconcile,
        **outbound.handlers(runtime),
    }


handlers = payment_handlers  # the name worker.py looks up
