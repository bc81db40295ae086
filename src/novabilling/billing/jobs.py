"""Job handlers of the billing engine (registered by ``worker.py``). Each loads what it
needs, calls the billing services and is safe to run twice (delivery is at least once).

- ``billing`` / ``billing.tick`` ``{tenant_id, at?}``: one tenant's due work
  (``tick.run_tenant_tick``).
- ``billing`` / ``usage.check`` ``{tenant_id, subscription_id}``: an interim usage invoice
  if one is due (``progressive.check``: IN_ADVANCE charges, progressive billing).
- ``payments`` / ``payments.charge`` ``{tenant_id, invoice_id, attempt?}``: automatic
  collection (``collection.collect``); a failure goes to dunning.
- ``payments`` / ``payments.reconcile`` ``{tenant_id, payment_id?}``: ask the provider
  about unanswered payments and pending refunds (``collection.reconcile``).
- ``payments`` / ``payments.refund_overpayment`` ``{tenant_id, payment_id}``.
- ``webhooks`` / ``webhooks.process`` ``{tenant_id, inbox_id}`` and
  ``webhooks.process_batch`` ``{rows}``: inbound provider webhooks
  (``collection.process_inbox``).
"""

from __future__ import annotations

from novabilling.billing import collection, progressive, scheduler, tick
from novabilling.invoices.lifecycle import CHARGE_JOB
from novabilling.kit.jobs import (
    QUEUE_BILLING,
    QUEUE_PAYMENTS,
    QUEUE_WEBHOOKS,
    Job,
    JobHandler,
    PermanentJobError,
)
from novabilling.payments.inbox import PROCESS, PROCESS_BATCH
from novabilling.payments.service import REFUND_OVERPAYMENT_JOB
from novabilling.runtime import Runtime
from novabilling.usage.ingest import CHECK_JOB

RECONCILE_JOB = tick.RECONCILE_JOB


def billing_handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    async def on_tick(job: Job) -> None:
        tenant_id = job.data.get("tenant_id")
        if not isinstance(tenant_id, str):
            raise PermanentJobError("billing.tick needs tenant_id")
        await tick.run_tenant_tick(runtime, tenant_id)

    async def on_usage_check(job: Job) -> None:
        tenant_id, subscription_id = job.data.get("tenant_id"), job.data.get("subscription_id")
        if not isinstance(tenant_id, str) or not isinstance(subscription_id, str):
            raise PermanentJobError("usage.check needs tenant_id and subscription_id")
        await progressive.check(runtime, tenant_id, subscription_id)

    async def on_charge(job: Job) -> None:
        attempt = job.data.get("attempt")
        await collection.collect(
            runtime,
            tenant_id=str(job.data["tenant_id"]),
            invoice_id=str(job.data["invoice_id"]),
            attempt=attempt if isinstance(attempt, int) else None,
        )

    async def on_reconcile(job: Job) -> None:
        payment_id = job.data.get("payment_id")
        await collection.reconcile(
            runtime,
            tenant_id=str(job.data["tenant_id"]),
            payment_id=str(payment_id) if payment_id else None,
        )

    async def on_overpayment(job: Job) -> None:
        await collection.refund_overpayment(
            runtime, tenant_id=str(job.data["tenant_id"]), payment_id=str(job.data["payment_id"])
        )

    async def on_inbox(job: Job) -> None:
        await collection.process_inbox(
            runtime, tenant_id=str(job.data["tenant_id"]), inbox_id=str(job.data["inbox_id"])
        )

    async def on_inbox_batch(job: Job) -> None:
        await collection.process_inbox_batch(
            runtime, [(str(t), str(i)) for t, i in job.data["rows"]]
        )

    return {
        (QUEUE_BILLING, scheduler.TICK_JOB): on_tick,
        (QUEUE_BILLING, CHECK_JOB): on_usage_check,
        (QUEUE_PAYMENTS, CHARGE_JOB): on_charge,
        (QUEUE_PAYMENTS, RECONCILE_JOB): on_reconcile,
        (QUEUE_PAYMENTS, REFUND_OVERPAYMENT_JOB): on_overpayment,
        (QUEUE_WEBHOOKS, PROCESS): on_inbox,
        (QUEUE_WEBHOOKS, PROCESS_BATCH): on_inbox_batch,
    }
