"""API throughput benchmark on loopback, bounded in time.

    uv run python bench/api.py [--workers 2] [--duration 10] [--connections 32]

Starts ``novabilling serve --workers N`` against PostgreSQL (central + tenant databases
created under a unique prefix, dropped afterwards: ``bench/server.py``) and Redis,
registers a tenant, then runs each scenario in turn and prints one JSON line per scenario.
The load comes from wrk when it is installed (``bench/wrk.py``: C, so it leaves the two
cores to the server), else from ``bench/load.py`` (``--loader python`` forces it).

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
import subprocess
import sys
from typing import Any

import httpx
import webhook_intake
import wrk
from server import ROOT, served

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, help="default: a free port")
    parser.add_argument("--scenarios", default="health,me,customers_post,customers_get,webhooks")
    parser.add_argument("--loader", choices=("wrk", "python"), default="wrk")
    parser.add_argument("--webhook-connections", type=int, default=64)
    args = parser.parse_args()

    with served(workers=args.workers, port=args.port) as server:
        base = server.base
        creds = httpx.post(
            f"{base}/api/auth/register",
            json={
                "name": "Bench Owner",
                "email": f"{server.prefix}@bench.test",
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


if __name__ == "__main__":
    main()
