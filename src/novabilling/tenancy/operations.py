"""Operator actions over every tenant: migrate all, list tenants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from novabilling.config import Settings
from novabilling.kit.crypto import Encryptor, key_from_setting
from novabilling.kit.db import make_engine
from novabilling.notifications.smtp_settings import seal_stored
from novabilling.tenancy import migrations, templates
from novabilling.tenancy.models import DatabaseConnection, Tenant
from novabilling.tenancy.servers import configured, server_name


@dataclass(frozen=True)
class TenantRow:
    id: str
    name: str
    slug: str
    email: str
    is_active: bool
    dialect: str | None
    database_name: str | None
    server: str | None = None


@dataclass(frozen=True)
class MigrationFailure:
    tenant_id: str
    error: str


async def migrate_central(settings: Settings) -> None:
    url = settings.central_url
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url, null_pool=True, pgbouncer=settings.pgbouncer)
    try:
        await migrations.upgrade(engine, "central")
        await _seal_legacy_smtp_passwords(engine, settings)
    finally:
        await engine.dispose()


async def _seal_legacy_smtp_passwords(engine: AsyncEngine, settings: Settings) -> None:
    """Data step: SMTP passwords saved in clear before they were sealed get sealed now."""
    assert settings.encryption_key
    encryptor = Encryptor(key_from_setting(settings.encryption_key))
    async with engine.begin() as conn:
        rows = (await conn.execute(select(Tenant.id, Tenant.settings))).all()
        for tenant_id, stored in rows:
            sealed = seal_stored(stored, encryptor=encryptor, tenant_id=tenant_id)
            if sealed is not None:
                await conn.execute(
                    update(Tenant).where(Tenant.id == tenant_id).values(settings=sealed)
                )


async def list_tenants(settings: Settings) -> list[TenantRow]:
    engine = make_engine(settings.central_url, null_pool=True, pgbouncer=settings.pgbouncer)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    Tenant.id,
                    Tenant.name,
                    Tenant.slug,
                    Tenant.email,
                    Tenant.is_active,
                    DatabaseConnection.dialect,
                    DatabaseConnection.database_name,
                    DatabaseConnection.server,
                )
                .outerjoin(DatabaseConnection, DatabaseConnection.tenant_id == Tenant.id)
                .order_by(Tenant.created_at)
            )
            return [TenantRow(*row) for row in rows.all()]
    finally:
        await engine.dispose()


async def migrate_tenants(
    settings: Settings, *, on_progress: Callable[[str, str | None], None] | None = None
) -> list[MigrationFailure]:
    """Upgrade every tenant database; continue past failures and return them. Also records
    the server of tenants placed before placements were recorded, drops templates of older
    schema heads and builds the current one (``templates.prepare``)."""
    assert settings.encryption_key
    encryptor = Encryptor(key_from_setting(settings.encryption_key))
    rows = await _connections(settings)
    failures: list[MigrationFailure] = []
    placed: dict[str, str] = {}
    for tenant_id, url_encrypted, server in rows:
        error: str | None = None
        try:
            url = encryptor.decrypt(url_encrypted, aad=tenant_id.encode())
            _require_sqlite_file(url)
            if server is None and not url.startswith("sqlite"):
                placed[tenant_id] = server_name(url)
            tenant_engine = make_engine(url, null_pool=True, pgbouncer=settings.pgbouncer)
            try:
                await migrations.upgrade(tenant_engine, "tenant")
            finally:
                await tenant_engine.dispose()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            failures.append(MigrationFailure(tenant_id, error))
        if on_progress is not None:
            on_progress(tenant_id, error)
    await _record_placements(settings, placed)
    servers = [configured_server.url for configured_server in configured(settings)]
    for url in servers:
        await templates.drop_stale(settings, url)
    await templates.prepare(settings, servers)
    return failures


async def _connections(settings: Settings) -> list[tuple[str, str, str | None]]:
    engine = make_engine(settings.central_url, null_pool=True, pgbouncer=settings.pgbouncer)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(
                    DatabaseConnection.tenant_id,
                    DatabaseConnection.url_encrypted,
                    DatabaseConnection.server,
                )
            )
            return [(row[0], row[1], row[2]) for row in result.all()]
    finally:
        await engine.dispose()


async def _record_placements(settings: Settings, placed: dict[str, str]) -> None:
    if not placed:
        return
    engine = make_engine(settings.central_url, null_pool=True, pgbouncer=settings.pgbouncer)
    try:
        async with engine.begin() as conn:
            for tenant_id, server in placed.items():
                await conn.execute(
                    update(DatabaseConnection)
                    .where(DatabaseConnection.tenant_id == tenant_id)
                    .values(server=server)
                )
    finally:
        await engine.dispose()


def _require_sqlite_file(url: str) -> None:
    """A missing tenant SQLite file is an error, not a database to create empty (SQLite
    would silently make a new file and migrate would hide the lost data)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and not Path(database).is_file():
        raise FileNotFoundError(f"tenant database file missing: {parsed.database}")


async def count_tenant_databases(settings: Settings) -> int:
    engine = make_engine(settings.central_url, null_pool=True, pgbouncer=settings.pgbouncer)
    try:
        async with engine.connect() as conn:
            return len((await conn.execute(select(DatabaseConnection.id))).all())
    finally:
        await engine.dispose()


async def tenants_per_server(settings: Settings) -> dict[str, int]:
    """Every configured server with its number of tenants (0 included), in order."""
    engine = make_engine(settings.central_url, null_pool=True, pgbouncer=settings.pgbouncer)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(DatabaseConnection.server, func.count()).group_by(DatabaseConnection.server)
            )
            counts = {name: count for name, count in rows if name is not None}
    finally:
        await engine.dispose()
    return {server.name: counts.get(server.name, 0) for server in configured(settings)}
