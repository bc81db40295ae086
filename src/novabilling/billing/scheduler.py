"""The scheduler: once a minute, single-flight across processes, enqueue one
``billing.tick`` per active tenant (job id ``{tenant_id}:{YYYYmmddHHMM}``, so a second
scheduler in the same minute adds nothing).

Single flight:
- Redis configured: ``SET <prefix>:billing:scheduler NX PX 55000`` (left to expire, so
  one process schedules per minute);
- else a central PostgreSQL database: ``pg_try_advisory_lock`` on a held connection;
- else (embedded SQLite) an in-process ``asyncio.Lock``.

A failure (Redis down, database unreachable) is logged and the loop goes on: the API
keeps serving and the next minute tries again. Work itself is found by the tick from DB
state, so a skipped minute only delays it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select, text

from novabilling.kit.jobs import QUEUE_BILLING
from novabilling.tenancy.idempotency_expiry import schedule_expiry
from novabilling.tenancy.models import Tenant
from novabilling.webhooks.inbox import sweep_unqueued

if TYPE_CHECKING:
    from novabilling.runtime import Runtime

log = structlog.get_logger(__name__)

TICK_JOB = "billing.tick"
FIRST_INVOICE_JOB = "billing.first_invoice"
LOCK_TTL_MS = 55_000
ADVISORY_KEY = 0x4E42_0001  # "NB" + 1
_local_lock = asyncio.Lock()


def minute_key(at: datetime) -> str:
    return at.strftime("%Y%m%d%H%M")


@asynccontextmanager
async def single_flight(runtime: Runtime) -> AsyncIterator[bool]:
    """Yields True when this process holds the scheduler lock for this minute."""
    settings = runtime.settings
    if runtime.redis is not None:
        key = f"{settings.redis_prefix}:billing:scheduler"
        token = secrets.token_hex(8)
        # Not released: it expires before the next minute, so one run per minute overall.
        yield bool(await runtime.redis.set(key, token, nx=True, px=LOCK_TTL_MS))
        return
    if runtime.central_engine.dialect.name == "postgresql":
        async with runtime.central_engine.connect() as conn:
            got = bool(
                await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            )
            try:
                yield got
            finally:
                if got:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
        return
    if _local_lock.locked():
        yield False
        return
    async with _local_lock:
        yield True


async def active_tenant_ids(runtime: Runtime) -> list[str]:
    async with runtime.central() as session:
        rows = await session.scalars(
            select(Tenant.id).where(Tenant.is_active.is_(True)).order_by(Tenant.created_at)
        )
        return list(rows.all())


async def schedule_once(runtime: Runtime, *, now: datetime | None = None) -> int:
    """Enqueue this minute's ``billing.tick`` for every active tenant (if we hold the
    lock), and re-enqueue webhook deliveries whose job was lost (``sweep_unqueued``).
    Returns how many ticks were enqueued (0 when another process holds the lock)."""
    assert runtime.jobs is not None
    at = now or runtime.clock.now()
    minute = minute_key(at)
    async with single_flight(runtime) as held:
        if not held:
            return 0
        tenants = await active_tenant_ids(runtime)
        for tenant_id in tenants:
            await runtime.jobs.enqueue(
                QUEUE_BILLING,
                TICK_JOB,
                {"tenant_id": tenant_id, "at": at.isoformat()},
                job_id=f"{tenant_id}:{minute}",
                attempts=2,
            )
        await sweep_unqueued(runtime)  # webhook deliveries whose job was lost
        await schedule_expiry(runtime, tenants, at=at)  # idempotency records, hourly
    log.info("billing.scheduled", tenants=len(tenants), minute=minute)
    return len(tenants)


async def run_scheduler(runtime: Runtime, stop: asyncio.Event, *, interval: float = 60.0) -> None:
    """Loop until ``stop``: schedule at every minute boundary; errors are logged."""
    log.info("billing.scheduler_started")
    while not stop.is_set():
        try:
            await schedule_once(runtime)
        except Exception as exc:  # noqa: BLE001 - the loop must survive Redis/DB outages
            log.warning("billing.scheduler_failed", error=repr(exc))
        now = runtime.clock.now()
        wait = (
            interval - (now.second + now.microsecond / 1e6) % interval
            if interval == 60
            else (interval)
        )
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.5, wait))
    log.info("billing.scheduler_stopped")


class EmbeddedScheduler:
    """The scheduler loop as a background task (``serve`` / app lifespan)."""

    def __init__(self, runtime: Runtime, *, interval: float = 60.0) -> None:
        self.runtime = runtime
        self.interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(
                run_scheduler(self.runtime, self._stop, interval=self.interval),
                name="billing-scheduler",
            )

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
