"""Move one tenant's database to another server (``novabilling tenants move``).

1. The source database turns read-only (``default_transaction_read_only``) and its
   sessions are ended, so no write lands there any more: a write to that tenant answers
   503 from here on (kit/db.py is_unavailable) while reads go on.
2. The tenant's role and database are made on the target; ``pg_dump`` of the source is
   restored there as the tenant's own role (which then owns every object, as before).
3. Every table's row count must match on both sides, else nothing changes.
4. The central record (URL, server) points at the target. Every process re-reads a
   tenant's location within NB_TENANT_URL_TTL (tenancy/engines.py), so after that grace
   period the source database and role are dropped.

Until step 4, any failure undoes everything (target dropped, source writable again).
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from novabilling.config import Settings
from novabilling.errors import BusinessRule, Conflict, NotFound
from novabilling.kit.crypto import Encryptor, key_from_setting
from novabilling.kit.db import make_engine
from novabilling.tenancy import pgadmin
from novabilling.tenancy.models import DatabaseConnection
from novabilling.tenancy.servers import Server, by_name, server_name

log = structlog.get_logger(__name__)

Stage = Callable[[str], Awaitable[None]]


class MoveFailed(Exception):
    pass


@dataclass(frozen=True)
class MoveReport:
    tenant_id: str
    database: str
    source: str
    target: str
    rows: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class _Placement:
    database: str
    role: str
    password: str
    source: Server


def _pg_tool(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    tool = found[-1] if found else shutil.which(name)
    if tool is None:
        raise MoveFailed(f"{name} not found (PostgreSQL client tools)")
    return tool


def _libpq_env(server_url: str, *, database: str, user: str, password: str) -> dict[str, str]:
    server = make_url(server_url)
    return {
        **os.environ,
        "PGHOST": server.host or "localhost",
        "PGPORT": str(server.port or 5432),
        "PGDATABASE": database,
        "PGUSER": user,
        "PGPASSWORD": password,
    }


async def _run(args: list[str], env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise MoveFailed(f"{Path(args[0]).name} failed: {err.decode(errors='replace')[-500:]}")


async def row_counts(url: str) -> dict[str, int]:
    """Rows per table of the tenant database at ``url`` (the tenant's own login)."""
    engine = make_engine(url, null_pool=True)
    try:
        async with engine.connect() as conn:
            tables = (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
            counts = {}
            for table in sorted(tables):
                counts[table] = int(
                    (await conn.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one()
                )
            return counts
    finally:
        await engine.dispose()


async def _placement(settings: Settings, encryptor: Encryptor, tenant_id: str) -> _Placement:
    engine = make_engine(settings.central_url, null_pool=True)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(DatabaseConnection.url_encrypted, DatabaseConnection.server).where(
                        DatabaseConnection.tenant_id == tenant_id
                    )
                )
            ).first()
    finally:
        await engine.dispose()
    if row is None:
        raise NotFound(f"Tenant {tenant_id} has no database")
    url = make_url(encryptor.decrypt(row.url_encrypted, aad=tenant_id.encode()))
    if not url.drivername.startswith("postgresql"):
        raise BusinessRule("Only PostgreSQL tenant databases can be moved")
    assert url.database and url.username and url.password
    source = by_name(settings, row.server or server_name(url.render_as_string()))
    return _Placement(url.database, url.username, url.password, source)


async def _copy(placement: _Placement, target: Server) -> None:
    name, role = pgadmin.safe_name(placement.database), pgadmin.safe_name(placement.role)
    await pgadmin.execute(
        target.url,
        f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{placement.password}'",
        f'CREATE DATABASE "{name}" OWNER "{role}"',
        f'REVOKE CONNECT, TEMPORARY ON DATABASE "{name}" FROM PUBLIC',
    )
    login = {"database": name, "user": role, "password": placement.password}
    with tempfile.TemporaryDirectory(prefix="nb-move-") as folder:
        dump = str(Path(folder) / "tenant.dump")
        source_env = _libpq_env(placement.source.url, **login)
        await _run([_pg_tool("pg_dump"), "--format=custom", "--no-acl", "-f", dump], source_env)
        target_env = _libpq_env(target.url, **login)
        await _run(
            [_pg_tool("pg_restore"), "--no-owner", "--no-acl", "--exit-on-error",
             "--single-transaction", "-d", name, dump],
            target_env,
        )  # fmt: skip


async def _switch(
    settings: Settings, encryptor: Encryptor, tenant_id: str, url: str, target: Server
) -> None:
    engine = make_engine(settings.central_url, null_pool=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(DatabaseConnection)
                .where(DatabaseConnection.tenant_id == tenant_id)
                .values(
                    url_encrypted=encryptor.encrypt(url, aad=tenant_id.encode()),
                    server=target.name,
                )
            )
    finally:
        await engine.dispose()


async def _freeze(server: Server, name: str, *, frozen: bool) -> None:
    if not frozen:
        await pgadmin.execute(
            server.url, f'ALTER DATABASE "{name}" RESET default_transaction_read_only'
        )
        return
    await pgadmin.execute(
        server.url,
        f'ALTER DATABASE "{name}" SET default_transaction_read_only = on',
        # sessions opened before keep their setting: end them (their open transactions
        # roll back, so the client saw a failure and nothing it was told is lost)
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    )


async def _drop(server: Server, name: str, role: str) -> None:
    await pgadmin.execute(
        server.url,
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        f'DROP ROLE IF EXISTS "{role}"',
    )


async def move_tenant(
    settings: Settings,
    *,
    tenant_id: str,
    target: str,
    grace: float | None = None,
    on_stage: Stage | None = None,
) -> MoveReport:
    """Move the tenant's database to server ``target`` (``host:port``), data included."""
    started = time.monotonic()
    assert settings.encryption_key
    encryptor = Encryptor(key_from_setting(settings.encryption_key))
    placement = await _placement(settings, encryptor, tenant_id)
    to = by_name(settings, target)
    if to.name == placement.source.name:
        raise BusinessRule(f"Tenant {tenant_id} is already on {to.name}")
    name, role = placement.database, placement.role
    exists = await pgadmin.fetch(to.url, "SELECT 1 FROM pg_database WHERE datname = $1", name)
    if exists:
        raise Conflict(f"Database {name} already exists on {to.name}")

    async def stage(label: str) -> None:
        log.info("tenancy.move", tenant_id=tenant_id, stage=label)
        if on_stage is not None:
            await on_stage(label)

    source_url = pgadmin.with_login(
        placement.source.url, database=name, user=role, password=placement.password
    )
    target_url = pgadmin.with_login(to.url, database=name, user=role, password=placement.password)
    await _freeze(placement.source, name, frozen=True)
    await stage("read-only")
    try:
        await _copy(placement, to)
        await stage("copied")
        rows = await row_counts(source_url)
        if await row_counts(target_url) != rows:
            raise MoveFailed("row counts differ between source and copy")
        await stage("verified")
        await _switch(settings, encryptor, tenant_id, target_url, to)
    except BaseException:
        await _drop(to, name, role)
        await _freeze(placement.source, name, frozen=False)
        raise
    await stage("switched")
    await asyncio.sleep(settings.tenant_url_ttl + 1.0 if grace is None else grace)
    await _drop(placement.source, name, role)
    await stage("done")
    return MoveReport(
        tenant_id, name, placement.source.name, to.name, rows, time.monotonic() - started
    )
