"""API throughput benchmark on loopback, bounded in time.

    uv run python bench/api.py [--workers 2] [--duration 10] [--connections 32]

Starts ``novabilling serve --workers N`` against PostgreSQL (central + tenant databases
created under a unique prefix, dropped afterwards) and Redis, registers a tenant, then runs
``bench/load.py`` against each scenario in turn and prints one JSON line per scenario.
Rate limiting is disabled (``NB_RATE_LIMIT=0``) and the access log is at WARNING so the
numbers measure the service, not the limiter or the log sink.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("NB_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("NB_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def scenarios(base: str, creds: dict[str, str]) -> dict[str, list[str]]:
    key = f"Authorization: Bearer {creds['apiKey']}"
    tok = f"Authorization: Bearer {creds['accessToken']}"
    customer = (
        '{"email": "c{n}@bench.test", "name": "Bench Customer {n}", '
        '"externalId": "ext-{n}", "currency": "NGN", "country": "NG"}'
    )
    return {
        "health": ["--url", f"{base}/health"],
        "me": ["--url", f"{base}/api/tenants/me", "-H", tok],
        "customers_post": [
            "--url",
            f"{base}/api/customers",
            "-H",
            key,
            "--method",
            "POST",
            "--body-template",
            customer,
        ],
        "customers_get": ["--url", f"{base}/api/customers?limit=20", "-H", key],
    }


async def _admin(sql: str) -> list[asyncpg.Record]:
    dsn = PG.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def _drop_prefix(prefix: str) -> None:
    for row in await _admin(f"SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'"):
        await _admin(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    for row in await _admin(f"SELECT rolname FROM pg_roles WHERE rolname LIKE '{prefix}%'"):
        await _admin(f'DROP ROLE IF EXISTS "{row["rolname"]}"')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8077)
    parser.add_argument("--scenarios", default="health,me,customers_post,customers_get")
    args = parser.parse_args()

    prefix = f"nbbench_{secrets.token_hex(3)}_"
    asyncio.run(_admin(f'CREATE DATABASE "{prefix}central"'))
    env = {
        **os.environ,
        "NB_DATA_DIR": f"/tmp/{prefix}data",
        "NB_DATABASE_URL": PG.rsplit("/", 1)[0] + f"/{prefix}central",
        "NB_TENANT_DATABASE_URL": PG,
        "NB_TENANT_DB_PREFIX": f"{prefix}t_",
        "NB_REDIS_URL": REDIS,
        "NB_REDIS_PREFIX": prefix.rstrip("_"),
        "NB_RATE_LIMIT": "0",
        "NB_LOG_LEVEL": "WARNING",
        "NB_PORT": str(args.port),
        "NB_RUN_SCHEDULER": "false",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from novabilling.cli import app; app()",
            "serve",
            "--workers",
            str(args.workers),
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        creds = httpx.post(
            f"{base}/api/auth/register",
            json={
                "name": "Bench Owner",
                "email": f"{prefix}@bench.test",
                "password": "bench-password-1",
                "companyName": "Bench Co",
            },
            timeout=30,
        ).json()
        wanted = args.scenarios.split(",")
        for name, load_args in scenarios(base, creds).items():
            if name not in wanted:
                continue
            out = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "load.py"),
                    *load_args,
                    "-c",
                    str(args.connections),
                    "-d",
                    str(args.duration),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout)
            print(
                json.dumps(
                    {
                        "scenario": name,
                        "workers": args.workers,
                        "rps": result["rps"],
                        "p50_ms": result["latency_ms"]["p50"],
                        "p99_ms": result["latency_ms"]["p99"],
                        "statuses": result["statuses"],
                        "errors": result["errors"],
                    }
                ),
                flush=True,
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        asyncio.run(_drop_prefix(prefix))


if __name__ == "__main__":
    main()
