"""What the ``billing run`` and ``worker`` commands do."""

from __future__ import annotations

import asyncio

import structlog

from novabilling.billing.scheduler import EmbeddedScheduler, active_tenant_ids
from novabilling.billing.tick import TickResult, run_tenant_tick
from novabilling.bootstrap import build_runtime
from novabilling.config import Settings
from novabilling.kit.clock import FixedClock
from novabilling.kit.jobs import ALL_QUEUES
from novabilling.kit.jobs_bullmq import install_signal_handlers, run_worker
from novabilling.kit.logging import configure_logging
from novabilling.kit.timestamps import parse_instant
from novabilling.worker import build_handlers

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


async def run_worker_process(
    settings: Settings, *, concurrency: int, scheduler: bool = True
) -> None:
    """BullMQ consumers for every queue, plus the single-flight scheduler loop."""
    configure_logging(json=settings.json_logs, level=settings.log_level)
    assert settings.redis_url
    runtime = build_runtime(settings)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    loop = EmbeddedScheduler(runtime) if scheduler else None
    try:
        if loop is not None:
            loop.start()
        await run_worker(
            settings.redis_url,
            build_handlers(runtime),
            queues=ALL_QUEUES,
            concurrency=concurrency,
            stop=stop,
            prefix=settings.redis_prefix,
        )
    finally:
        if loop is not None:
            await loop.stop()
        await runtime.close()
