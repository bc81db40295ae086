"""Test fixtures: every API test runs on the embedded SQLite default AND on PostgreSQL
(central + a real database per tenant) with Redis. Each session uses unique database
names and Redis prefixes, so parallel and repeated runs never collide.

In CI (``CI=true``) an unreachable PostgreSQL or Redis fails the run; locally the
PostgreSQL variants are skipped with the reason shown.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from novabilling.bootstrap import build_runtime
from novabilling.config import Settings
from novabilling.runtime import Runtime
from novabilling.tenancy import provisioning
from novabilling.tenancy.operations import migrate_central
from tests.apps import APPS
from tests.reaper import DatabaseReaper

PG_HOST = os.environ.get("NB_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("NB_TEST_PG_PORT", "5432"))
PG_SERVER = os.environ.get(
    "NB_TEST_PG_URL", f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/postgres"
)
REDIS_URL = os.environ.get("NB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RUN_ID = secrets.token_hex(4)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


PG_UP = _reachable(PG_HOST, PG_PORT)
REDIS_UP = _reachable("127.0.0.1", 6379)


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and not (PG_UP and REDIS_UP):
        raise pytest.UsageError(
            f"CI=true but PostgreSQL reachable={PG_UP} and Redis reachable={REDIS_UP}: "
            "the real-service tests are required in CI"
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the files for ``pytest -n 2 --dist loadfile`` (with ``--no-loadscope-reorder``,
    pyproject.toml): the files marked ``long`` first, longest first, then the others by
    their number of tests, largest first. xdist hands the files out in this order, one at
    a time to the worker that is free, so a file of one long test (the 13-month simulation,
    the SIGKILL restart, the browser console) no longer comes last and ends the run alone."""
    counts: dict[Path, int] = {}
    for item in items:
        counts[item.path] = counts.get(item.path, 0) + 1

    def order(item: pytest.Item) -> tuple[float, int]:
        long = item.get_closest_marker("long")
        return (-long.kwargs["seconds"] if long else 0.0, -counts[item.path])

    items.sort(key=order)


def require_postgres() -> None:
    if not PG_UP:
        if IN_CI:
            pytest.fail("PostgreSQL is required in CI")
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}")


def require_redis() -> None:
    if not REDIS_UP:
        if IN_CI:
            pytest.fail("Redis is required in CI")
        pytest.skip("Redis not reachable at 127.0.0.1:6379")


async def _pg_admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _pg_drop_databases(names: list[str], *, connections: int = 8) -> None:
    """Drop databases over several connections at once (each DROP waits for a checkpoint;
    drops at the same time share one)."""
    import asyncpg

    async def drop_share(share: list[str]) -> None:
        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user="postgres", database="postgres"
        )
        try:
            for name in share:
                await conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    shares = [names[i::connections] for i in range(connections)]
    await asyncio.gather(*(drop_share(share) for share in shares if share))


async def _pg_cleanup(prefix: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        names = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%"
        )
        await _pg_drop_databases([row["datname"] for row in names])
        roles = await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE $1", prefix + "%")
        for row in roles:
            await conn.execute(f'DROP ROLE IF EXISTS "{row["rolname"]}"')
    finally:
        await conn.close()


@dataclass
class Backend:
    name: str
    settings: Settings


def _redis_cleanup(pattern: str) -> None:
    """Drop the keys this run left in Redis (queues, limiter counters, locks)."""
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        client.close()
    except (RedisError, OSError):
        pass  # Redis down: nothing of ours can be there to clean


@pytest.fixture(scope="session")
def pg_prefix() -> Iterator[str]:
    prefix = f"nbtest_{RUN_ID}_"
    yield prefix
    if PG_UP:
        asyncio.run(_pg_cleanup(prefix))
    _redis_cleanup(f"nbtest:{RUN_ID}:*")


@pytest.fixture(scope="session")
def reaper(pg_prefix: str) -> Iterator[DatabaseReaper | None]:
    """Drops each test's PostgreSQL databases in the background (tests/reaper.py); torn
    down - every drop finished - before ``pg_prefix`` cleans up what is left."""
    if not PG_UP:
        yield None
        return
    reaper = DatabaseReaper(
        host=PG_HOST,
        port=PG_PORT,
        prefix=pg_prefix,
        keep={f"{pg_prefix}central"},
        drops=8,
        batch=24,
    )
    try:
        yield reaper
    finally:
        reaper.close()


@pytest.fixture(autouse=True)
def _drop_this_tests_databases(reaper: DatabaseReaper | None) -> Iterator[None]:
    """The PostgreSQL databases a test made are dropped once it is over, while the next
    tests run, instead of all at the end of the session."""
    if reaper is None:
        yield
        return
    before = reaper.databases()
    yield
    reaper.drop(reaper.databases() - before)


@pytest.fixture(scope="session")
def sqlite_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("nb-data")
    settings = Settings(
        env="test",
        data_dir=data_dir,
        rate_limit="100000/60s",
        log_level="WARNING",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    asyncio.run(migrate_central(settings))
    return settings


@pytest.fixture(scope="session")
def pg_settings(tmp_path_factory: pytest.TempPathFactory, pg_prefix: str) -> Settings:
    require_postgres()
    require_redis()
    central = f"{pg_prefix}central"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{central}"'))
    data_dir: Path = tmp_path_factory.mktemp("nb-pg-data")
    settings = Settings(
        env="test",
        data_dir=data_dir,
        database_url=PG_SERVER.rsplit("/", 1)[0] + f"/{central}",
        tenant_database_url=PG_SERVER,
        tenant_db_prefix=f"{pg_prefix}t_",
        redis_url=REDIS_URL,
        redis_prefix=f"nbtest:{RUN_ID}",
        rate_limit="100000/60s",
        log_level="WARNING",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    asyncio.run(migrate_central(settings))
    return settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Backend:
    name: str = request.param
    fixture = "sqlite_settings" if name == "sqlite" else "pg_settings"
    return Backend(name, request.getfixturevalue(fixture))


@pytest.fixture
async def runtime(backend: Backend) -> AsyncIterator[Runtime]:
    rt = build_runtime(backend.settings)
    yield rt
    APPS.give_back(rt)
    await rt.close()


def app_for(runtime: Runtime) -> FastAPI:
    """The app serving ``runtime``: one built for its settings earlier and lent to it
    (tests/apps.py; ``app.state.runtime`` is all a request reaches). A test that needs an
    app of its own (other routes) calls ``create_app``."""
    return APPS.lend(runtime)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = app_for(runtime)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class TenantCreds:
    id: str
    email: str
    password: str
    api_key: str
    access_token: str
    refresh_token: str
    body: dict[str, Any]

    @property
    def key_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def token_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register_tenant(client: httpx.AsyncClient, company: str = "Acme Ltd") -> TenantCreds:
    email = f"owner-{secrets.token_hex(6)}@test.local"
    password = "correct-horse-battery"
    r = await client.post(
        "/api/auth/register",
        json={"name": "Ada Obi", "email": email, "password": password, "companyName": company},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return TenantCreds(
        id=body["tenant"]["id"],
        email=email,
        password=password,
        api_key=body["apiKey"],
        access_token=body["accessToken"],
        refresh_token=body["refreshToken"],
        body=body,
    )


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> TenantCreds:
    return await register_tenant(client, "Acme Ltd")


@pytest.fixture
async def other_tenant(client: httpx.AsyncClient) -> TenantCreds:
    return await register_tenant(client, "Other Co")


@dataclass
class SharedTenant:
    creds: TenantCreds
    database: str
    made: dict[str, Any]  # what the module's tests made in it once (``shared_made``)


@pytest.fixture(scope="module")
def _shared_tenants(reaper: DatabaseReaper | None) -> Iterator[dict[str, SharedTenant]]:
    """The module's shared tenant per backend."""
    shared: dict[str, SharedTenant] = {}
    yield shared
    if reaper is not None and "postgres" in shared:
        reaper.release(shared["postgres"].database)


@pytest.fixture
async def shared_tenant(
    client: httpx.AsyncClient,
    backend: Backend,
    reaper: DatabaseReaper | None,
    _shared_tenants: dict[str, SharedTenant],
) -> TenantCreds:
    """One tenant per module and backend, for tests whose requests are all refused or only
    read (input validation): registering a fresh tenant - a database each - cost more than
    such a test's own requests, and every database is dropped again. A test that changes
    the tenant's data or settings uses ``tenant``."""
    found = _shared_tenants.get(backend.name)
    if found is None:
        creds = await register_tenant(client, "Shared Ltd")
        name = provisioning.database_name(backend.settings, creds.id)
        if reaper is not None and backend.name == "postgres":
            reaper.keep(name)
        found = _shared_tenants[backend.name] = SharedTenant(creds, name, {})
    return found.creds


@pytest.fixture
def shared_made(
    backend: Backend, shared_tenant: TenantCreds, _shared_tenants: dict[str, SharedTenant]
) -> dict[str, Any]:
    """What the module's tests made once in ``shared_tenant`` (a plan, a metric that
    refused requests refer to), kept with it: a module fixture fills it on first use."""
    return _shared_tenants[backend.name].made


def assert_error(response: httpx.Response, status: int, field: str | None = None) -> None:
    """The contract's error body (README §7), optionally naming ``field``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"statusCode", "message", "errors", "timestamp", "path"}, body
    assert body["statusCode"] == status
    assert body["timestamp"].endswith("Z") and len(body["timestamp"]) == 24
    if field is not None:
        assert body["message"] == "Validation failed", body
        fields = [e["field"] for e in body["errors"]]
        assert field in fields, body
