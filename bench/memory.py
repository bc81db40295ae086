"""Resident memory of the API and job-worker processes after import and warm-up.

    uv run python bench/memory.py [--src CHECKOUT]

Production setup on loopback: PostgreSQL (central + one tenant database under a unique
prefix, dropped afterwards) and Redis. For ``serve --workers 1`` and ``--workers 2`` it
counts the processes the command leaves running (the command's own and all its
descendants) and reads each one's VmRSS from /proc: idle after start-up, then after a
warm-up (register a tenant; 200 rounds of GET /health, GET /api/tenants/me, POST and GET
/api/customers, GET /api/plans), 2 s later and again ``--settle`` seconds later (the
processes return freed heap pages every 30 s, kit/heap.py). Then ``novabilling worker
--no-scheduler``: idle, after it has handled the warm-up's queued jobs, and settled.
``--src`` runs another checkout's ``.venv/bin/novabilling`` (e.g. the code before a
change) with the same steps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import server as bench_server
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("NB_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("NB_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        children = Path(f"/proc/{current}/task/{current}/children")
        if children.exists():
            todo += [int(c) for c in children.read_text().split()]
    return out


def snapshot(pid: int) -> dict[str, Any]:
    procs = []
    for p in tree(pid):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ").strip()
            procs.append({"pid": p, "rss_mib": round(rss_kib(p) / 1024, 1), "cmd": cmd[-70:]})
        except FileNotFoundError:
            continue
    return {
        "processes": len(procs),
        "rss_mib_total": round(sum(p["rss_mib"] for p in procs), 1),
        "each": procs,
    }


def warm_up(base: str, prefix: str, rounds: int) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        creds = client.post(
            "/api/auth/register",
            json={
                "name": "Mem Owner",
                "email": f"{prefix}{secrets.token_hex(3)}@bench.test",
                "password": "bench-password-1",
                "companyName": "Mem Co",
            },
        ).json()
        key = {"Authorization": f"Bearer {creds['apiKey']}"}
        tok = {"Authorization": f"Bearer {creds['accessToken']}"}
        for n in range(rounds):
            client.get("/health")
            client.get("/api/tenants/me", headers=tok)
            client.post(
                "/api/customers",
                json={"externalId": f"m{n}", "email": f"m{n}@bench.test", "currency": "NGN"},
                headers=key,
            )
            client.get("/api/customers?limit=20", headers=key)
            client.get("/api/plans", headers=key)


def wait_healthy(base: str) -> None:
    for _ in range(240):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server did not come up")


def wait_started(pid: int, module: str, limit: float = 120.0) -> None:
    """Until ``pid`` has exec'd into ``module`` and its RSS has not moved for 3 s (the CLI
    migrates first; on a loaded machine imports take a while)."""
    deadline, last, steady = time.monotonic() + limit, -1, 0
    while time.monotonic() < deadline and steady < 3:
        time.sleep(1)
        if module not in Path(f"/proc/{pid}/cmdline").read_text():
            continue
        now = rss_kib(pid)
        steady, last = (steady + 1 if now == last else 0), now


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def _admin(sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(PG.replace("postgresql+asyncpg", "postgresql"))
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def _drop(prefix: str) -> None:
    for row in await _admin(f"SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'"):
        await _admin(f'ALTER DATABASE "{row[0]}" WITH IS_TEMPLATE false')
        await _admin(f'DROP DATABASE IF EXISTS "{row[0]}" WITH (FORCE)')
    for row in await _admin(f"SELECT rolname FROM pg_roles WHERE rolname LIKE '{prefix}%'"):
        await _admin(f'DROP ROLE IF EXISTS "{row[0]}"')
    redis = Redis.from_url(REDIS)
    keys = [k async for k in redis.scan_iter(match=f"{prefix.rstrip('_')}:*", count=1000)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", type=Path, default=ROOT)
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--rounds", type=int, default=200)
    # then idle this long and read again: the processes trim their heap every 30 s
    parser.add_argument("--settle", type=float, default=35.0)
    args = parser.parse_args()
    cli = str(args.src / ".venv" / "bin" / "novabilling")
    prefix = f"nbmem_{secrets.token_hex(3)}_"
    asyncio.run(_admin(f'CREATE DATABASE "{prefix}central"'))
    env = {**bench_server.server_env(prefix, args.port), "NB_ENV": "test"}
    base = f"http://127.0.0.1:{args.port}"
    try:
        for workers in (1, 2):
            server = subprocess.Popen(
                [cli, "serve", "--workers", str(workers)], env=env, start_new_session=True
            )
            try:
                wait_healthy(base)
                time.sleep(3)
                idle = snapshot(server.pid)
                warm_up(base, prefix, args.rounds)
                time.sleep(2)
                warm = snapshot(server.pid)
                time.sleep(args.settle)
                settled = snapshot(server.pid)
            finally:
                stop(server)
            print(
                json.dumps(
                    {
                        "serve_workers": workers,
                        "idle": idle,
                        "after_warm_up": warm,
                        "after_warm_up_settled": settled,
                    }
                )
            )
        worker = subprocess.Popen(
            [cli, "worker", "--no-scheduler"], env=env, start_new_session=True
        )
        try:
            wait_started(worker.pid, "novabilling.worker_main")
            idle = snapshot(worker.pid)
            time.sleep(10)  # the jobs the warm-up queued (customer events) get handled
            warm = snapshot(worker.pid)
            time.sleep(args.settle)
            settled = snapshot(worker.pid)
        finally:
            stop(worker)
        report = {"job_worker": True, "idle": idle, "after_jobs": warm}
        print(json.dumps({**report, "after_jobs_settled": settled}))
    finally:
        asyncio.run(_drop(prefix))
        subprocess.run(["rm", "-rf", f"/tmp/{prefix}data"], check=False)


if __name__ == "__main__":
    main()
