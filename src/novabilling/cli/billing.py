"""What the ``billing run`` command does (the worker is ``novabilling.worker_main``)."""

from __future__ import annotations

import structlog

from novabilling.billing.scheduler import active_tenant_ids
from novabilling.billing.tick import TickResult, run_tenant_tick
from novabilling.bootstrap import build_runtime
from novabilling.config import Settings
from novabilling.kit.clock import FixedClock
from novabilling.kit.logging import configure_logging
from novabilling.kit.timestamps import parse_instant

log = structlog.get_logger(__name__)


async def run_billing_once(settings: Settings, *, at: str | None = None) -> list[TickResult]:
    """One tick for every active tenant at ``at`` (a fixed clock when given). Jobs the tick
    queues go to Redis, or run here (embedded) before returning."""
    configure_logging(json=settings.json_logs, level=settings.log_level)
    clock = FixedClock(parse_instant(at)) if at else None
    runtime = build_runtime(settings, clock=clock)
    results: list[TickResult] = []
    try:
        for tenant_id in await active_tenant_ids(runtime):
            results.append(await run_tenant_tick(runtime, tenant_id))
        join = getattr(runtime.jobs, "join", None)
        if join is not None:
            await join()
    finally:
        await runtime.close()
    return results
