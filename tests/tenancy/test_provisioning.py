"""Tenant isolation: every tenant gets its own database (SQLite file / PostgreSQL database
+ role that can open only that database), provisioning is all or nothing, and one tenant's
credentials never reach another tenant's data."""

from __future__ import annotations

import secrets

import asyncpg
import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from novabilling.config import Settings
from novabilling.errors import ProvisioningFailed
from novabilling.kit.ids import new_id
from novabilling.runtime import Runtime
from novabilling.tenancy import migrations, provisioning
from novabilling.tenancy.engines import EngineRegistry
from novabilling.tenancy.models import DatabaseConnection
from tests.conftest import PG_HOST, PG_PORT, Backend, TenantCreds, assert_error
from tests.tenancy import has_route


async def _stored_url(runtime: Runtime, tenant_id: str) -> str:
    async with runtime.central() as session:
        conn = await session.scalar(
            select(DatabaseConnection).where(DatabaseConnection.tenant_id == tenant_id)
        )
    assert conn is not None
    return runtime.encryptor.decrypt(conn.url_encrypted, aad=tenant_id.encode())


async def _pg_fetch(query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def _connect_as(url: str, database: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=database,
    )


def _require_pg(backend: Backend) -> None:
    if backend.name != "postgres":
        pytest.skip("PostgreSQL isolation (database + role per tenant)")


async def test_each_tenant_has_its_own_database(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    other_tenant: TenantCreds,
    runtime: Runtime,
    backend: Backend,
) -> None:
    url_a = await _stored_url(runtime, tenant.id)
    url_b = await _stored_url(runtime, other_tenant.id)
    assert url_a != url_b
    name_a = provisioning.database_name(runtime.settings, tenant.id)
    assert name_a == (runtime.settings.tenant_db_prefix + tenant.id).lower()
    if backend.name == "sqlite":
        assert (runtime.settings.tenants_dir / f"{name_a}.db").is_file()
        assert make_url(url_a).database != make_url(url_b).database
        return
    names = {r["datname"] for r in await _pg_fetch("SELECT datname FROM pg_database")}
    roles = {r["rolname"] for r in await _pg_fetch("SELECT rolname FROM pg_roles")}
    assert name_a in names and name_a in roles
    owner = await _pg_fetch(
        "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1", name_a
    )
    assert owner[0]["owner"] == name_a
    # the tenant role is an ordinary login role
    flags = await _pg_fetch(
        "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = $1", name_a
    )
    assert tuple(flags[0]) == (False, False, False)


async def test_a_tenant_role_cannot_open_another_tenants_database(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    other_tenant: TenantCreds,
    runtime: Runtime,
    backend: Backend,
) -> None:
    _require_pg(backend)
    url_a = await _stored_url(runtime, tenant.id)
    name_a = provisioning.database_name(runtime.settings, tenant.id)
    name_b = provisioning.database_name(runtime.settings, other_tenant.id)

    own = await _connect_as(url_a, name_a)
    try:
        assert await own.fetchval("SELECT current_user") == name_a
        assert await own.fetchval("SELECT count(*) FROM alembic_version") == 1
    finally:
        await own.close()

    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        conn = await _connect_as(url_a, name_b)
        await conn.close()


async def test_tenant_databases_are_at_the_schema_head(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    engine = await runtime.engines.engine(tenant.id)
    assert await migrations.current_revision(engine) == migrations.head_revision("tenant")


async def test_another_tenants_key_never_sees_data(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    if not await has_route(client, "/api/customers"):
        me = await client.get("/api/tenants/me", headers=other_tenant.token_headers)
        assert me.json()["id"] == other_tenant.id
        pytest.skip("no /api/customers yet: isolation shown on tenants/me only")
    r = await client.post(
        "/api/customers",
        json={"externalId": "iso-1", "email": "iso@test.local", "currency": "KES"},
        headers=tenant.key_headers,
    )
    assert r.status_code == 201, r.text
    customer_id = r.json()["id"]
    mine = await client.get("/api/customers", headers=tenant.key_headers)
    assert [c["id"] for c in mine.json()["data"]] == [customer_id]
    theirs = await client.get("/api/customers", headers=other_tenant.key_headers)
    assert theirs.status_code == 200
    assert theirs.json()["data"] == [] and theirs.json()["meta"]["total"] == 0
    for headers in (other_tenant.key_headers, other_tenant.token_headers):
        assert_error(await client.get(f"/api/customers/{customer_id}", headers=headers), 404)
    # and the same external id is free in the other tenant's own database
    r = await client.post(
        "/api/customers",
        json={"externalId": "iso-1", "email": "iso@test.local", "currency": "KES"},
        headers=other_tenant.key_headers,
    )
    assert r.status_code == 201, r.text


async def test_provision_and_drop_roundtrip(backend: Backend) -> None:
    settings = backend.settings
    tenant_id = new_id()
    db = await provisioning.provision(settings, tenant_id)
    assert db.database_name == provisioning.database_name(settings, tenant_id)
    from novabilling.kit.db import make_engine

    engine = make_engine(db.url, null_pool=True)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
    await provisioning.drop(settings, tenant_id)
    await provisioning.drop(settings, tenant_id)  # idempotent
    if backend.name == "sqlite":
        assert not (settings.tenants_dir / f"{db.database_name}.db").exists()
    else:
        left = await _pg_fetch(
            "SELECT datname FROM pg_database WHERE datname = $1", db.database_name
        )
        roles = await _pg_fetch("SELECT rolname FROM pg_roles WHERE rolname = $1", db.database_name)
        assert left == [] and roles == []


async def test_failed_migration_drops_database_and_role(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("migration failed")

    monkeypatch.setattr(migrations, "upgrade", boom)
    tenant_id = new_id()
    settings = backend.settings.model_copy(update={"tenant_templates": False})
    name = provisioning.database_name(settings, tenant_id)
    with pytest.raises(ProvisioningFailed):
        await provisioning.provision(settings, tenant_id)
    if backend.name == "sqlite":
        assert not (backend.settings.tenants_dir / f"{name}.db").exists()
    else:
        assert await _pg_fetch("SELECT 1 FROM pg_database WHERE datname = $1", name) == []
        assert await _pg_fetch("SELECT 1 FROM pg_roles WHERE rolname = $1", name) == []


@pytest.mark.parametrize("bad", ["x; DROP DATABASE postgres", "a-b", "A" * 80, "ü", "a b"])
def test_unsafe_database_names_are_refused(bad: str, tmp_path: object) -> None:
    settings = Settings(env="test", data_dir=tmp_path, tenant_db_prefix="nb_")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        provisioning.database_name(settings, bad)


async def test_engine_registry_is_bounded(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds, runtime: Runtime
) -> None:
    registry = EngineRegistry(
        central=runtime.central, encryptor=runtime.encryptor, max_engines=1, idle_seconds=0.0
    )
    try:
        await registry.sessionmaker(tenant.id)
        await registry.sessionmaker(other_tenant.id)
        assert len(registry) == 1
        maker = await registry.sessionmaker(tenant.id)
        async with maker() as session:
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
        assert await registry.sweep_idle() == 1
        assert len(registry) == 0
    finally:
        await registry.dispose_all()


async def test_unknown_tenant_has_no_engine(runtime: Runtime) -> None:
    from novabilling.errors import NotFound

    with pytest.raises(NotFound):
        await runtime.engines.sessionmaker("nonexistent_" + secrets.token_hex(4))
