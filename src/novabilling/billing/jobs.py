"""Job handlers of the billing domain (registered by ``worker.py`` through
``billing_handlers(runtime)``). Each loads what it needs, calls the billing services and is
safe to run twice (delivery is at least once).

- ``billing`` / ``billing.tick`` ``{tenant_id, at?}``: one tenant's due work
  (``tick.run_tenant_tick``).
- ``billing`` / ``billing.first_invoice`` ``{tenant_id, subscription_id}``: the first paid
  period of a new subscription (``renewals.first_invoice``).
- ``billing`` / ``billing.issued`` ``{tenant_id, invoices: [[invoice_id, charge], ...]}``:
  fan out a renewal batch (invoice email, charge, ``invoice.finalized`` webhook).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select

from novabilling.billing import emails, renewals, scheduler, tick
from novabilling.invoices.documents import invoice_event, load_tenant
from novabilling.invoices.models import Invoice
from novabilling.kit.jobs import QUEUE_BILLING, Job, JobHandler, PermanentJobError

if TYPE_CHECKING:
    from novabilling.runtime import Runtime


async def first_invoice(runtime: Runtime, *, tenant_id: str, subscription_id: str) -> None:
    tenant = await load_tenant(runtime.central, tenant_id)
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        can_charge = await tick._can_charge(session)
    ctx = renewals.TickContext(tenant=tenant, now=runtime.clock.now(), can_charge=can_charge)
    await renewals.first_invoice(maker, ctx, subscription_id)


async def _finalized_events(
    runtime: Runtime, tenant_id: str, invoice_ids: Sequence[str]
) -> dict[str, dict[str, object]]:
    """``invoice.finalized`` payloads by invoice id."""
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        invoices = (
            await session.scalars(select(Invoice).where(Invoice.id.in_(list(invoice_ids))))
        ).all()
        return {invoice.id: invoice_event(invoice) for invoice in invoices}


async def fan_out_issued(
    runtime: Runtime, *, tenant_id: str, invoices: Sequence[tuple[str, bool]]
) -> None:
    """Fan out a renewal batch: invoice email, charge, ``invoice.finalized`` webhook."""
    tenant = await load_tenant(runtime.central, tenant_id)
    ctx = renewals.TickContext(tenant=tenant, now=runtime.clock.now())
    webhooks: dict[str, dict[str, object]] = {}
    if tenant.webhook_url:
        webhooks = await _finalized_events(runtime, tenant_id, [i for i, _ in invoices])
    for invoice_id, charge in invoices:
        emails.queue_invoice_email(tenant_id, invoice_id)
        if charge:
            renewals.queue_charge(tenant_id, invoice_id, attempt=0)
        if invoice_id in webhooks:
            renewals.emit(ctx, "invoice.finalized", webhooks[invoice_id], invoice_id)


def billing_handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    async def on_tick(job: Job) -> None:
        tenant_id = job.data.get("tenant_id")
        if not isinstance(tenant_id, str):
            raise PermanentJobError("billing.tick needs tenant_id")
        await tick.run_tenant_tick(runtime, tenant_id)

    async def on_first_invoice(job: Job) -> None:
        await first_invoice(
            runtime,
            tenant_id=str(job.data["tenant_id"]),
            subscription_id=str(job.data["subscription_id"]),
        )

    async def on_issued(job: Job) -> None:
        tenant_id = str(job.data["tenant_id"])
        pairs = [(str(i), bool(c)) for i, c in job.data.get("invoices", [])]
        await fan_out_issued(runtime, tenant_id=tenant_id, invoices=pairs)

    return {
        (QUEUE_BILLING, tick.ISSUED_JOB): on_issued,
        (QUEUE_BILLING, scheduler.TICK_JOB): on_tick,
        (QUEUE_BILLING, scheduler.FIRST_INVOICE_JOB): on_first_invoice,
    }
