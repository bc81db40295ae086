"""Create (and drop) a tenant's own database and bring it to the tenant schema head.

Embedded: a SQLite file under ``NB_DATA_DIR/tenants``. Server: ``CREATE DATABASE`` on one
of the servers of ``NB_TENANT_DATABASE_URLS`` (the caller picks it, tenancy/servers.py)
with a role of its own that owns only that database (``CONNECT`` revoked from PUBLIC), so
one tenant's credentials cannot open another tenant's database. A new database is a copy
of a migrated template when it can be (tenancy/templates.py), else migrated from scratch.
All or nothing: any failure drops what was made.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from novabilling.config import Settings
from novabilling.errors import ProvisioningFailed
from novabilling.kit.crypto import random_hex
from novabilling.kit.db import make_engine
from novabilling.tenancy import migrations, pgadmin, templates
from novabilling.tenancy.servers import Server, configured

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ProvisionedDatabase:
    dialect: str
    database_name: str
    url: str
    server: str | None = None  # host:port of the server; None for SQLite


def database_name(settings: Settings, tenant_id: str) -> str:
    return pgadmin.safe_name((settings.tenant_db_prefix + tenant_id).lower())


def default_server(settings: Settings) -> Server | None:
    found = configured(settings)
    return found[0] if found else None


def _sqlite_path(settings: Settings, tenant_id: str) -> Path:
    return settings.tenants_dir / f"{database_name(settings, tenant_id)}.db"


async def _migrate(url: str, *, pgbouncer: bool) -> None:
    engine = make_engine(url, null_pool=True, pgbouncer=pgbouncer)
    try:
        await migrations.upgrade(engine, "tenant")
    finally:
        await engine.dispose()


async def _sqlite(settings: Settings, tenant_id: str) -> ProvisionedDatabase:
    path = _sqlite_path(settings, tenant_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{path}"
    copied = False
    if settings.tenant_templates:
        try:
            await templates.copy_sqlite_template(settings, path)
            copied = True
        except Exception as exc:  # fall back to a full migration run
            log.warning("tenancy.template_unusable", error=f"{type(exc).__name__}: {exc}")
            path.unlink(missing_ok=True)
    if not copied:
        await _migrate(url, pgbouncer=False)
    return ProvisionedDatabase("sqlite", database_name(settings, tenant_id), url)


async def _template(settings: Settings, server: Server) -> str | None:
    if not settings.tenant_templates:
        return None
    try:
        return await templates.server_template(settings, server.url)
    except Exception as exc:  # fall back to a full migration run
        log.warning("tenancy.template_unusable", error=f"{type(exc).__name__}: {exc}")
        return None


async def _adopt(settings: Settings, server: Server, name: str, template: str) -> bool:
    """Give the tenant's role what the copy of the template holds; False (the database
    dropped) when that fails."""
    try:
        for attempt in range(4):
            try:
                await pgadmin.execute(
                    pgadmin.on_database(server.url, name),
                    f'REASSIGN OWNED BY "{template}" TO "{name}"',
                    pgbouncer=settings.pgbouncer,
                )
                return True
            except asyncpg.InternalServerError as exc:
                # parallel provisionings update the template role's shared dependency
                # rows at once ("tuple concurrently updated"): try again shortly
                if "concurrently" not in str(exc) or attempt == 3:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        return False  # pragma: no cover - the loop returns or raises
    except Exception as exc:
        log.warning("tenancy.template_unusable", error=f"{type(exc).__name__}: {exc}")
        await pgadmin.execute(
            server.url,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            pgbouncer=settings.pgbouncer,
        )
        return False


async def _postgres(settings: Settings, server: Server, tenant_id: str) -> ProvisionedDatabase:
    name = database_name(settings, tenant_id)
    password = random_hex(24)
    bouncer = settings.pgbouncer
    template = await _template(settings, server)
    copy = f' TEMPLATE "{template}"' if template else ""
    await pgadmin.execute(
        server.url,
        f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'",
        f'CREATE DATABASE "{name}" OWNER "{name}"{copy}',
        f'REVOKE CONNECT, TEMPORARY ON DATABASE "{name}" FROM PUBLIC',
        pgbouncer=bouncer,
    )
    url = pgadmin.with_login(server.url, database=name, user=name, password=password)
    if template and await _adopt(settings, server, name, template):
        return ProvisionedDatabase("postgresql", name, url, server.name)
    if template:  # the copy was dropped: start over, empty
        await pgadmin.execute(
            server.url,
            f'CREATE DATABASE "{name}" OWNER "{name}"',
            f'REVOKE CONNECT, TEMPORARY ON DATABASE "{name}" FROM PUBLIC',
            pgbouncer=bouncer,
        )
    await _migrate(url, pgbouncer=bouncer)
    return ProvisionedDatabase("postgresql", name, url, server.name)


async def provision(
    settings: Settings, tenant_id: str, *, server: Server | None = None
) -> ProvisionedDatabase:
    """Create the tenant database at the schema head, on ``server`` (default: the first
    configured server; SQLite when there is none). Raises ProvisioningFailed (nothing left)."""
    server = server or default_server(settings)
    try:
        if server is None:
            return await _sqlite(settings, tenant_id)
        return await _postgres(settings, server, tenant_id)
    except Exception as exc:
        log.error("tenancy.provision_failed", tenant_id=tenant_id, error=type(exc).__name__)
        await drop(settings, tenant_id, server=server)
        raise ProvisioningFailed("Tenant provisioning failed") from exc


async def drop(settings: Settings, tenant_id: str, *, server: Server | None = None) -> None:
    """Remove the tenant database (and role); silent when there is nothing to drop."""
    name = database_name(settings, tenant_id)
    server = server or default_server(settings)
    if server is None:
        path = _sqlite_path(settings, tenant_id)
        for suffix in ("", "-wal", "-shm"):
            try:
                Path(str(path) + suffix).unlink(missing_ok=True)
            except OSError as exc:  # e.g. the tenants dir is unusable: nothing was made there
                log.error("tenancy.drop_failed", tenant_id=tenant_id, error=str(exc))
        return
    try:
        await pgadmin.execute(
            server.url,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'DROP ROLE IF EXISTS "{name}"',
            pgbouncer=settings.pgbouncer,
        )
    except Exception as exc:  # pragma: no cover - logged; the caller already failed
        log.error("tenancy.drop_failed", tenant_id=tenant_id, error=str(exc))
