"""What one request for a tenant whose connection is cold costs, step by step.

    uv run python bench/cold_tenant.py [--tenants 40] [--requests 300] [--profile STEP]

Starts its own PostgreSQL cluster (like bench/tenants.py; autovacuum off so it adds no
CPU of its own), registers ``--tenants`` tenants, then runs each step ``--requests``
times one after the other (no concurrency: every figure is the cost of one request),
each request for the next tenant in turn:

- ``connect``: a bare ``asyncpg.connect`` + close (PostgreSQL backend start-up and exit);
- ``connect_select1``: the same plus ``SELECT 1``;
- ``connect_list``: the same plus the customers page statement (prepare + execute on a
  backend whose catalog caches are cold);
- ``list_warm``: the page statement again on a connection that has run it (one tenant);
- ``registry_cold``: the API's own path (``EngineRegistry`` read session under a cap of
  2 tenant connections, so each request takes a connection over from another tenant),
  the page statement through SQLAlchemy;
- ``registry_warm``: the same for one tenant (its connection stays pooled);
- ``central_cold``: the central look-ups of a tenant whose caches expired: the API key
  (``PrincipalResolver``) and the tenant's database location (``EngineRegistry``).

For each: wall ms, client CPU ms (this process, ``time.process_time``) and server CPU ms
(the postmaster's own and its exited children's CPU ticks from ``/proc``: every backend
that served the step, start-up to exit, as the step disposes its connections before
the count is read) per request. ``--profile STEP``: cProfile (CPU time) of that step,
top functions by own and cumulative time on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

import tenants as bench_tenants

TICK = os.sysconf("SC_CLK_TCK")


def server_cpu_ms(data_dir: Path) -> float:
    """The postmaster's CPU plus that of its exited (reaped) children, ms."""
    pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) * 1000 / TICK


Step = Callable[[int], Awaitable[None]]


async def measure(
    name: str,
    step: Step,
    *,
    requests: int,
    data_dir: Path,
    after: Callable[[], Awaitable[None]],
    profile: bool,
) -> dict[str, Any]:
    await step(0)  # warm-up: imports, first compilation
    await after()
    await asyncio.sleep(0.3)
    server0, cpu0, wall0 = server_cpu_ms(data_dir), time.process_time(), time.perf_counter()
    # CPU time, not wall time: waits for the server or the other core are not counted
    profiler = cProfile.Profile(time.process_time) if profile else None
    if profiler is not None:
        profiler.enable()
    for i in range(requests):
        await step(i)
    if profiler is not None:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await after()  # every backend of the step exits, so its CPU is counted
    await asyncio.sleep(0.5)
    server = server_cpu_ms(data_dir) - server0
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
    return {
        "step": name,
        "requests": requests,
        "wall_ms": round(wall * 1000 / requests, 2),
        "client_cpu_ms": round(cpu * 1000 / requests, 2),
        "server_cpu_ms": round(server / requests, 2),
    }


async def run(cluster: bench_tenants.PostgresCluster, work: Path, args: argparse.Namespace) -> None:
    from novabilling.billing import accounts
    from novabilling.bootstrap import build_runtime
    from novabilling.config import Settings
    from novabilling.tenancy.models import Tenant

    env = bench_tenants.settings_env(cluster, work / "data", args)
    keys = await bench_tenants.register_all(env, args.tenants, 4)
    os.environ.update(env)
    # 2 tenant connections: central pool 1 (a quarter of 3), tenants share the other 2
    os.environ["NB_MAX_DB_CONNECTIONS"] = "3"
    runtime = build_runtime(Settings())
    async with runtime.central() as session:
        tenant_ids = list((await session.scalars(select(Tenant.id).order_by(Tenant.id))).all())
    urls = [await runtime.engines._tenant_url(t) for t in tenant_ids]
    dsns = [u.replace("postgresql+asyncpg", "postgresql") for u in urls]
    statement = accounts._page_statement(False, False, False, None, None)
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())  # type: ignore[attr-defined]
    expanded = compiled.construct_expanded_state({"nb_limit": 20, "nb_offset": 0})
    page_sql = expanded.statement
    page_args = [expanded.parameters[name] for name in expanded.positiontup or ()]
    count = len(tenant_ids)

    async def connect(i: int) -> None:
        conn = await asyncpg.connect(dsns[i % count], ssl=False)
        await conn.close()

    async def connect_select1(i: int) -> None:
        conn = await asyncpg.connect(dsns[i % count], ssl=False)
        await conn.fetchval("SELECT 1")
        await conn.close()

    async def connect_list(i: int) -> None:
        conn = await asyncpg.connect(dsns[i % count], ssl=False)
        await conn.fetch(page_sql, *page_args)
        await conn.close()

    warm: list[asyncpg.Connection] = []

    async def list_warm(i: int) -> None:
        if not warm:
            warm.append(await asyncpg.connect(dsns[0], ssl=False))
        await warm[0].fetch(page_sql, *page_args)

    async def close_warm() -> None:
        while warm:
            await warm.pop().close()

    async def registry(tenant_id: str) -> None:
        maker = await runtime.engines.read_sessionmaker(tenant_id)
        async with maker() as session:
            await accounts.list_customers(session, page=1, limit=20)

    async def registry_cold(i: int) -> None:
        await registry(tenant_ids[i % count])

    async def registry_warm(i: int) -> None:
        await registry(tenant_ids[0])

    async def central_cold(i: int) -> None:
        runtime.principals._keys.clear()
        runtime.principals._active.clear()
        await runtime.principals.resolve(keys[i % count], session_only=False)
        await runtime.engines._tenant_url(tenant_ids[i % count])

    async def nothing() -> None:
        return None

    async def dispose() -> None:
        """Close every connection; the engines (and what they know) stay."""
        for engine in [runtime.engines._entries[t].engine for t in runtime.engines._entries]:
            await engine.dispose()
        await runtime.central_engine.dispose()

    steps: list[tuple[str, Step, Callable[[], Awaitable[None]]]] = [
        ("connect", connect, nothing),
        ("connect_select1", connect_select1, nothing),
        ("connect_list", connect_list, nothing),
        ("list_warm", list_warm, close_warm),
        ("registry_cold", registry_cold, dispose),
        ("registry_warm", registry_warm, dispose),
        ("central_cold", central_cold, dispose),
    ]
    try:
        for name, step, after in steps:
            result = await measure(
                name,
                step,
                requests=args.requests,
                data_dir=cluster.data,
                after=after,
                profile=args.profile == name,
            )
            print(json.dumps(result), flush=True)
    finally:
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=40)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", default="", help="cProfile this step (CPU time)")
    parser.add_argument("--cap", type=int, default=40)
    parser.add_argument("--port", type=int, default=8079)
    args = parser.parse_args()
    cluster = bench_tenants.PostgresCluster(max_connections=100, name="bench-cold").start()
    work = Path(tempfile.mkdtemp(prefix="nb-bench-cold-"))
    try:
        asyncio.run(bench_tenants._admin(cluster.port, "CREATE DATABASE nb_central"))
        asyncio.run(bench_tenants._admin(cluster.port, "ALTER SYSTEM SET autovacuum = off"))
        asyncio.run(bench_tenants._admin(cluster.port, "SELECT pg_reload_conf()"))
        asyncio.run(run(cluster, work, args))
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
