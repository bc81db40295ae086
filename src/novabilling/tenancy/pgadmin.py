"""Admin statements on a tenant database server (CREATE/DROP DATABASE and ROLE, ...), over
one short-lived asyncpg connection (autocommit) with the server URL's admin credentials.
PostgreSQL only."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from novabilling.kit.db import connect_args

_SAFE_NAME = re.compile(r"^[a-z0-9_]{1,63}$")


def safe_name(name: str) -> str:
    """A database/role name we create: lowercase alphanumerics and ``_`` only (they are
    interpolated into DDL, which takes no bind parameters)."""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unsafe database name: {name!r}")
    return name


def on_database(server_url: str, database: str) -> str:
    """The admin URL pointed at another database of the same server."""
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


def with_login(server_url: str, *, database: str, user: str, password: str) -> str:
    return (
        make_url(server_url)
        .set(database=database, username=user, password=password)
        .render_as_string(hide_password=False)
    )


async def connect(url: str, *, pgbouncer: bool) -> asyncpg.Connection:
    """A plain asyncpg connection (no engine to build, no dialect to initialise)."""
    parsed = make_url(url)
    args = connect_args(url, pgbouncer=pgbouncer)
    return await asyncpg.connect(
        host=parsed.host or "localhost",
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
        ssl=args.get("ssl"),
        statement_cache_size=args.get("statement_cache_size", 100),
    )


async def execute(server_url: str, *statements: str, pgbouncer: bool = False) -> None:
    """Run ``statements`` in order, each on its own (autocommit), over one connection."""
    conn = await connect(server_url, pgbouncer=pgbouncer)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def fetch(
    server_url: str, query: str, *args: Any, pgbouncer: bool = False
) -> list[asyncpg.Record]:
    conn = await connect(server_url, pgbouncer=pgbouncer)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()
