"""Many tenants, few connections: one process never holds more than NB_MAX_DB_CONNECTIONS
(PostgreSQL's own view, pg_stat_activity, agrees), requests for a tenant whose pool is
busy wait instead of failing, and only a wait past NB_DB_POOL_TIMEOUT answers 503."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import text

from novabilling.config import Settings
from novabilling.tenancy import provisioning
from novabilling.web.deps import TenantSession
from tests.conftest import PG_HOST, PG_PORT, Backend, TenantCreds, assert_error, register_tenant
from tests.tenancy import app_client, client_app

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

SLOW = "/api/_slow_probe"


def _install_slow_route(client: httpx.AsyncClient) -> None:
    router = APIRouter()

    @router.get(SLOW)
    async def slow(session: TenantSession) -> dict[str, Any]:
        await session.execute(text("SELECT pg_sleep(0.02)"))
        return {"ok": True}

    app = client_app(client)
    if SLOW not in {getattr(route, "path", None) for route in app.routes}:  # shared app
        app.include_router(router)


def _capped(settings: Settings, **update: Any) -> Settings:
    return settings.model_copy(update=update)


class ActivitySampler:
    """Counts this test's tenant connections as PostgreSQL sees them, every few ms."""

    def __init__(self, databases: list[str]) -> None:
        self.databases = databases
        self.peak = 0
        self.samples = 0
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.Event()

    async def _run(self) -> None:
        conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user="postgres", database="postgres"
        )
        try:
            while True:
                count = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY($1::text[])",
                    self.databases,
                )
                self.peak = max(self.peak, count)
                self.samples += 1
                self._first.set()
                await asyncio.sleep(0.005)
        finally:
            await conn.close()

    async def __aenter__(self) -> ActivitySampler:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._first.wait(), 30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_many_tenants_share_a_capped_number_of_connections(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    tenants = [await register_tenant(client, f"Cap {i}") for i in range(6)]
    names = [provisioning.database_name(backend.settings, t.id) for t in tenants]
    # 5 in all: 1 for the central pool, 4 shared by the six tenants (pools of 2)
    settings = _capped(backend.settings, max_db_connections=5, tenant_pool_size=2)
    async with app_client(settings, probe=False) as (capped, runtime):
        _install_slow_route(capped)
        budget = runtime.engines.budget
        assert budget is not None and budget.limit == 4
        async with ActivitySampler(names) as sampler:
            responses = await asyncio.gather(
                *(
                    capped.get(SLOW, headers=tenants[i % 6].key_headers)
                    for i in range(48)  # 8 per tenant, all at once
                )
            )
        assert [r.status_code for r in responses] == [200] * 48, [r.text for r in responses]
        assert budget.peak == 4
        assert budget.waits > 0 and budget.takeovers > 0
        assert sampler.samples > 3
        assert 0 < sampler.peak <= 4
        await runtime.engines.dispose_all()
        assert budget.open == 0


async def test_a_request_waits_past_the_timeout_gets_503_then_is_served(
    client: httpx.AsyncClient, backend: Backend, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    # 2 in all: 1 central, 1 for every tenant database
    settings = _capped(backend.settings, max_db_connections=2, db_pool_timeout=0.5)
    async with app_client(settings) as (capped, runtime):
        maker = await runtime.engines.sessionmaker(tenant.id)
        async with maker() as held:
            await held.execute(text("SELECT 1"))  # the only tenant connection, in use
            busy = await capped.get("/api/_probe", headers=other_tenant.key_headers)
            assert_error(busy, 503)
        served = await capped.get("/api/_probe", headers=other_tenant.key_headers)
        assert served.status_code == 200, served.text
        assert served.json()["tenantId"] == other_tenant.id
