"""PostgreSQL + Redis: real worker processes (``novabilling worker``) and in-process ticks
racing over the same due subscriptions; a worker SIGKILLed mid-run. Always exactly one
invoice per subscription period and gapless numbers."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from novabilling.billing.tick import run_tenant_tick
from novabilling.bootstrap import build_runtime
from novabilling.config import Settings
from novabilling.invoices.models import Invoice
from novabilling.kit.jobs import QUEUE_BILLING
from novabilling.kit.jobs_bullmq import BullMQQueue
from novabilling.runtime import Runtime
from tests.billing.support import RecordingQueue, seed_due_subscriptions
from tests.conftest import register_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.long(seconds=60)]


@pytest.fixture
def pg(pg_settings: Settings) -> Settings:
    """PostgreSQL settings with a Redis prefix of this test's own."""
    prefix = f"{pg_settings.redis_prefix}:{secrets.token_hex(3)}"
    return pg_settings.model_copy(update={"redis_prefix": prefix})


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "NB_ENV": "test",
        "NB_DATA_DIR": str(settings.data_dir),
        "NB_DATABASE_URL": settings.central_url,
        "NB_TENANT_DATABASE_URL": str(settings.tenant_database_url),
        "NB_TENANT_DB_PREFIX": settings.tenant_db_prefix,
        "NB_REDIS_URL": str(settings.redis_url),
        "NB_REDIS_PREFIX": settings.redis_prefix,
        "NB_SECRET_KEY": str(settings.secret_key),
        "NB_ENCRYPTION_KEY": str(settings.encryption_key),
        "NB_LOG_LEVEL": "WARNING",
        "NB_RUN_SCHEDULER": "false",
    }


def _worker(settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "novabilling"),
            "worker",
            "--concurrency",
            "3",
            "--no-scheduler",
        ],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _tenant(runtime: Runtime) -> str:
    import httpx

    from novabilling.app import create_app

    app = create_app(runtime.settings, runtime=runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        return (await register_tenant(client, "Race Co")).id


async def _count(runtime: Runtime, tenant_id: str) -> int:
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        return int(await session.scalar(select(func.count(Invoice.id))) or 0)


async def _check(runtime: Runtime, tenant_id: str, expected: int) -> None:
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        rows = (
            await session.execute(
                select(Invoice.subscription_id, Invoice.period_start, Invoice.invoice_number)
            )
        ).all()
    assert len(rows) == expected
    assert len({(r[0], r[1]) for r in rows}) == expected
    assert len({r[0] for r in rows}) == expected  # one period each
    numbers = sorted(int(r[2].removeprefix("INV-")) for r in rows)
    assert numbers == list(range(1, expected + 1))


async def _wait(runtime: Runtime, tenant_id: str, expected: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await _count(runtime, tenant_id) >= expected:
            await asyncio.sleep(1.0)  # let stragglers (duplicates, if any) land
            return
        await asyncio.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_two_workers_and_repeated_ticks(pg: Settings) -> None:
    runtime = build_runtime(pg)
    workers = [_worker(pg), _worker(pg)]
    producer = BullMQQueue(str(pg.redis_url), prefix=pg.redis_prefix)
    try:
        tenant_id = await _tenant(runtime)
        due = datetime.now(UTC) - timedelta(minutes=1)
        await seed_due_subscriptions(runtime, tenant_id, 600, period_end=due, slow_every=5)
        runtime.jobs = RecordingQueue()
        await asyncio.sleep(2)  # workers connect
        for n in range(6):
            await producer.enqueue(
                QUEUE_BILLING,
                "billing.tick",
                {"tenant_id": tenant_id},
                job_id=f"{tenant_id}:race{n}",
            )
        # and this process ticks at the same time, twice
        await asyncio.gather(
            run_tenant_tick(runtime, tenant_id), run_tenant_tick(runtime, tenant_id)
        )
        await _wait(runtime, tenant_id, 600, 180)
        await _check(runtime, tenant_id, 600)
    finally:
        for proc in workers:
            _stop(proc)
        await producer.close()
        await runtime.close()


async def test_sigkill_mid_run_then_restart(pg: Settings) -> None:
    runtime = build_runtime(pg)
    producer = BullMQQueue(str(pg.redis_url), prefix=pg.redis_prefix)
    worker = _worker(pg)
    restarted: subprocess.Popen[bytes] | None = None
    try:
        tenant_id = await _tenant(runtime)
        due = datetime.now(UTC) - timedelta(minutes=1)
        # two chunks of the tick (tick.CHUNK = 250), each a bulk transaction for the plain
        # two thirds and one per slow subscription: the kill lands after the first commit
        # with most of the run still to do. Every invoice is also rendered to PDF and
        # e-mailed by the same worker, which is where most of the wait goes.
        total = 500
        await seed_due_subscriptions(runtime, tenant_id, total, period_end=due, slow_every=3)
        # no wait for the worker to connect: the job waits in Redis until it does
        await producer.enqueue(
            QUEUE_BILLING, "billing.tick", {"tenant_id": tenant_id}, job_id=f"{tenant_id}:kill1"
        )
        for _ in range(6000):  # up to ~120 s: kill as soon as the first batch committed
            if await _count(runtime, tenant_id) > 0:
                break
            await asyncio.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        partial = await _count(runtime, tenant_id)
        assert 0 < partial < total, partial
        await _check(runtime, tenant_id, partial)  # what committed is whole and gapless
        restarted = _worker(pg)
        await producer.enqueue(
            QUEUE_BILLING, "billing.tick", {"tenant_id": tenant_id}, job_id=f"{tenant_id}:kill2"
        )
        await _wait(runtime, tenant_id, total, 600)  # returns as soon as all are in
        await _check(runtime, tenant_id, total)
    finally:
        _stop(worker)
        if restarted is not None:
            _stop(restarted)
        await producer.close()
        await runtime.close()
