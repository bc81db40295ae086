"""Backing services going away and coming back (issue 14, defects 9 and 13), on servers the
tests start and stop themselves.

- PostgreSQL stopped: data requests answer 503 with ``Retry-After`` and the contract's
  error body (never 500), liveness stays 200, readiness says 503; once PostgreSQL is back
  the API serves again by itself.
- Redis restarted: /health/ready is 200 at the first check after Redis is back (a stale
  pooled connection gave one false 503)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from novabilling.config import Settings
from novabilling.runtime import Runtime
from novabilling.tenancy.operations import migrate_central
from tests.conftest import TenantCreds, assert_error, register_tenant
from tests.outages import PrivatePostgres, private_postgres, private_redis
from tests.tenancy import app_client


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        env="test",
        data_dir=tmp_path,
        rate_limit="100000/60s",
        log_level="WARNING",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        run_scheduler=False,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture
async def on_postgres(
    postgres: PrivatePostgres, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime, TenantCreds]]:
    central = f"nb_central_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(host="127.0.0.1", port=postgres.port, user="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{central}"')
    finally:
        await admin.close()
    settings = _settings(
        tmp_path,
        database_url=f"{postgres.url}/{central}",
        tenant_database_url=f"{postgres.url}/postgres",
        tenant_db_prefix=f"nb_t_{secrets.token_hex(3)}_",
    )
    await migrate_central(settings)
    async with app_client(settings, probe=False) as (client, runtime):
        yield client, runtime, await register_tenant(client)


async def _customer(client: httpx.AsyncClient, creds: TenantCreds) -> httpx.Response:
    return await client.post(
        "/api/customers",
        json={
            "externalId": f"cus_{secrets.token_hex(4)}",
            "email": f"b-{secrets.token_hex(3)}@test.local",
            "currency": "USD",
        },
        headers=creds.key_headers,
    )


async def test_postgres_down_is_503_with_retry_after_and_recovers_by_itself(
    on_postgres: tuple[httpx.AsyncClient, Runtime, TenantCreds], postgres: PrivatePostgres
) -> None:
    client, runtime, creds = on_postgres
    assert (await _customer(client, creds)).status_code == 201
    # The create cached the tenant profile (a request session reads whether the tenant
    # has a webhookUrl); GET /api/tenants/me may answer from that cache for up to
    # principal_cache_seconds. Past it, the outage must show: start from an expired cache.
    runtime.tenant_profiles.drop(creds.id)
    postgres.stop()
    try:
        requests = [
            ("GET", "/api/customers", creds.key_headers, None),
            ("POST", "/api/customers", creds.key_headers, "customer"),
            ("GET", "/api/invoices", creds.token_headers, None),
            ("GET", "/api/tenants/me", creds.token_headers, None),
            ("GET", "/api/tenants/me/api-keys", creds.token_headers, None),
            ("GET", "/api/plans", creds.key_headers, None),
        ]
        for method, path, headers, body in requests:
            if body == "customer":
                r = await _customer(client, creds)
            else:
                r = await client.request(method, path, headers=headers)
            assert_error(r, 503)
            assert r.headers["retry-after"].isdigit(), path
            assert r.json()["message"] == "Service Unavailable"
        login = await client.post(
            "/api/auth/login", json={"email": creds.email, "password": creds.password}
        )
        assert_error(login, 503)
        assert (await client.get("/health")).status_code == 200  # alive, just not ready
        ready = await client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok"
    finally:
        postgres.start()

    assert (await client.get("/health/ready")).status_code == 200  # the first check: no false 503
    statuses = []
    for _ in range(20):
        r = await client.get("/api/customers", headers=creds.key_headers)
        statuses.append(r.status_code)
        if r.status_code == 200:
            break
        await asyncio.sleep(0.25)
    assert statuses[-1] == 200, statuses
    assert set(statuses) <= {200, 503}, statuses  # never a 500 on the way back
    assert (await _customer(client, creds)).status_code == 201
    assert (await client.get("/api/tenants/me", headers=creds.token_headers)).status_code == 200
    assert (await client.get("/health/ready")).status_code == 200


async def test_readiness_is_accurate_at_the_first_check_after_redis_comes_back(
    tmp_path: Path,
) -> None:
    with private_redis() as redis:
        settings = _settings(
            tmp_path, redis_url=redis.url, redis_prefix=f"nbt{secrets.token_hex(3)}"
        )
        await migrate_central(settings)
        async with app_client(settings, probe=False) as (client, _runtime):
            assert (await client.get("/health/ready")).status_code == 200
            creds = await register_tenant(client)
            redis.stop()
            down = await client.get("/health/ready")
            assert down.status_code == 503 and down.json()["checks"]["redis"] != "ok"
            # the API keeps serving: rate limits fail open, queued jobs are found again by
            # the scheduler from database state
            assert (await _customer(client, creds)).status_code == 201
            assert (
                await client.get("/api/customers", headers=creds.key_headers)
            ).status_code == 200
            redis.start()
            back = await client.get("/health/ready")
            assert back.status_code == 200, back.text
            # restarted while idle: the pooled connection is dead but nobody noticed yet
            redis.stop()
            redis.start()
            back = await client.get("/health/ready")
            assert back.status_code == 200, back.text
