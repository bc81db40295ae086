"""Usage-event intake benchmark (issue 10): ``POST /api/events/batch`` with 100 events a
request against ``novabilling serve --workers N`` on PostgreSQL, next to pgbench's
single-row INSERT rate measured on the same server in the same run.

    uv run python bench/ingest.py [--workers 2] [--duration 10] [--connections 16]

Registers a tenant, creates a plan, a COUNT metric and 10 subscriptions through the API,
then wrk (``bench/lua/template.lua``) sends batches of 100 new events (unique
``transactionId`` per event, spread over the subscriptions). Afterwards the stored rows
are counted (every created event must be there), then pgbench runs ``--duration``
seconds of single-row ``INSERT`` into a table of the same shape (``usage_events``' columns,
unique ``transaction_id``, the (subscription, code, timestamp) index) with the same number
of connections capped at 8 clients. Prints one JSON object: events/s, request p50/p90/p99,
pgbench TPS, their ratio and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
from typing import Any

import asyncpg
import httpx
import wrk
from server import PG, admin, plain_dsn, served, stop

BATCH = 100
SUBSCRIPTIONS = 10

PGBENCH_TABLE = """
CREATE TABLE bench_events (
    id varchar(32) PRIMARY KEY,
    transaction_id varchar(255) UNIQUE NOT NULL,
    subscription_id varchar(32) NOT NULL,
    code varchar(100) NOT NULL,
    timestamp timestamptz NOT NULL,
    properties jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX ON bench_events (subscription_id, code, timestamp);
"""
PGBENCH_SCRIPT = (
    "INSERT INTO bench_events VALUES (md5(random()::text), md5(random()::text) || :client_id,"
    " 'sub_bench', 'calls', now(), '{\"v\": 1}', now());\n"
)


def template(subs: list[str]) -> str:
    """A batch body; wrk's script turns ``{n}`` into a per-request counter."""
    events = [
        {
            "transactionId": f"{{n}}-{k}",
            "subscriptionId": subs[k % len(subs)],
            "code": "calls",
            "properties": {"v": k},
        }
        for k in range(BATCH)
    ]
    return json.dumps({"events": events})


def setup(base: str) -> tuple[dict[str, str], list[str]]:
    creds = httpx.post(
        f"{base}/api/auth/register",
        json={
            "name": "Bench Owner",
            "email": f"ingest-{secrets.token_hex(3)}@bench.test",
            "password": "bench-password-1",
            "companyName": "Bench Co",
        },
        timeout=30,
    ).json()
    headers = {"Authorization": f"Bearer {creds['apiKey']}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            r = client.post(path, json=body)
            r.raise_for_status()
            result: dict[str, Any] = r.json()
            return result

        plan = post(
            "/api/plans",
            {
                "name": "Metered",
                "code": "metered",
                "billingInterval": "MONTHLY",
                "prices": [{"currency": "USD", "amount": 10}],
            },
        )
        metric = post(
            "/api/billable-metrics", {"name": "Calls", "code": "calls", "aggregationType": "COUNT"}
        )
        post(
            "/api/charges",
            {
                "planId": plan["id"],
                "billableMetricId": metric["id"],
                "chargeModel": "STANDARD",
                "properties": {"amount": "0.01"},
            },
        )
        subs = []
        for n in range(SUBSCRIPTIONS):
            customer = post(
                "/api/customers",
                {
                    "email": f"m{n}@bench.test",
                    "name": f"Meter {n}",
                    "externalId": f"m{n}",
                    "currency": "USD",
                },
            )
            sub = post(
                "/api/subscriptions",
                {"customerId": customer["id"], "planId": plan["id"], "currency": "USD"},
            )
            subs.append(sub["id"])
    return creds, subs


async def stored_events(prefix: str) -> int:
    names = await admin(
        f"SELECT datname FROM pg_database WHERE datname LIKE '{prefix}t_%' AND NOT datistemplate"
    )
    total = 0
    for row in names:
        conn = await asyncpg.connect(plain_dsn(row["datname"]))
        try:
            if await conn.fetchval("SELECT to_regclass('usage_events') IS NOT NULL"):
                total += int(await conn.fetchval("SELECT count(*) FROM usage_events"))
        finally:
            await conn.close()
    return total


def pgbench(prefix: str, clients: int, duration: float) -> float:
    db = f"{prefix}pgbench"
    asyncio.run(admin(f'CREATE DATABASE "{db}"'))

    async def create() -> None:
        conn = await asyncpg.connect(plain_dsn(db))
        try:
            await conn.execute(PGBENCH_TABLE)
        finally:
            await conn.close()

    asyncio.run(create())
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT)
    host = PG.split("@", 1)[1].split("/", 1)[0]
    hostname, _, port = host.partition(":")
    out = subprocess.run(
        [
            "pgbench", "-n", "-h", hostname, "-p", port or "5432", "-U", "postgres",
            "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(max(1, round(duration))),
            "-f", script.name, db,
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    os.unlink(script.name)
    found = re.search(r"tps = ([\d.]+)", out.stdout)
    if found is None:
        raise RuntimeError(f"pgbench failed: {out.stderr or out.stdout}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--port", type=int, help="default: a free port")
    args = parser.parse_args()
    if not wrk.available():
        sys.exit("bench/ingest.py needs wrk (apt-get install wrk)")

    with served(workers=args.workers, port=args.port) as server:
        base = server.base
        creds, subs = setup(base)
        body = template(subs)
        key = f"Authorization: Bearer {creds['apiKey']}"
        # warm-up: both workers open their pools and caches
        wrk.templated(
            base, method="POST", path="/api/events/batch", template=body, headers=[key],
            connections=args.connections, duration=2,
        )  # fmt: skip
        before = asyncio.run(stored_events(server.prefix))
        result = wrk.templated(
            base, method="POST", path="/api/events/batch", template=body, headers=[key],
            connections=args.connections, duration=args.duration,
        )  # fmt: skip
        stored = asyncio.run(stored_events(server.prefix)) - before
        load = os.getloadavg()
        stop(server.process)  # pgbench gets the machine to itself, as the server had
        tps = pgbench(server.prefix, min(args.connections, 8), args.duration)
    events_per_second = result["rps"] * BATCH
    print(
        json.dumps(
            {
                "scenario": "events_batch_100",
                "workers": args.workers,
                "connections": args.connections,
                "requests": result["requests"],
                "non_2xx": result["non_2xx"],
                "events_stored": stored,
                "events_per_second": round(events_per_second),
                "latency_ms": result["latency_ms"],
                "pgbench_insert_tps": round(tps),
                "ratio_to_pgbench": round(events_per_second / tps, 2) if tps else None,
                "load_average_during": load,
                "load_average_after": os.getloadavg(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
