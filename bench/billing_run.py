"""Billing-run benchmark: N due subscriptions across T tenants on PostgreSQL, W worker
processes consuming the ``billing`` queue from Redis; measures renewals per second.

    uv run python bench/billing_run.py [--tenants 10] [--per-tenant 1000] [--workers 2]
        [--concurrency 4] [--timeout 300]

Needs PostgreSQL (``NB_TEST_PG_URL``, default postgres@127.0.0.1:5432) and Redis
(``NB_TEST_REDIS_URL``). Creates its own central DB, tenant DBs and Redis prefix and drops
them at the end. Tenants are registered through the API (in process); customers, plans and
subscriptions are bulk-inserted, every subscription's period ended one minute ago. One
``billing.tick`` per tenant is enqueued; the clock stops when every tenant has its
invoices. Prints JSON. Bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' seeding helper
PG = os.environ.get("NB_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("NB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def settings_env(run: str, data_dir: Path) -> dict[str, str]:
    return {
        "NB_ENV": "test",
        "NB_DATA_DIR": str(data_dir),
        "NB_DATABASE_URL": PG.rsplit("/", 1)[0] + f"/nbbench_{run}_central",
        "NB_TENANT_DATABASE_URL": PG,
        "NB_TENANT_DB_PREFIX": f"nbbench_{run}_t_",
        "NB_REDIS_URL": REDIS,
        "NB_REDIS_PREFIX": f"nbbench:{run}",
        "NB_RATE_LIMIT": "0",
        "NB_LOG_LEVEL": "WARNING",
        "NB_RUN_SCHEDULER": "false",
        "NB_TENANT_POOL_SIZE": "4",
    }


async def worker_main(concurrency: int) -> None:
    from novabilling.bootstrap import build_runtime
    from novabilling.config import Settings
    from novabilling.kit.jobs import QUEUE_BILLING
    from novabilling.kit.jobs_bullmq import install_signal_handlers, run_worker
    from novabilling.kit.logging import configure_logging
    from novabilling.worker import build_handlers

    settings = Settings()
    configure_logging(json=True, level="WARNING")
    runtime = build_runtime(settings)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    assert settings.redis_url
    try:
        await run_worker(
            settings.redis_url,
            build_handlers(runtime),
            queues=(QUEUE_BILLING,),
            concurrency=concurrency,
            stop=stop,
            prefix=settings.redis_prefix,
        )
    finally:
        await runtime.close()


async def setup(tenants: int, per_tenant: int) -> list[str]:
    """Register ``tenants`` tenants through the API (each gets its own database), then
    bulk-insert ``per_tenant`` monthly subscriptions each whose period ended a minute ago
    (the tests' seeding helper: half IN_ADVANCE, half IN_ARREARS)."""
    from tests.billing.support import seed_due_subscriptions

    from novabilling.app import create_app
    from novabilling.bootstrap import build_runtime
    from novabilling.config import Settings
    from novabilling.tenancy.operations import migrate_central

    settings = Settings()
    await migrate_central(settings)
    runtime = build_runtime(settings)
    app = create_app(settings, runtime=runtime)
    ids: list[str] = []
    due = datetime.now(UTC) - timedelta(minutes=1)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench"
    ) as client:
        for t in range(tenants):
            r = await client.post(
                "/api/auth/register",
                json={
                    "name": "Bench",
                    "email": f"bench{t}-{secrets.token_hex(3)}@test.local",
                    "password": "correct-horse-battery",
                    "companyName": f"Bench {t}",
                },
            )
            r.raise_for_status()
            tenant_id = r.json()["tenant"]["id"]
            ids.append(tenant_id)
            await seed_due_subscriptions(runtime, tenant_id, per_tenant, period_end=due)
    await runtime.close()
    return ids


async def count_invoices(runtime: Any, tenant_ids: list[str]) -> int:
    from novabilling.invoices.models import Invoice

    total = 0
    for tid in tenant_ids:
        maker = await runtime.engines.sessionmaker(tid)
        async with maker() as session:
            total += int(await session.scalar(select(func.count(Invoice.id))) or 0)
    return total


async def statuses(runtime: Any, tenant_ids: list[str]) -> dict[str, int]:
    """Invoices per status (finalized renewals are PENDING; DRAFT would be unfinished)."""
    from novabilling.invoices.models import Invoice

    out: dict[str, int] = {}
    for tid in tenant_ids:
        maker = await runtime.engines.sessionmaker(tid)
        async with maker() as session:
            rows = await session.execute(
                select(Invoice.status, func.count()).group_by(Invoice.status)
            )
            for status, n in rows.tuples():
                out[status] = out.get(status, 0) + int(n)
    return out


async def enqueue_ticks(tenant_ids: list[str]) -> None:
    from novabilling.config import Settings
    from novabilling.kit.jobs import QUEUE_BILLING
    from novabilling.kit.jobs_bullmq import BullMQQueue

    settings = Settings()
    assert settings.redis_url
    queue = BullMQQueue(settings.redis_url, prefix=settings.redis_prefix)
    try:
        for tid in tenant_ids:
            await queue.enqueue(
                QUEUE_BILLING, "billing.tick", {"tenant_id": tid}, job_id=f"{tid}:bench"
            )
    finally:
        await queue.close()


async def wait_for(
    tenant_ids: list[str], expected: int, limit_s: float
) -> tuple[int, float, dict[str, int]]:
    """Enqueue one tick per tenant, then poll (every 0.1 s) until all invoices exist."""
    from novabilling.bootstrap import build_runtime
    from novabilling.config import Settings

    runtime = build_runtime(Settings())
    done = 0
    try:
        await count_invoices(runtime, tenant_ids)  # open the engines before the clock
        await enqueue_ticks(tenant_ids)
        started = time.perf_counter()
        while time.perf_counter() - started < limit_s:
            done = await count_invoices(runtime, tenant_ids)
            if done >= expected:
                break
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
        return done, elapsed, await statuses(runtime, tenant_ids)
    finally:
        await runtime.close()


async def cleanup(run: str) -> None:
    import asyncpg
    from redis.asyncio import Redis

    host = PG.split("@", 1)[1].split("/", 1)[0]
    hostname, _, port = host.partition(":")
    conn = await asyncpg.connect(
        host=hostname, port=int(port or 5432), user="postgres", database="postgres"
    )
    try:
        for row in await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", f"nbbench_{run}_%"
        ):
            await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        for row in await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", f"nbbench_{run}_%"
        ):
            await conn.execute(f'DROP ROLE IF EXISTS "{row["rolname"]}"')
    finally:
        await conn.close()
    redis = Redis.from_url(REDIS)
    async for key in redis.scan_iter(f"nbbench:{run}:*"):
        await redis.delete(key)
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--per-tenant", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker_main(args.concurrency))
        return
    run = secrets.token_hex(3)
    data_dir = Path(f"/tmp/nbbench-{run}")
    env = {**os.environ, **settings_env(run, data_dir)}
    os.environ.update(env)
    import asyncpg

    async def create_central() -> None:
        conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
        await conn.execute(f'CREATE DATABASE "nbbench_{run}_central"')
        await conn.close()

    asyncio.run(create_central())
    procs: list[subprocess.Popen[Any]] = []
    try:
        t0 = time.perf_counter()
        tenant_ids = asyncio.run(setup(args.tenants, args.per_tenant))
        setup_s = time.perf_counter() - t0
        for _ in range(args.workers):
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--worker", "--concurrency", str(args.concurrency)],
                    env=env,
                )
            )
        time.sleep(3)  # let workers connect
        expected = args.tenants * args.per_tenant
        done, elapsed, by_status = asyncio.run(wait_for(tenant_ids, expected, args.timeout))
        print(
            json.dumps(
                {
                    "tenants": args.tenants,
                    "subscriptions": expected,
                    "workers": args.workers,
                    "concurrency": args.concurrency,
                    "invoices": done,
                    "seconds": round(elapsed, 2),
                    "renewals_per_second": round(done / elapsed, 1),
                    "setup_seconds": round(setup_s, 1),
                    "cpus": os.cpu_count(),
                    "invoices_by_status": by_status,
                }
            )
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        asyncio.run(cleanup(run))


if __name__ == "__main__":
    main()
