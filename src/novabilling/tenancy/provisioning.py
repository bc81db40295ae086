"""Create (and drop) a tenant's own database and bring it to the tenant schema head.

Embedded: a SQLite file under ``NB_DATA_DIR/tenants``. Server: ``CREATE DATABASE`` on the
server named by ``NB_TENANT_DATABASE_URL`` with a role of its own that owns only that
database (``CONNECT`` revoked from PUBLIC), so one tenant's credentials cannot open another
tenant's database. All or nothing: any failure drops what was made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url

from novabilling.config import Settings
from novabilling.errors import ProvisioningFailed
from novabilling.kit.crypto import random_hex
from novabilling.kit.db import make_engine
from novabilling.tenancy import migrations

log = structlog.get_logger(__name__)

_SAFE_NAME = re.compile(r"^[a-z0-9_]{1,63}$")


@dataclass(frozen=True)
class ProvisionedDatabase:
    dialect: str
    database_name: str
    url: str


def database_name(settings: Settings, tenant_id: str) -> str:
    name = (settings.tenant_db_prefix + tenant_id).lower()
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unsafe tenant database name: {name!r}")
    return name


def _sqlite_path(settings: Settings, tenant_id: str) -> Path:
    return settings.tenants_dir / f"{database_name(settings, tenant_id)}.db"


async def _migrate(url: str, *, pgbouncer: bool) -> None:
    engine = make_engine(url, null_pool=True, pgbouncer=pgbouncer)
    try:
        await migrations.upgrade(engine, "tenant")
    finally:
        await engine.dispose()


async def _admin_execute(server_url: str, *statements: str, pgbouncer: bool = False) -> None:
    engine = make_engine(server_url, null_pool=True, pgbouncer=pgbouncer)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def provision(settings: Settings, tenant_id: str) -> ProvisionedDatabase:
    """Create and migrate the tenant database. Raises ProvisioningFailed (nothing left)."""
    name = database_name(settings, tenant_id)
    try:
        if settings.tenant_database_url is None:
            path = _sqlite_path(settings, tenant_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite+aiosqlite:///{path}"
            db = ProvisionedDatabase("sqlite", name, url)
        else:
            server = make_url(settings.tenant_database_url)
            password = random_hex(24)
            await _admin_execute(
                settings.tenant_database_url,
                f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'",
                f'CREATE DATABASE "{name}" OWNER "{name}"',
                f'REVOKE CONNECT, TEMPORARY ON DATABASE "{name}" FROM PUBLIC',
                pgbouncer=settings.pgbouncer,
            )
            url = server.set(database=name, username=name, password=password).render_as_string(
                hide_password=False
            )
            db = ProvisionedDatabase("postgresql", name, url)
        await _migrate(db.url, pgbouncer=settings.pgbouncer)
        return db
    except Exception as exc:
        log.error("tenancy.provision_failed", tenant_id=tenant_id, error=type(exc).__name__)
        await drop(settings, tenant_id)
        raise ProvisioningFailed("Tenant provisioning failed") from exc


async def drop(settings: Settings, tenant_id: str) -> None:
    """Remove the tenant database (and role); silent when there is nothing to drop."""
    name = database_name(settings, tenant_id)
    if settings.tenant_database_url is None:
        path = _sqlite_path(settings, tenant_id)
        for suffix in ("", "-wal", "-shm"):
            try:
                Path(str(path) + suffix).unlink(missing_ok=True)
            except OSError as exc:  # e.g. the tenants dir is unusable: nothing was made there
                log.error("tenancy.drop_failed", tenant_id=tenant_id, error=str(exc))
        return
    try:
        await _admin_execute(
            settings.tenant_database_url,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'DROP ROLE IF EXISTS "{name}"',
            pgbouncer=settings.pgbouncer,
        )
    except Exception as exc:  # pragma: no cover - logged; the caller already failed
        log.error("tenancy.drop_failed", tenant_id=tenant_id, error=str(exc))
