"""Analytics benchmark: every /api/analytics endpoint on one PostgreSQL tenant holding
100,000 invoices, 20,000 subscriptions and 200,000 payments (issue 12: < 200 ms p50 each).

    uv run python bench/analytics.py [--invoices 100000] [--subscriptions 20000]
        [--payments 200000] [--customers 10000] [--rounds 30] [--explain]

Needs PostgreSQL (``NB_TEST_PG_URL``, default postgres@127.0.0.1:5432). Creates its own
central database and tenant database (registered through the API, in process) and drops
them at the end. The rows are written with COPY (two years of history, seven currencies,
every status; a fixed random seed), then ANALYZE. Each endpoint is called through the
ASGI app (routing, auth, the read session, JSON) ``--rounds`` times after 3 warm-up calls;
the script prints p50 / p90 / max per endpoint, the machine's load average before and
after, and exits 1 if a p50 is over the target. ``--explain`` also prints the plan of each
report's statements (EXPLAIN ANALYZE, via the tenant's log of statements).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
PG = os.environ.get("NB_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
TARGET_MS = 200.0
CURRENCIES = {  # code: (weight, price scale vs USD)
    "USD": (30, 1),
    "NGN": (25, 1550),
    "KES": (15, 153),
    "UGX": (10, 3750),
    "EUR": (8, 1),
    "GHS": (7, 15),
    "ZAR": (5, 18),
}
INTERVALS = ("MONTHLY", "MONTHLY", "MONTHLY", "QUARTERLY", "YEARLY", "WEEKLY")
SUB_STATUS = (("ACTIVE", 70), ("CANCELED", 10), ("TRIALING", 8), ("PAUSED", 7), ("PAST_DUE", 5))
INVOICE_STATUS = (("PAID", 70), ("PENDING", 15), ("CANCELED", 10), ("FAILED", 5))
PAYMENT_STATUS = (
    ("SUCCEEDED", 60),
    ("FAILED", 20),
    ("PROCESSING", 10),
    ("PENDING", 5),
    ("REFUNDED", 5),
)
PROVIDERS = ("stripe", "paystack", "flutterwave", "mpesa", "manual")


def settings(run: str, data_dir: Path) -> Any:
    from novabilling.config import Settings

    return Settings(
        env="test",
        data_dir=data_dir,
        database_url=PG.rsplit("/", 1)[0] + f"/nbbench_{run}_central",
        tenant_database_url=PG,
        tenant_db_prefix=f"nbbench_{run}_t_",
        rate_limit="0",
        log_level="WARNING",
        run_scheduler=False,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )


def _pick(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _id(prefix: str, n: int) -> str:
    return f"{prefix}{n:010d}"


def generate(
    *, customers: int, subscriptions: int, invoices: int, payments: int, now: datetime
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows per table, as tuples in the column order of ``COLUMNS``."""
    rng = random.Random(12)
    start = now - timedelta(days=730)
    codes = list(CURRENCIES)
    weights = [CURRENCIES[c][0] for c in codes]

    def moment(after: datetime) -> datetime:
        span = max(1.0, (now - after).total_seconds())
        return after + timedelta(seconds=rng.random() * span)

    rows: dict[str, list[tuple[Any, ...]]] = {k: [] for k in COLUMNS}
    for p in range(20):
        interval = INTERVALS[p % len(INTERVALS)]
        rows["plans"].append(
            (
                _id("pl", p),
                f"Plan {p}",
                f"plan_{p}",
                interval,
                "IN_ADVANCE",
                "[]",
                True,
                0,
                start,
                start,
            )
        )
        usd = 500 + 500 * p
        for code in codes:
            amount = usd * CURRENCIES[code][1]
            rows["plan_prices"].append(
                (_id(f"pp{code}", p), _id("pl", p), code, amount, True, start, start)
            )
    cust_currency = []
    for c in range(customers):
        created = moment(start)
        code = rng.choices(codes, weights)[0]
        cust_currency.append((created, code))
        rows["customers"].append(
            (_id("cu", c), f"ext_{c}", f"c{c}@bench.test", f"Customer {c}", code, created, created)
        )
    subs = []
    for s in range(subscriptions):
        c = rng.randrange(customers)
        created = moment(cust_currency[c][0])
        code = cust_currency[c][1]
        plan = rng.randrange(20)
        status = _pick(rng, SUB_STATUS)
        canceled = moment(created) if status == "CANCELED" else None
        previous = _id("pl", rng.randrange(20)) if rng.random() < 0.2 else None
        updated = moment(created)
        interval = INTERVALS[plan % len(INTERVALS)]
        amount = (500 + 500 * plan) * CURRENCIES[code][1]
        subs.append((_id("su", s), _id("cu", c), created, code))
        rows["subscriptions"].append(
            (
                _id("su", s),
                _id("cu", c),
                _id("pl", plan),
                previous,
                status,
                code,
                amount,
                interval,
                "IN_ADVANCE",
                created,
                created,
                now,
                canceled,
                canceled,
                False,
                created,
                created,
                updated,
            )
        )
    for i in range(invoices):
        sub_id, cust_id, created_after, code = subs[rng.randrange(subscriptions)]
        created = moment(created_after)
        status = _pick(rng, INVOICE_STATUS)
        paid = created + timedelta(days=rng.random() * 10) if status == "PAID" else None
        total = rng.randrange(500, 50_000) * CURRENCIES[code][1]
        rows["invoices"].append(
            (
                _id("in", i),
                cust_id,
                sub_id,
                f"B-{i:08d}",
                status,
                code,
                total,
                0,
                total,
                created + timedelta(days=30),
                paid,
                created,
                created,
                0,
            )
        )
    for p in range(payments):
        inv = rows["invoices"][rng.randrange(invoices)]
        status = _pick(rng, PAYMENT_STATUS)
        refunded = inv[8] if status == "REFUNDED" else 0
        created = moment(inv[11])
        rows["payments"].append(
            (
                _id("pa", p),
                inv[0],
                inv[1],
                rng.choice(PROVIDERS),
                "CHARGE",
                inv[8],
                inv[5],
                status,
                refunded,
                0,
                created,
                created,
            )
        )
    for n in range(invoices // 20):
        inv = rows["invoices"][rng.randrange(invoices)]
        status = rng.choice(("DRAFT", "FINALIZED", "FINALIZED", "VOIDED"))
        created = moment(inv[11])
        rows["credit_notes"].append(
            (_id("cn", n), inv[0], inv[1], inv[8] // 10, inv[5], "OTHER", status, created, created)
        )
    return rows


COLUMNS = {
    "plans": (
        "id",
        "name",
        "code",
        "billing_interval",
        "billing_timing",
        "features",
        "is_active",
        "invoice_grace_period_days",
        "created_at",
        "updated_at",
    ),
    "plan_prices": (
        "id",
        "plan_id",
        "currency",
        "amount_minor",
        "is_active",
        "created_at",
        "updated_at",
    ),
    "customers": ("id", "external_id", "email", "name", "currency", "created_at", "updated_at"),
    "subscriptions": (
        "id",
        "customer_id",
        "plan_id",
        "previous_plan_id",
        "status",
        "currency",
        "amount_minor",
        "billing_interval",
        "billing_timing",
        "billing_anchor",
        "current_period_start",
        "current_period_end",
        "canceled_at",
        "ended_at",
        "cancel_at_period_end",
        "started_at",
        "created_at",
        "updated_at",
    ),
    "invoices": (
        "id",
        "customer_id",
        "subscription_id",
        "invoice_number",
        "status",
        "currency",
        "subtotal_minor",
        "tax_minor",
        "total_minor",
        "due_date",
        "paid_at",
        "created_at",
        "updated_at",
        "collection_attempts",
    ),
    "payments": (
        "id",
        "invoice_id",
        "customer_id",
        "provider",
        "kind",
        "amount_minor",
        "currency",
        "status",
        "refunded_minor",
        "check_attempts",
        "created_at",
        "updated_at",
    ),
    "credit_notes": (
        "id",
        "invoice_id",
        "customer_id",
        "amount_minor",
        "currency",
        "reason",
        "status",
        "created_at",
        "updated_at",
    ),
}


async def load(runtime: Any, tenant_id: str, rows: dict[str, list[tuple[Any, ...]]]) -> float:
    """COPY every table into the tenant database, then ANALYZE; returns seconds."""
    began = time.perf_counter()
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        conn = await session.connection()
        raw = (await conn.get_raw_connection()).driver_connection
        for table, columns in COLUMNS.items():
            records = rows[table]
            await raw.copy_records_to_table(table, records=records, columns=list(columns))
        await session.commit()
    engine = await runtime.engines.engine(tenant_id)
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.exec_driver_sql("VACUUM ANALYZE")  # steady state: autovacuum has run
    return time.perf_counter() - began


def paths(now: datetime) -> list[str]:
    year_ago = (now - timedelta(days=365)).date().isoformat()
    today = now.date().isoformat()
    span = f"dateFrom={year_ago}&dateTo={today}"
    return [
        "revenue",
        f"revenue?{span}&currency=NGN",
        f"revenue?{span}&byCurrency=true",
        "subscriptions",
        f"subscriptions?{span}",
        "customers",
        f"customers?{span}&byCurrency=true",
        "payments",
        f"payments?{span}&provider=stripe",
        "mrr-breakdown",
        "mrr-breakdown?byCurrency=true",
        "net-revenue",
        f"net-revenue?{span}&byCurrency=true",
        "churn-cohorts",
        "churn-cohorts?months=24",
        "ltv",
        "ltv?byCurrency=true",
    ]


async def measure(client: httpx.AsyncClient, key: str, path: str, rounds: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(3):
        (await client.get(f"/api/analytics/{path}", headers=headers)).raise_for_status()
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        r = await client.get(f"/api/analytics/{path}", headers=headers)
        times.append((time.perf_counter() - began) * 1000)
        r.raise_for_status()
    times.sort()
    return {
        "path": path,
        "p50_ms": round(statistics.median(times), 1),
        "p90_ms": round(times[int(len(times) * 0.9) - 1], 1),
        "max_ms": round(times[-1], 1),
    }


async def explain(runtime: Any, tenant_id: str) -> None:
    """EXPLAIN ANALYZE of the report statements, captured from the engine's log."""
    from sqlalchemy import event

    from novabilling.analytics import service
    from novabilling.analytics.params import Query
    from novabilling.kit.fx import rates_from_settings

    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        conn = await session.connection()
        statements: list[tuple[str, Any]] = []

        def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
            statements.append((statement, params))

        event.listen(conn.sync_connection, "before_cursor_execute", capture)
        rates = rates_from_settings({})
        now = runtime.clock.now()
        await service.revenue(session, query=Query(), rates=rates)
        await service.mrr_breakdown(session, query=Query(), rates=rates, now=now)
        await service.net_revenue(session, query=Query(), rates=rates)
        await service.churn_cohorts(session, months=12, now=now)
        await service.ltv(session, rates=rates, now=now)
        await service.payments(session, query=Query())
        event.remove(conn.sync_connection, "before_cursor_execute", capture)
        raw = (await conn.get_raw_connection()).driver_connection
        for statement, params in statements:
            plan = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS OFF) {statement}", *(params or ()))
            print("\n".join(row[0] for row in plan), "\n", file=sys.stderr)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from novabilling.app import create_app
    from novabilling.bootstrap import build_runtime
    from novabilling.tenancy.operations import migrate_central

    run_id = secrets.token_hex(3)
    data_dir = Path(f"/tmp/nbbench-analytics-{run_id}")
    cfg = settings(run_id, data_dir)
    await _admin(f'CREATE DATABASE "nbbench_{run_id}_central"')
    try:
        await migrate_central(cfg)
        runtime = build_runtime(cfg)
        app = create_app(cfg, runtime=runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            r = await client.post(
                "/api/auth/register",
                json={
                    "name": "Bench",
                    "email": f"bench-{run_id}@test.local",
                    "password": "correct-horse-battery",
                    "companyName": "Analytics Bench",
                },
            )
            r.raise_for_status()
            tenant_id, key = r.json()["tenant"]["id"], r.json()["apiKey"]
            now = runtime.clock.now()
            rows = generate(
                customers=args.customers,
                subscriptions=args.subscriptions,
                invoices=args.invoices,
                payments=args.payments,
                now=now,
            )
            seconds = await load(runtime, tenant_id, rows)
            if args.explain:
                await explain(runtime, tenant_id)
            load_before = os.getloadavg()
            results = [await measure(client, key, p, args.rounds) for p in paths(now)]
            load_after = os.getloadavg()
        await runtime.close()
    finally:
        await _cleanup(run_id)
    return {
        "rows": {table: len(values) for table, values in rows.items()},
        "load_seconds": round(seconds, 1),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in load_after],
        "results": results,
        "target_p50_ms": TARGET_MS,
        "all_under_target": all(r["p50_ms"] < TARGET_MS for r in results),
    }


async def _admin(*statements: str) -> None:
    import asyncpg

    host = PG.split("@", 1)[1].split("/", 1)[0]
    hostname, _, port = host.partition(":")
    conn = await asyncpg.connect(
        host=hostname, port=int(port or 5432), user="postgres", database="postgres"
    )
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _cleanup(run_id: str) -> None:
    import asyncpg

    host = PG.split("@", 1)[1].split("/", 1)[0]
    hostname, _, port = host.partition(":")
    conn = await asyncpg.connect(
        host=hostname, port=int(port or 5432), user="postgres", database="postgres"
    )
    try:
        for row in await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", f"nbbench_{run_id}_%"
        ):
            await conn.execute(f'ALTER DATABASE "{row["datname"]}" WITH IS_TEMPLATE false')
            await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        for row in await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", f"nbbench_{run_id}_%"
        ):
            await conn.execute(f'DROP ROLE IF EXISTS "{row["rolname"]}"')
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--subscriptions", type=int, default=20_000)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--payments", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["all_under_target"] else 1)


if __name__ == "__main__":
    main()
