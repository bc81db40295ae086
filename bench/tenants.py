"""Many tenants on one server under a connection cap, bounded in time.

    uv run python bench/tenants.py [--tenants 1000] [--workers 2] [--cap 40] [--duration 10]
                                   [--pgbouncer] [--bouncer-idle 1]

Starts its own PostgreSQL cluster (initdb under a temp dir, ``max_connections=100``, like
the production default; the shared server is not touched), registers ``--tenants``
tenants (each its own database and role, copied from the migrated template), then serves
them with ``novabilling serve --workers N`` and ``NB_MAX_DB_CONNECTIONS=--cap`` per
process. Two wrk runs of ``GET /api/customers?limit=20`` with the API key:

- ``single``: every request for one tenant;
- ``round_robin``: request i for tenant i mod N, so each request meets a tenant whose
  connection was most likely taken over by others in between.

While each run lasts, PostgreSQL's own count of client connections (pg_stat_activity) is
sampled every 20 ms. Prints one JSON line per run and a summary line: the round-robin
throughput as a share of the single-tenant one (target >= 0.5), errors (target 0), the
highest connection count seen (target <= workers x cap).

``--pgbouncer``: Debian's PgBouncer in transaction mode in front of the cluster (one server
connection per tenant database, idle ones closed after ``--bouncer-idle`` seconds); tenants
are registered and served through it with ``NB_PGBOUNCER=true`` (the central database is
reached directly). PostgreSQL's connection count is then PgBouncer's server connections:
PgBouncer has no cap over all databases, only the idle timeout bounds them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import wrk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/servers.py: the throwaway PostgreSQL cluster

from tests.servers import PgBouncer, PostgresCluster  # noqa: E402

PATH = "/api/customers?limit=20"


def settings_env(
    cluster: PostgresCluster,
    data_dir: Path,
    args: argparse.Namespace,
    bouncer: PgBouncer | None = None,
) -> dict[str, str]:
    server = cluster.url
    extra = {"NB_PGBOUNCER": "true"} if bouncer is not None else {}
    return {
        **extra,
        "NB_ENV": "test",
        "NB_DATA_DIR": str(data_dir),
        "NB_DATABASE_URL": server.rsplit("/", 1)[0] + "/nb_central",
        "NB_TENANT_DATABASE_URL": bouncer.url() if bouncer is not None else server,
        "NB_TENANT_DB_PREFIX": "nb_t_",
        "NB_RATE_LIMIT": "0",
        "NB_LOG_LEVEL": "WARNING",
        "NB_RUN_SCHEDULER": "false",
        "NB_ARGON2_TIME_COST": "1",
        "NB_ARGON2_MEMORY_KIB": "1024",
        "NB_MAX_DB_CONNECTIONS": str(args.cap),
        "NB_PORT": str(args.port),
    }


async def register_all(env: dict[str, str], count: int, parallel: int) -> list[str]:
    """Register ``count`` tenants in process (the API's own register service); API keys."""
    from novabilling.auth import service
    from novabilling.bootstrap import build_runtime
    from novabilling.config import Settings
    from novabilling.tenancy.operations import migrate_central

    os.environ.update(env)
    settings = Settings()
    await migrate_central(settings)
    runtime = build_runtime(settings)
    gate = asyncio.Semaphore(parallel)
    keys: list[str] = []
    started = time.monotonic()

    async def one(n: int) -> None:
        async with gate:
            body = await service.register(
                runtime,
                name="Bench Owner",
                email=f"owner{n}@bench.test",
                password="bench-password-1",
                company_name=f"Bench {n}",
            )
            keys.append(body["apiKey"])
            if len(keys) % 100 == 0:
                rate = len(keys) / (time.monotonic() - started)
                print(f"registered {len(keys)}/{count} ({rate:.1f}/s)", file=sys.stderr)

    try:
        await asyncio.gather(*(one(n) for n in range(count)))
    finally:
        await runtime.close()
    return keys


class Sampler:
    """Client connections PostgreSQL has open (pg_stat_activity), every 20 ms."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.peak = 0
        self.samples = 0

    async def run(self, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres")
        try:
            while not stop.is_set():
                count = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                )
                self.peak = max(self.peak, int(count))
                self.samples += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.02)
        finally:
            await conn.close()


async def measured(
    base: str, keys_file: Path, port: int, connections: int, duration: float
) -> dict[str, Any]:
    sampler = Sampler(port)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    try:
        result = await asyncio.to_thread(
            wrk.round_robin,
            base,
            path=PATH,
            keys_file=keys_file,
            connections=connections,
            duration=duration,
        )
    finally:
        stop.set()
        await sampling
    return {**result, "pg_connections_peak": sampler.peak, "pg_samples": sampler.samples}


def serve(env: dict[str, str], workers: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from novabilling.cli import app; app()", "serve",
         "--workers", str(workers), "--no-migrate"],
        env={**os.environ, **env},
        cwd=ROOT,
        start_new_session=True,
    )  # fmt: skip


def wait_healthy(base: str) -> None:
    for _ in range(240):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not come up")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cap", type=int, default=40, help="NB_MAX_DB_CONNECTIONS per process")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--register-parallel", type=int, default=4)
    parser.add_argument("--port", type=int, default=8079)
    parser.add_argument("--pgbouncer", action="store_true", help="serve tenants via PgBouncer")
    parser.add_argument("--bouncer-idle", type=float, default=1.0, help="server_idle_timeout")
    args = parser.parse_args()
    if not wrk.available():
        raise SystemExit("needs wrk (apt-get install wrk)")

    cluster = PostgresCluster(max_connections=100, name="bench-tenants").start()
    work = Path(tempfile.mkdtemp(prefix="nb-bench-tenants-"))
    server = None
    bouncer = None
    try:
        if args.pgbouncer:
            bouncer = PgBouncer(
                upstream_port=cluster.port,
                server_pool_size=1,
                server_idle_timeout=args.bouncer_idle,
            ).start()
        asyncio.run(_admin(cluster.port, "CREATE DATABASE nb_central"))
        env = settings_env(cluster, work / "data", args, bouncer)
        started = time.monotonic()
        keys = asyncio.run(register_all(env, args.tenants, args.register_parallel))
        print(
            json.dumps({"registered": len(keys), "seconds": round(time.monotonic() - started, 1)})
        )
        single_file, all_file = work / "one.keys", work / "all.keys"
        single_file.write_text(keys[0] + "\n")
        all_file.write_text("\n".join(keys) + "\n")

        server = serve(env, args.workers)
        base = f"http://127.0.0.1:{args.port}"
        wait_healthy(base)
        results = {}
        for name, keys_file in (("single", single_file), ("round_robin", all_file)):
            asyncio.run(measured(base, keys_file, cluster.port, args.connections, args.warmup))
            result = asyncio.run(
                measured(base, keys_file, cluster.port, args.connections, args.duration)
            )
            results[name] = result
            tenants = 1 if name == "single" else len(keys)
            line = {
                "scenario": name,
                "tenants": tenants,
                "workers": args.workers,
                "cap": args.cap,
                "pgbouncer": bouncer is not None,
            }
            print(json.dumps({**line, **result}), flush=True)
        ratio = results["round_robin"]["rps"] / results["single"]["rps"]
        errors = sum(r["non_2xx"] + (1 if r["errors"] else 0) for r in results.values())
        peak = max(r["pg_connections_peak"] for r in results.values())
        print(json.dumps({"summary": {
            "round_robin_over_single": round(ratio, 2),
            "errors": errors,
            "pg_connections_peak": peak,
            "allowed": args.workers * args.cap,
            "met": ratio >= 0.5 and errors == 0 and peak <= args.workers * args.cap,
        }}), flush=True)  # fmt: skip
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        if bouncer is not None:
            bouncer.stop()
        cluster.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


async def _admin(port: int, sql: str) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
