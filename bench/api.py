"""API throughput benchmark on loopback, bounded in time.

    uv run python bench/api.py [--workers 2] [--duration 10] [--connections 32]

Starts ``novabilling serve --workers N`` against PostgreSQL (central + tenant databases
created under a unique prefix, dropped afterwards) and Redis, registers a tenant, then runs
each scenario in turn and prints one JSON line per scenario. The load comes from wrk when
it is installed (``bench/wrk.py``: C, so it leaves the two cores to the server), else from
``bench/load.py`` (``--loader python`` forces it).

Scenarios: ``health``; ``me`` (GET /api/tenants/me with the access token: the contract
gives /api/tenants/me* to the access token only, an API key gets 401); ``customers_post``
and ``customers_get`` (``?limit=20``, after the POST run filled the table) with the API
key; ``webhooks`` (signed Paystack deliveries, each new: verify + inbox insert + 200).
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
from typing import Any

import asyncpg
import httpx
import webhook_intake
import wrk
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("NB_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("NB_BENCH_REDIS", "redis://127.0.0.1:6379/0")


CUSTOMER = (
    '{"email": "c{n}@bench.test", "name": "Bench Customer {n}", '
    '"externalId": "ext-{n}", "currency": "NGN", "country": "NG"}'
)


def python_scenarios(base: str, creds: dict[str, str]) -> dict[str, list[str]]:
    """``bench/load.py`` arguments per scenario (the loader when wrk is missing)."""
    key = f"Authorization: Bearer {creds['apiKey']}"
    tok = f"Authorization: Bearer {creds['accessToken']}"
    return {
        "health": ["--url", f"{base}/health"],
        "me": ["--url", f"{base}/api/tenants/me", "-H", tok],
        "customers_post": [
            *("--url", f"{base}/api/customers", "-H", key),
            *("--method", "POST", "--body-template", CUSTOMER),
        ],
        "customers_get": ["--url", f"{base}/api/customers?limit=20", "-H", key],
    }


def run_python(load_args: list[str], connections: int, duration: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            *load_args,
            *("-c", str(connections), "-d", str(duration)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return {"loader": "python", **result}


def run_wrk(name: str, base: str, creds: dict[str, str], c: int, d: float) -> dict[str, Any]:
    key = f"Authorization: Bearer {creds['apiKey']}"
    tok = f"Authorization: Bearer {creds['accessToken']}"
    if name == "health":
        return wrk.get(f"{base}/health", headers=[], connections=c, duration=d)
    if name == "me":
        return wrk.get(f"{base}/api/tenants/me", headers=[tok], connections=c, duration=d)
    if name == "customers_get":
        return wrk.get(f"{base}/api/customers?limit=20", headers=[key], connections=c, duration=d)
    if name == "customers_post":
        return wrk.templated(
            base,
            method="POST",
            path="/api/customers",
            template=CUSTOMER,
            headers=[key],
            connections=c,
            duration=d,
        )
    raise ValueError(name)


def run_webhooks(base: str, c: int, d: float) -> dict[str, Any]:
    tenant = asyncio.run(webhook_intake.setup(base))
    host = base.removeprefix("http://")
    reqs = webhook_intake.signed_requests(host, tenant, int(d * 6000), bare=False)
    return wrk.replay(base, reqs, connections=c, duration=d)


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
    redis = Redis.from_url(REDIS)
    keys = [key async for key in redis.scan_iter(match=f"{prefix.rstrip('_')}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await redis.delete(*keys[start : start + 1000])
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8077)
    parser.add_argument("--scenarios", default="health,me,customers_post,customers_get,webhooks")
    parser.add_argument("--loader", choices=("wrk", "python"), default="wrk")
    parser.add_argument("--webhook-connections", type=int, default=64)
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
        c, d = args.connections, args.duration
        use_wrk = wrk.available() and args.loader == "wrk"
        for name in args.scenarios.split(","):
            if name == "webhooks":
                if not use_wrk:
                    print(json.dumps({"scenario": name, "skipped": "needs wrk"}), flush=True)
                    continue
                result = run_webhooks(base, args.webhook_connections, d)
            elif use_wrk:
                result = run_wrk(name, base, creds, c, d)
            else:
                result = run_python(python_scenarios(base, creds)[name], c, d)
            print(json.dumps({"scenario": name, "workers": args.workers, **result}), flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        asyncio.run(_drop_prefix(prefix))


if __name__ == "__main__":
    main()
