"""Job name -> handler. Handlers are thin: open the tenant session, call one service,
and are safe to run twice (delivery is at least once).

Registered here:
- ``billing``: ``billing.tick`` {tenant_id, at?}, ``billing.issued`` {tenant_id,
  invoices: [[invoice_id, charge], ...]}, ``billing.first_invoice``
  {tenant_id, subscription_id}, ``invoice.render_pdf`` {tenant_id, invoice_id};
- ``emails``: see ``novabilling.billing.emails``;
- ``payments`` / ``webhooks``: ``novabilling.payments.jobs.payment_handlers`` (charge,
  reconcile, inbound processing) and ``novabilling.webhooks.outbound.handlers`` (delivery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from novabilling.kit.jobs import QUEUE_BILLING, Job, JobHandler

if TYPE_CHECKING:
    from novabilling.runtime import Runtime


def _billing_handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    from sqlalchemy import select

    from novabilling.billing import emails, renewals, scheduler, tick
    from novabilling.invoices.documents import invoice_event, load_tenant
    from novabilling.invoices.models import Invoice
    from novabilling.kit.jobs import PermanentJobError

    async def billing_tick(job: Job) -> None:
        tenant_id = job.data.get("tenant_id")
        if not isinstance(tenant_id, str):
            raise PermanentJobError("billing.tick needs tenant_id")
        await tick.run_tenant_tick(runtime, tenant_id)

    async def first_invoice(job: Job) -> None:
        tenant_id = str(job.data["tenant_id"])
        tenant = await load_tenant(runtime.central, tenant_id)
        maker = await runtime.engines.sessionmaker(tenant_id)
        async with maker() as session:
            can_charge = await tick._can_charge(session)
        ctx = renewals.TickContext(tenant=tenant, now=runtime.clock.now(), can_charge=can_charge)
        await renewals.first_invoice(maker, ctx, str(job.data["subscription_id"]))

    async def issued(job: Job) -> None:
        """Fan out a renewal batch: invoice email, charge, ``invoice.finalized`` webhook."""
        tenant_id = str(job.data["tenant_id"])
        tenant = await load_tenant(runtime.central, tenant_id)
        ctx = renewals.TickContext(tenant=tenant, now=runtime.clock.now())
        pairs = [(str(i), bool(c)) for i, c in job.data.get("invoices", [])]
        webhooks: dict[str, dict[str, object]] = {}
        if tenant.webhook_url:
            maker = await runtime.engines.sessionmaker(tenant_id)
            async with maker() as session:
                for invoice in (
                    await session.scalars(
                        select(Invoice).where(Invoice.id.in_([i for i, _ in pairs]))
                    )
                ).all():
                    webhooks[invoice.id] = invoice_event(invoice)
        for invoice_id, charge in pairs:
            emails.queue_invoice_email(tenant_id, invoice_id)
            if charge:
                renewals.queue_charge(tenant_id, invoice_id, attempt=0)
            if invoice_id in webhooks:
                renewals.emit(ctx, "invoice.finalized", webhooks[invoice_id], invoice_id)

    return {
        (QUEUE_BILLING, tick.ISSUED_JOB): issued,
        (QUEUE_BILLING, scheduler.TICK_JOB): billing_tick,
        (QUEUE_BILLING, scheduler.FIRST_INVOICE_JOB): first_invoice,
        **emails.handlers(runtime),
    }


def build_handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    """Every job handler, bound to ``runtime``. Domains add theirs here."""
    handlers: dict[tuple[str, str], JobHandler] = {}
    handlers.update(_billing_handlers(runtime))
    from novabilling.payments.jobs import payment_handlers
    from novabilling.webhooks import outbound

    handlers.update(payment_handlers(runtime))
    handlers.update(outbound.handlers(runtime))
    return handlers
