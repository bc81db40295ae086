"""Behind PgBouncer in transaction mode (NB_PGBOUNCER=true): tenants are provisioned,
migrated and served through it, many client connections share a few server connections,
and prepared statements never collide or go missing (no statement caches, a unique name
per statement, no autocommit reads). PgBouncer is Debian's, started by the test."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from novabilling.tenancy import provisioning, templates
from novabilling.tenancy.models import DatabaseConnection
from tests.conftest import PG_HOST, PG_PORT, Backend, register_tenant
from tests.servers import PgBouncer
from tests.tenancy import app_client

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


@pytest.fixture
def bouncer(backend: Backend) -> Iterator[PgBouncer]:
    server = PgBouncer(upstream_port=PG_PORT, server_pool_size=2).start()
    try:
        yield server
    finally:
        server.stop()


async def _customer_round(client: httpx.AsyncClient, headers: dict[str, str], n: int) -> int:
    created = await client.post(
        "/api/customers",
        json={"externalId": f"pgb-{n}", "email": f"pgb{n}@test.local", "currency": "KES"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    listed = await client.get("/api/customers?limit=5", headers=headers)
    assert listed.status_code == 200, listed.text
    got = await client.get(f"/api/customers/{created.json()['id']}", headers=headers)
    assert got.status_code == 200, got.text
    return int(listed.json()["meta"]["total"])


async def test_tenants_run_through_pgbouncer_in_transaction_mode(
    backend: Backend, bouncer: PgBouncer
) -> None:
    settings = backend.settings.model_copy(
        update={"tenant_database_url": bouncer.url(), "pgbouncer": True}
    )
    async with app_client(settings, probe=False) as (client, runtime):
        tenants = [await register_tenant(client, f"Bounce {i}") for i in range(2)]
        async with runtime.central() as session:
            rows = (await session.scalars(select(DatabaseConnection))).all()
        stored = {
            row.tenant_id: make_url(
                runtime.encryptor.decrypt(row.url_encrypted, aad=row.tenant_id.encode())
            )
            for row in rows
        }
        for creds in tenants:
            assert stored[creds.id].port == bouncer.port  # the tenant connects via PgBouncer

        # 5 client connections per tenant (our pool) over 2 server connections (PgBouncer's)
        totals = await asyncio.gather(
            *(_customer_round(client, tenants[i % 2].key_headers, i) for i in range(40))
        )
        assert max(totals) <= 20 and min(totals) >= 1

        for creds in tenants:
            listed = await client.get("/api/customers?limit=100", headers=creds.key_headers)
            assert listed.json()["meta"]["total"] == 20

    # SHOW SERVERS: type, user, database, state, ...
    tenant_dbs = {provisioning.database_name(settings, creds.id) for creds in tenants}
    per_db: dict[str, int] = {}
    for row in bouncer.admin("SHOW SERVERS"):
        if row[2] in tenant_dbs and row[1] == row[2]:  # the tenant role's own pool
            per_db[row[2]] = per_db.get(row[2], 0) + 1
    assert per_db and all(count <= 2 for count in per_db.values()), per_db


async def test_concurrent_registrations_build_one_template_through_pgbouncer(
    backend: Backend, bouncer: PgBouncer, pg_prefix: str
) -> None:
    """Four sign-ups at once on a server without the template: one builds it, the others
    wait for it (the advisory lock alone serializes nothing behind PgBouncer), and every
    tenant gets its copy."""
    settings = backend.settings.model_copy(
        update={
            "tenant_database_url": bouncer.url(),
            "pgbouncer": True,
            "tenant_db_prefix": f"{pg_prefix}pgb{secrets.token_hex(3)}_",
        }
    )
    async with app_client(settings, probe=False) as (client, _runtime):
        tenants = await asyncio.gather(
            *(register_tenant(client, f"Concurrent {i}") for i in range(4))
        )
        for creds in tenants:
            listed = await client.get("/api/customers", headers=creds.key_headers)
            assert listed.status_code == 200, listed.text
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres")
    try:
        found = await conn.fetch(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
            settings.tenant_db_prefix,
        )
    finally:
        await conn.close()
    names = {row[0] for row in found}
    assert names == {templates.template_name(settings)} | {
        provisioning.database_name(settings, creds.id) for creds in tenants
    }
