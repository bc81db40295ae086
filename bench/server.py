"""One ``novabilling serve`` for the HTTP benchmarks (``bench/api.py``, ``bench/ingest.py``):
its own central database, tenant database prefix and Redis prefix, started with the
benchmark settings, stopped and dropped afterwards.

    with served(workers=2, port=8077) as server:
        ...  # server.base, server.prefix, server.process (the workers are its children)

Rate limiting is off (``NB_RATE_LIMIT=0``) and the log level WARNING, so the numbers
measure the service, not the limiter or the log sink; the scheduler does not run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("NB_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("NB_BENCH_REDIS", "redis://127.0.0.1:6379/0")
START_TIMEOUT_S = 240.0  # migrations on a fresh central database, on a loaded machine


@dataclass(frozen=True)
class Served:
    base: str
    prefix: str
    process: subprocess.Popen[Any]


def plain_dsn(database: str = "postgres") -> str:
    """asyncpg's DSN of ``database`` on the benchmark's PostgreSQL server."""
    return PG.replace("postgresql+asyncpg", "postgresql").rsplit("/", 1)[0] + f"/{database}"


async def admin(sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(plain_dsn())
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def drop_prefix(prefix: str) -> None:
    """The run's databases (a tenant template database is un-marked first), roles and
    Redis keys."""
    like = f"SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'"
    for row in await admin(like + " AND datistemplate"):
        await admin(f'ALTER DATABASE "{row["datname"]}" WITH IS_TEMPLATE false')
    for row in await admin(like):
        await admin(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    for row in await admin(f"SELECT rolname FROM pg_roles WHERE rolname LIKE '{prefix}%'"):
        await admin(f'DROP ROLE IF EXISTS "{row["rolname"]}"')
    redis = Redis.from_url(REDIS)
    keys = [key async for key in redis.scan_iter(match=f"{prefix.rstrip('_')}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await redis.delete(*keys[start : start + 1000])
    await redis.aclose()


def server_env(prefix: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "NB_DATA_DIR": f"/tmp/{prefix}data",
        "NB_DATABASE_URL": PG.rsplit("/", 1)[0] + f"/{prefix}central",
        "NB_TENANT_DATABASE_URL": PG,
        "NB_TENANT_DB_PREFIX": f"{prefix}t_",
        "NB_REDIS_URL": REDIS,
        "NB_REDIS_PREFIX": prefix.rstrip("_"),
        "NB_RATE_LIMIT": "0",
        "NB_LOG_LEVEL": "WARNING",
        "NB_PORT": str(port),
        "NB_RUN_SCHEDULER": "false",
    }


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM to the server's process group (the workers too), then wait."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def free_port() -> int:
    """A port nothing listens on now (another engineer's server may hold the usual ones:
    benchmarking it instead of ours must not happen)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def served(*, workers: int, port: int | None = None) -> Iterator[Served]:
    """``port``: None picks a free one."""
    port = port or free_port()
    prefix = f"nbbench_{secrets.token_hex(3)}_"
    asyncio.run(admin(f'CREATE DATABASE "{prefix}central"'))
    process = subprocess.Popen(
        [sys.executable, "-c", "from novabilling.cli import app; app()", "serve"]
        + ["--workers", str(workers)],
        env=server_env(prefix, port),
        cwd=ROOT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield Served(base, prefix, process)
    finally:
        stop(process)
        asyncio.run(drop_prefix(prefix))


def _wait_healthy(base: str, process: subprocess.Popen[Any]) -> None:
    """Healthy twice a second apart with our process alive throughout (a server that
    cannot bind the port exits at once; what answered was then someone else's)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    answered = 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} while starting")
        try:
            answered = answered + 1 if httpx.get(f"{base}/health", timeout=1).is_success else 0
        except httpx.HTTPError:
            answered = 0
        if answered == 2 and process.poll() is None:
            return
        time.sleep(0.5 if answered == 0 else 1.0)
    raise RuntimeError(f"the server was not healthy within {START_TIMEOUT_S:.0f} s")
