"""Migrated templates, so a new tenant database is a copy instead of a full migration run.

PostgreSQL: one template database per server and tenant schema head, named
``<prefix>tpl_<head>``, built once (under an advisory lock, so concurrent provisioners
build it once) by migrating it as its own role, then frozen: ``IS_TEMPLATE``,
``ALLOW_CONNECTIONS false`` (``CREATE DATABASE ... TEMPLATE`` needs a template nobody is
connected to) and a comment that marks it complete. A tenant database is then
``CREATE DATABASE ... TEMPLATE`` plus ``REASSIGN OWNED`` of its tables to the tenant's role.
A new migration head means a new template name: processes running the previous release
keep using theirs during a rolling deploy; ``novabilling migrate`` drops stale ones.

SQLite: ``templates/tenant_<head>.db`` in NB_DATA_DIR, built under a temp name and renamed
into place; a tenant database is a copy of that file.

Anything unexpected makes the caller fall back to creating and migrating from scratch."""

from __future__ import annotations

import asyncio
import shutil
import weakref
from pathlib import Path

import structlog

from novabilling.config import Settings
from novabilling.kit.crypto import random_hex
from novabilling.kit.db import make_engine
from novabilling.tenancy import migrations, pgadmin

log = structlog.get_logger(__name__)

READY = "novabilling tenant template: complete"
_ready: set[tuple[str, str]] = set()  # (server URL, template) known complete in this process
# one build at a time per (server URL, template) in this process: the advisory lock below
# does not serialize anything behind PgBouncer in transaction mode (lock and unlock may
# run on different server connections), and concurrent registrations in one process
# raced to CREATE the same template role and database there
# (per event loop: an asyncio lock belongs to the loop it first waited in)
_building: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Lock]
] = weakref.WeakKeyDictionary()


def template_name(settings: Settings) -> str:
    head = (migrations.head_revision("tenant") or "none").lower()
    return pgadmin.safe_name(f"{settings.tenant_db_prefix}tpl_{head}".lower())


async def _migrate(url: str, *, pgbouncer: bool) -> None:
    engine = make_engine(url, null_pool=True, pgbouncer=pgbouncer)
    try:
        await migrations.upgrade(engine, "tenant")
    finally:
        await engine.dispose()


async def _build(settings: Settings, server_url: str, name: str) -> None:
    password = random_hex(24)
    bouncer = settings.pgbouncer
    rows = await pgadmin.fetch(server_url, "SELECT 1 FROM pg_roles WHERE rolname = $1", name)
    role = "ALTER" if rows else "CREATE"
    await pgadmin.execute(
        server_url,
        f"{role} ROLE \"{name}\" LOGIN PASSWORD '{password}'",
        f'CREATE DATABASE "{name}" OWNER "{name}"',
        f'REVOKE CONNECT, TEMPORARY ON DATABASE "{name}" FROM PUBLIC',
        pgbouncer=bouncer,
    )
    login = pgadmin.with_login(server_url, database=name, user=name, password=password)
    await _migrate(login, pgbouncer=bouncer)
    await pgadmin.execute(
        server_url,
        f'ALTER ROLE "{name}" NOLOGIN',
        # the template's own role keeps only what is inside it: a tenant database's
        # REASSIGN OWNED (provisioning._adopt) also hands over the shared objects the
        # template role owns, and the template database went to the first tenant's role,
        # which could then never be dropped (a move or a failed provisioning left it)
        f'ALTER DATABASE "{name}" OWNER TO CURRENT_USER',
        f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false',
        pgbouncer=bouncer,
    )
    if bouncer:
        await _close_pooled(server_url, name)
    await pgadmin.execute(
        server_url, f"COMMENT ON DATABASE \"{name}\" IS '{READY}'", pgbouncer=bouncer
    )


async def _close_pooled(server_url: str, name: str) -> None:
    """End the server connections PgBouncer still holds on the template (the migration's,
    idle until ``server_idle_timeout``): ``CREATE DATABASE ... TEMPLATE`` refuses a
    template anyone is connected to, so every sign-up until then failed. Needs the admin
    role to be a superuser or a member of ``pg_signal_backend``."""
    await pgadmin.execute(
        server_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        pgbouncer=True,
    )


async def server_template(settings: Settings, server_url: str) -> str:
    """The complete template on ``server_url`` (built if missing); its name."""
    name = template_name(settings)
    key = (server_url, name)
    if key in _ready:
        return name
    locks = _building.setdefault(asyncio.get_running_loop(), {})
    async with locks.setdefault(key, asyncio.Lock()):
        if key not in _ready:
            await _build_once(settings, server_url, name)
            _ready.add(key)
    return name


async def _build_once(settings: Settings, server_url: str, name: str) -> None:
    """Build the template unless another process has (under the advisory lock)."""
    conn = await pgadmin.connect(server_url, pgbouncer=settings.pgbouncer)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", name)
        try:
            state = await conn.fetchrow(
                "SELECT shobj_description(oid, 'pg_database') AS note FROM pg_database "
                "WHERE datname = $1",
                name,
            )
            if state is None or state["note"] != READY:
                if state is not None:  # a build that died half way
                    await _discard(server_url, name, pgbouncer=settings.pgbouncer)
                await _build(settings, server_url, name)
                log.info("tenancy.template_built", template=name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", name)
    finally:
        await conn.close()


async def _discard(server_url: str, name: str, *, pgbouncer: bool) -> None:
    await pgadmin.execute(
        server_url,
        f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false',
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        pgbouncer=pgbouncer,
    )


async def drop_stale(settings: Settings, server_url: str) -> list[str]:
    """Drop this prefix's templates of other schema heads; returns their names."""
    current = template_name(settings)
    rows = await pgadmin.fetch(
        server_url,
        "SELECT datname FROM pg_database WHERE datistemplate AND starts_with(datname, $1)",
        f"{settings.tenant_db_prefix}tpl_",
    )
    stale = [row[0] for row in rows if row[0] != current]
    for name in stale:
        await _discard(server_url, pgadmin.safe_name(name), pgbouncer=settings.pgbouncer)
        await pgadmin.execute(server_url, f'DROP ROLE IF EXISTS "{name}"')
        _ready.discard((server_url, name))
    return stale


def _sqlite_template(settings: Settings) -> Path:
    head = (migrations.head_revision("tenant") or "none").lower()
    return settings.data_dir / "templates" / f"tenant_{head}.db"


async def prepare(settings: Settings, server_urls: list[str]) -> None:
    """Build the current head's template where provisioning will look for it (each of
    ``server_urls``, or the SQLite file when there are none): ``novabilling migrate`` and
    ``serve`` call it, so the first registration after a deploy copies a template instead
    of migrating one in a serving process (which would also keep Alembic, ~11 MiB,
    resident there). Best effort: provisioning builds a missing one itself."""
    if not settings.tenant_templates:
        return
    try:
        for url in server_urls:
            await server_template(settings, url)
        if not server_urls:
            await _sqlite_build(settings)
    except Exception as exc:
        log.warning("tenancy.template_unusable", error=f"{type(exc).__name__}: {exc}")


async def _sqlite_build(settings: Settings) -> Path:
    """The migrated SQLite template (built if missing)."""
    template = _sqlite_template(settings)
    if not template.is_file():
        template.parent.mkdir(parents=True, exist_ok=True)
        building = template.with_name(f".{template.name}.{random_hex(6)}.tmp")
        try:
            engine = make_engine(f"sqlite+aiosqlite:///{building}", null_pool=True)
            try:
                await migrations.upgrade(engine, "tenant")
                async with engine.connect() as conn:  # fold the WAL into the file
                    await conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
            finally:
                await engine.dispose()
            building.replace(template)
        finally:
            building.unlink(missing_ok=True)
    return template


async def copy_sqlite_template(settings: Settings, target: Path) -> None:
    """Make ``target`` a copy of the migrated SQLite template (built on first use)."""
    template = await _sqlite_build(settings)
    await asyncio.to_thread(shutil.copyfile, template, target)
