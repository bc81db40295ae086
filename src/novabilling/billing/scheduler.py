"""The scheduler: once a minute, single-flight across processes, enqueue one
``billing.tick`` per active tenant (job id ``{tenant_id}:{YYYYmmddHHMM}``, so a second
scheduler in the same minute adds nothing).

Every minute is ticked exactly once, late rather than never: the loop keeps the next
minute it owes and, on each wake, schedules every minute from there up to the current one
(a wake a little early schedules nothing and sleeps again; a long stall catches up, at
most ``CATCH_UP`` minutes, the older ones folded into the newest - the tick works from
database state, so the newest minute's tick does their work too).

Single flight, per minute:
- Redis configured: ``SET <prefix>:billing:scheduler:<minute> NX PX 120000`` (left to
  expire, so one process schedules each minute);
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
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select, text

from novabilling.kit.jobs import QUEUE_BILLING
from novabilling.payments.inbox import sweep_unqueued
from novabilling.runtime import Runtime
from novabilling.tenancy.models import Tenant
from novabilling.tenants.idempotency_expiry import schedule_expiry

log = structlog.get_logger(__name__)

TICK_JOB = "billing.tick"
LOCK_TTL_MS = 120_000
CATCH_UP = 60  # minutes scheduled one by one after a stall
MINUTE = timedelta(minutes=1)
ADVISORY_KEY = 0x4E42_0001  # "NB" + 1
_local_lock = asyncio.Lock()


def minute_key(at: datetime) -> str:
    return at.strftime("%Y%m%d%H%M")


def floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


@asynccontextmanager
async def single_flight(runtime: Runtime, minute: str) -> AsyncIterator[bool]:
    """Yields True when this process holds the scheduler lock for ``minute``."""
    settings = runtime.settings
    if runtime.redis is not None:
        key = f"{settings.redis_prefix}:billing:scheduler:{minute}"
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
    async with single_flight(runtime, minute) as held:
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


def owed_minutes(next_minute: datetime, now: datetime) -> list[datetime]:
    """The minutes from ``next_minute`` up to ``now``'s, oldest first; after a stall
    longer than ``CATCH_UP`` only the newest ``CATCH_UP`` (the tick works from database
    state, so the newest does the work of the ones folded into it)."""
    current = floor_minute(now)
    if next_minute > current:
        return []
    count = int((current - next_minute) / MINUTE) + 1
    start = next_minute if count <= CATCH_UP else current - MINUTE * (CATCH_UP - 1)
    return [start + MINUTE * k for k in range(min(count, CATCH_UP))]


class MinuteLedger:
    """Which minutes the loop still owes: each is scheduled once, none is skipped."""

    def __init__(self, start: datetime) -> None:
        self.next_minute = floor_minute(start)

    def owed(self, now: datetime) -> list[datetime]:
        return owed_minutes(self.next_minute, now)

    def done(self, minute: datetime) -> None:
        self.next_minute = max(self.next_minute, minute + MINUTE)

    def seconds_to_next(self, now: datetime) -> float:
        return (self.next_minute - now).total_seconds()


async def run_scheduler(runtime: Runtime, stop: asyncio.Event, *, interval: float = 60.0) -> None:
    """Loop until ``stop``: every minute scheduled once (see the module docstring);
    errors are logged and the minute is tried again on the next wake."""
    log.info("billing.scheduler_started")
    ledger = MinuteLedger(runtime.clock.now())
    while not stop.is_set():
        for minute in ledger.owed(runtime.clock.now()):
            try:
                await schedule_once(runtime, now=minute)
            except Exception as exc:  # noqa: BLE001 - the loop must survive Redis/DB outages
                log.warning("billing.scheduler_failed", minute=minute_key(minute), error=repr(exc))
                break
            ledger.done(minute)
        now = runtime.clock.now()
        wait = ledger.seconds_to_next(now) if interval == 60 else interval
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.05, wait + 0.01))
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
