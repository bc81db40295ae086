"""Job name -> handler. Handlers are thin: open the tenant session, call one service,
and are safe to run twice (delivery is at least once).

Registered here:
- ``billing``: ``billing.tick`` {tenant_id, at?}, ``billing.first_invoice``
  {tenant_id, subscription_id}, ``invoice.render_pdf`` {tenant_id, invoice_id};
- ``emails``: see ``novabilling.billing.emails``;
- ``payments``: whatever ``novabilling.payments.jobs.handlers(runtime)`` returns, when the
  payments domain provides it (``payments.charge`` {tenant_id, invoice_id, attempt}).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from novabilling.kit.jobs import QUEUE_BILLING, Job, JobHandler

if TYPE_CHECKING:
    from novabilling.runtime import Runtime


def _billing_handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    from novabilling.billing import emails, renewals, scheduler, tick
    from novabilling.invoices.documents import load_tenant
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

    return {
        (QUEUE_BILLING, scheduler.TICK_JOB): billing_tick,
        (QUEUE_BILLING, scheduler.FIRST_INVOICE_JOB): first_invoice,
        **emails.handlers(runtime),
    }


def _optional(module: str, runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    """Handlers of a domain that may not be installed yet (``module.handlers(runtime)``)."""
    try:
        found = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return {}
    result: dict[tuple[str, str], JobHandler] = found.handlers(runtime)
    return result


def build_handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    """Every job handler, bound to ``runtime``. Domains add theirs here."""
    handlers: dict[tuple[str, str], JobHandler] = {}
    handlers.update(_billing_handlers(runtime))
    handlers.update(_optional("novabilling.payments.jobs", runtime))
    handlers.update(_optional("novabilling.webhooks.jobs", runtime))
    return handlers
