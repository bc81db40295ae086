"""Billing-run benchmark: N due subscriptions across T tenants on PostgreSQL, W worker
processes consuming the ``billing`` queue from Redis; measures renewals per second.

    uv run python bench/billing_run.py [--tenants 10] [--per-tenant 1000] [--workers 2]
        [--concurrency 4] [--timeout 300] [--events 100]

Needs PostgreSQL (``NB_TEST_PG_URL``, default postgres@127.0.0.1:5432) and Redis
(``NB_TEST_REDIS_URL``). Creates its own central DB, tenant DBs and Redis prefix and drops
them at the end. Tenants are registered through the API (in process); customers, plans and
subscriptions are bulk-inserted, every subscription's period ended one minute ago. One
``billing.tick`` per tenant is enqueued once every worker process is up (imported,
runtime built); the clock stops when every tenant has its invoices. Prints JSON. Bounded
by ``--timeout``.

``--events N``: both plans get two usage charges (``calls`` COUNT at 0.01 STANDARD,
``gb`` SUM GRADUATED 0-100 @0.10 then 0.05 + 1.00 flat) and every subscription N usage
events in the period that ended (COPY), so each renewal invoice carries the usage of that
period; afterwards every usage line is compared with an independent computation made
here from the generated values (``usage_mismatches`` must be 0).
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
from decimal import ROUND_HALF_UP, Decimal
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


async def worker_main(concurrency: int, ready: Path | None = None) -> None:
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
    if ready is not None:
        ready.touch()  # imported and built: the clock may start
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


def gb_value(sub_no: int, k: int) -> Decimal:
    return Decimal((sub_no + k) % 10) + Decimal("0.25")


def expected_cents(calls: int, gb: Decimal) -> dict[str, int]:
    """The contract's STANDARD and GRADUATED pricing, written here on its own."""
    graduated = min(gb, Decimal(101)) * Decimal("0.10")
    if gb > 101:
        graduated += (gb - 101) * Decimal("0.05") + 1
    out = {"calls": calls * Decimal("0.01"), "gb": graduated}
    return {
        k: int((v * 100).to_integral_value(rounding=ROUND_HALF_UP)) for k, v in out.items() if v
    }


async def seed_usage(runtime: Any, tenant_id: str, events: int) -> dict[str, dict[str, int]]:
    """Metrics, charges on every plan, ``events`` events per subscription in its ended
    period; returns the expected usage cents per (subscription, metric code)."""
    from sqlalchemy import insert

    from novabilling.kit.ids import new_id
    from novabilling.plans.models import Plan
    from novabilling.subscriptions.models import Subscription
    from novabilling.usage.models import BillableMetric, Charge, ChargeRange

    engine = await runtime.engines.engine(tenant_id)
    now = datetime.now(UTC)
    expected: dict[str, dict[str, int]] = {}
    async with engine.begin() as conn:
        plan_ids = list((await conn.execute(select(Plan.id))).scalars())
        metrics = {}
        for code, aggregation, field in (("calls", "COUNT", None), ("gb", "SUM", "gb")):
            metrics[code] = new_id()
            await conn.execute(
                insert(BillableMetric).values(
                    id=metrics[code], name=code.title(), code=code, aggregation_type=aggregation,
                    field_name=field, recurring=False, created_at=now, updated_at=now,
                )
            )  # fmt: skip
        for pid in plan_ids:
            await conn.execute(
                insert(Charge).values(
                    id=new_id(), plan_id=pid, billable_metric_id=metrics["calls"],
                    charge_model="STANDARD", billing_timing="IN_ARREARS", prorated=False,
                    properties={"amount": "0.01"}, created_at=now, updated_at=now,
                )
            )  # fmt: skip
            gb_charge = new_id()
            await conn.execute(
                insert(Charge).values(
                    id=gb_charge, plan_id=pid, billable_metric_id=metrics["gb"],
                    charge_model="GRADUATED", billing_timing="IN_ARREARS", prorated=False,
                    properties={}, created_at=now, updated_at=now,
                )
            )  # fmt: skip
            await conn.execute(
                insert(ChargeRange),
                [
                    dict(id=new_id(), charge_id=gb_charge, from_value=0, to_value=100,
                         per_unit_amount=Decimal("0.10"), flat_amount=Decimal(0), position=0),
                    dict(id=new_id(), charge_id=gb_charge, from_value=101, to_value=None,
                         per_unit_amount=Decimal("0.05"), flat_amount=Decimal(1), position=1),
                ],
            )  # fmt: skip
        subs = (
            await conn.execute(
                select(
                    Subscription.id,
                    Subscription.current_period_start,
                    Subscription.current_period_end,
                )
            )
        ).all()
        raw = await conn.get_raw_connection()
        records = []
        for n, (sid, start, end) in enumerate(subs):
            step = (end - start) / (events + 1)
            calls, gb = 0, Decimal(0)
            for k in range(events):
                at = start + step * (k + 1)
                if k % 2 == 0:
                    calls += 1
                    records.append((new_id(), f"{sid}-{k}", sid, "calls", at, "{}", now))
                else:
                    value = gb_value(n, k)
                    gb += value
                    props = json.dumps({"gb": float(value)})
                    records.append((new_id(), f"{sid}-{k}", sid, "gb", at, props, now))
            expected[sid] = expected_cents(calls, gb)
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            "usage_events",
            records=records,
            columns=[
                "id", "transaction_id", "subscription_id", "code", "timestamp", "properties",
                "created_at",
            ],
        )  # fmt: skip
    return expected


async def usage_mismatches(tenant_ids: list[str], expected: dict[str, dict[str, int]]) -> int:
    """Usage lines (per subscription and metric) that differ from ``expected``."""
    from novabilling.bootstrap import build_runtime
    from novabilling.config import Settings
    from novabilling.invoices.models import Invoice, InvoiceLine
    from novabilling.usage.models import BillableMetric, Charge

    runtime = build_runtime(Settings())
    found: dict[str, dict[str, int]] = {}
    try:
        for tid in tenant_ids:
            maker = await runtime.engines.sessionmaker(tid)
            async with maker() as session:
                rows = await session.execute(
                    select(Invoice.subscription_id, BillableMetric.code, InvoiceLine.amount_minor)
                    .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
                    .join(Charge, Charge.id == InvoiceLine.charge_id)
                    .join(BillableMetric, BillableMetric.id == Charge.billable_metric_id)
                    .where(InvoiceLine.type == "usage")
                )
                for sid, code, amount in rows:
                    per = found.setdefault(str(sid), {})
                    per[code] = per.get(code, 0) + int(amount)
    finally:
        await runtime.close()
    return sum(1 for sid, want in expected.items() if found.get(sid, {}) != want)


async def setup(
    tenants: int, per_tenant: int, events: int = 0
) -> tuple[list[str], dict[str, dict[str, int]]]:
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
    expected: dict[str, dict[str, int]] = {}
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
            if events:
                expected.update(await seed_usage(runtime, tenant_id, events))
    await runtime.close()
    return ids, expected


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
            for status, n in rows:
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
            name = row["datname"]
            await conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
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


def wait_ready(flags: list[Path], procs: list[subprocess.Popen[Any]]) -> None:
    """Until every worker has imported and built its runtime (on a loaded machine that
    takes seconds: a fixed sleep let start-up count as billing time), then one more
    second for them to connect to Redis."""
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in flags):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise RuntimeError("a billing worker did not start")
        time.sleep(0.1)
    time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--per-tenant", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--events", type=int, default=0, help="usage events per subscription")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker_main(args.concurrency, args.ready_file))
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
        tenant_ids, expected_usage = asyncio.run(setup(args.tenants, args.per_tenant, args.events))
        setup_s = time.perf_counter() - t0
        data_dir.mkdir(parents=True, exist_ok=True)
        ready = [data_dir / f"worker-{n}.ready" for n in range(args.workers)]
        for flag in ready:
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--worker", "--concurrency", str(args.concurrency)]
                    + ["--ready-file", str(flag)],
                    env=env,
                )
            )
        wait_ready(ready, procs)
        expected = args.tenants * args.per_tenant
        done, elapsed, by_status = asyncio.run(wait_for(tenant_ids, expected, args.timeout))
        mismatches = (
            asyncio.run(usage_mismatches(tenant_ids, expected_usage)) if args.events else None
        )
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
                    "events_per_subscription": args.events,
                    "usage_lines_checked": len(expected_usage),
                    "usage_mismatches": mismatches,
                    "load_average": os.getloadavg(),
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
