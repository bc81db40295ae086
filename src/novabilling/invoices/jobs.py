"""``invoices.issued`` ``{tenant_id, invoices: [[invoice_id, charge], ...], created: [id]}``:
the side effects of a batch of subscription invoices issued at once (renewals in bulk),
fanned out from one job so the renewal transaction queues one job instead of several per
invoice: each one's ``invoice.created`` / ``invoice.drafted`` webhook (``created``), and for
the PENDING ones (``invoices``) the e-mail, the ``invoice.finalized`` webhook and, with
``charge``, the automatic charge. Safe to run twice (every job it queues has a dedup id)."""

from __future__ import annotations

from sqlalchemy import select

from novabilling.invoices.lifecycle import ISSUED_JOB, emit_created, invoice_event, queue_charge
from novabilling.invoices.models import Invoice
from novabilling.kit.jobs import QUEUE_BILLING, Job, JobHandler
from novabilling.notifications import jobs as emails
from novabilling.runtime import Runtime
from novabilling.webhooks import outbound


async def fan_out_issued(
    runtime: Runtime,
    *,
    tenant_id: str,
    invoices: list[tuple[str, bool]],
    created: list[str] | None = None,
) -> None:
    tenant = await runtime.tenant_profiles.get(tenant_id)
    events: dict[str, dict[str, object]] = {}
    if tenant.webhook_url:
        maker = await runtime.engines.sessionmaker(tenant_id)
        wanted = {i for i, _ in invoices} | set(created or ())
        async with maker() as session:
            rows = await session.scalars(select(Invoice).where(Invoice.id.in_(sorted(wanted))))
            loaded = {invoice.id: invoice for invoice in rows.all()}
        for invoice_id in created or ():
            if invoice_id in loaded:
                emit_created(tenant_id, loaded[invoice_id], clock=runtime.clock)
        events = {i: invoice_event(loaded[i]) for i, _ in invoices if i in loaded}
    for invoice_id, charge in invoices:
        emails.queue_invoice_email(tenant_id, invoice_id)
        if charge:
            queue_charge(tenant_id, invoice_id, attempt=0)
        if invoice_id in events:
            outbound.emit(
                tenant_id,
                "invoice.finalized",
                events[invoice_id],
                clock=runtime.clock,
                key=invoice_id,
            )


def handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    async def on_issued(job: Job) -> None:
        pairs = [(str(i), bool(c)) for i, c in job.data.get("invoices", [])]
        created = [str(i) for i in job.data.get("created", [])]
        await fan_out_issued(
            runtime, tenant_id=str(job.data["tenant_id"]), invoices=pairs, created=created
        )

    return {(QUEUE_BILLING, ISSUED_JOB): on_issued}
