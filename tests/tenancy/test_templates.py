"""Tenant databases copied from a migrated template (CREATE DATABASE ... TEMPLATE on
PostgreSQL, a file copy on SQLite): at the schema head, owned by the tenant's own role,
the template frozen and marked complete, a broken template never blocks provisioning."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from novabilling.kit.db import make_engine
from novabilling.kit.ids import new_id
from novabilling.tenancy import migrations, provisioning, templates
from novabilling.tenancy.servers import configured
from tests.conftest import PG_HOST, PG_PORT, Backend


async def _pg(query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def _revision_and_tables(url: str) -> tuple[str | None, set[str]]:
    engine = make_engine(url, null_pool=True)
    try:
        async with engine.connect() as conn:
            revision = (
                await conn.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar()
            if engine.dialect.name == "sqlite":
                rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
            else:
                rows = await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            return revision, {row[0] for row in rows}
    finally:
        await engine.dispose()


async def test_a_tenant_database_is_a_copy_of_the_template_at_the_head(backend: Backend) -> None:
    settings = backend.settings
    tenant_id = new_id()
    db = await provisioning.provision(settings, tenant_id)
    try:
        revision, tables = await _revision_and_tables(db.url)
        assert revision == migrations.head_revision("tenant")
        assert {"customers", "plans", "subscriptions", "invoices", "payments"} <= tables
        if backend.name == "sqlite":
            head = migrations.head_revision("tenant")
            assert (settings.data_dir / "templates" / f"tenant_{head}.db").is_file()
            return
        template = templates.template_name(settings)
        frozen = await _pg(
            "SELECT datistemplate, datallowconn, shobj_description(oid, 'pg_database') AS note "
            "FROM pg_database WHERE datname = $1",
            template,
        )
        assert [tuple(r) for r in frozen] == [(True, False, templates.READY)]
        # the template database stays the admin's: REASSIGN OWNED in a copy hands over the
        # template role's shared objects too, and a tenant role owning the template could
        # never be dropped
        owner = await _pg(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", template
        )
        assert [r[0] for r in owner] == ["postgres"]
        # every table of the copy belongs to the tenant's own role, none to the template's
        owners = await _connect_and_fetch(
            db.database_name,
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'",
        )
        assert [r[0] for r in owners] == [db.database_name]
        functions = await _connect_and_fetch(
            db.database_name,
            "SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc "
            "WHERE pronamespace = 'public'::regnamespace",
        )
        assert [r[0] for r in functions] == [db.database_name]
        await provisioning.drop(settings, tenant_id)
        left = await _pg(
            "SELECT count(*) FROM pg_roles WHERE rolname = $1 UNION ALL "
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            db.database_name,
        )
        assert [r[0] for r in left] == [0, 0]  # the role and its database are gone
    finally:
        await provisioning.drop(settings, tenant_id)


async def _connect_and_fetch(database: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database=database)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def test_an_unusable_template_falls_back_to_migrating(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("template unusable")

    monkeypatch.setattr(templates, "server_template", broken)
    monkeypatch.setattr(templates, "copy_sqlite_template", broken)
    tenant_id = new_id()
    db = await provisioning.provision(backend.settings, tenant_id)
    try:
        revision, _ = await _revision_and_tables(db.url)
        assert revision == migrations.head_revision("tenant")
    finally:
        await provisioning.drop(backend.settings, tenant_id)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_half_built_template_is_rebuilt_and_stale_ones_dropped(backend: Backend) -> None:
    settings = backend.settings
    server = provisioning.default_server(settings)
    assert server is not None
    name = templates.template_name(settings)
    await templates.server_template(settings, server.url)
    # as if a build died half way: not marked complete, and forgotten by this process
    await _pg(f"COMMENT ON DATABASE \"{name}\" IS 'building'")
    templates._ready.discard((server.url, name))
    assert await templates.server_template(settings, server.url) == name
    note = await _pg(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name
    )
    assert note[0][0] == templates.READY

    stale = f"{settings.tenant_db_prefix}tpl_0000old"
    await _pg(f'CREATE DATABASE "{stale}" IS_TEMPLATE true')
    assert await templates.drop_stale(settings, server.url) == [stale]
    assert await _pg("SELECT 1 FROM pg_database WHERE datname = $1", stale) == []
    assert await _pg("SELECT 1 FROM pg_database WHERE datname = $1", name) != []


async def test_migrate_builds_the_template_before_any_registration(
    backend: Backend, tmp_path: Path
) -> None:
    """``templates.prepare`` (run by ``novabilling migrate`` and ``serve``) leaves the
    current head's template ready, so no serving process migrates one (nor loads Alembic)."""
    prefix = f"nbprep{new_id()[-8:].lower()}_"
    settings = backend.settings.model_copy(
        update={"tenant_db_prefix": prefix, "data_dir": tmp_path}
    )
    servers = [s.url for s in configured(settings)]
    name = templates.template_name(settings)
    try:
        await templates.prepare(settings, servers)
        if backend.name == "sqlite":
            head = migrations.head_revision("tenant")
            assert (tmp_path / "templates" / f"tenant_{head}.db").is_file()
            return
        note = await _pg(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            name,
        )
        assert [r[0] for r in note] == [templates.READY]
    finally:
        if backend.name != "sqlite":
            await _pg(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
            await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await _pg(f'DROP ROLE IF EXISTS "{name}"')
            for url in servers:
                templates._ready.discard((url, name))
