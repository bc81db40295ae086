"""Database plumbing shared by the central and tenant schemas (no domain imports)."""

from __future__ import annotations

import errno
import json
import socket
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import orjson
from sqlalchemy import JSON, DateTime, MetaData, Numeric, String, TypeDecorator, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeEngine

from novabilling.kit.ids import new_id
from novabilling.kit.pools import BudgetPool, ConnectionBudget
from novabilling.kit.sqlite_decimal import register as register_sqlite_decimal

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON()


def json_dumps(value: Any) -> str:
    """JSON columns are written with orjson (the standard library's encoder cost more
    than the rest of reading a page of customers); what orjson refuses (a non-string key,
    an integer beyond 64 bits) goes to ``json.dumps``."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def json_loads(text: str | bytes) -> Any:
    """JSON columns are read with orjson; ``json.loads`` for what it refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal: ``NUMERIC`` on PostgreSQL; canonical text on SQLite, whose
    ``NUMERIC`` affinity would turn ``'0.1'`` into a binary float."""

    impl = Numeric()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(80))
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = Decimal(value)
        return format(number, "f") if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


def id_column() -> Mapped[str]:
    return mapped_column(String(32), primary_key=True, default=new_id)


class CentralBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class TenantBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    register_sqlite_decimal(dbapi_connection)


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _unique_statement_name() -> str:
    return f"__nb_{uuid4().hex}__"


def connect_args(url: str, *, pgbouncer: bool = False) -> dict[str, Any]:
    """asyncpg connect arguments for ``url``.

    asyncpg's default ``sslmode=prefer`` builds an SSL context (loading the CA bundle)
    for every new connection, even when the server then says no. On loopback, with no
    ``ssl``/``sslmode`` in the URL, connect in plain text; anything else is left as given.

    ``pgbouncer``: the server is PgBouncer in transaction mode, where consecutive
    transactions of one client connection may run on different server connections. No
    statement caches (a statement prepared on one server connection is unknown on the
    next) and a unique name per prepared statement (asyncpg's numbered names would collide
    on a server connection that another client prepared on)."""
    args: dict[str, Any] = {}
    parsed = make_url(url)
    if parsed.host in LOOPBACK_HOSTS and not {"ssl", "sslmode"} & set(parsed.query):
        args["ssl"] = False
    if pgbouncer:
        args.update(
            statement_cache_size=0,
            prepared_statement_cache_size=0,
            prepared_statement_name_func=_unique_statement_name,
        )
    return args


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 0,
    null_pool: bool = False,
    budget: ConnectionBudget | None = None,
    pgbouncer: bool = False,
) -> AsyncEngine:
    """An async engine with sane pools; SQLite gets WAL, foreign keys and a busy timeout.

    ``max_overflow`` defaults to 0 on purpose: under sustained concurrency above the pool
    size, SQLAlchemy closes every overflow connection on return (the pool is full), so the
    next request pays a fresh connect. Waiting a few ms for a pooled connection is cheaper
    than a connect per request.

    ``budget``: a ``BudgetPool`` of ``pool_size`` connections that opens connections only
    within that process-wide budget (kit/pools.py)."""
    # hide_parameters: a failing statement's text never carries its bound values (password
    # hashes, emails, encrypted secrets) into an exception message or a log line
    kwargs: dict[str, Any] = {
        "pool_pre_ping": False,
        "hide_parameters": True,
        "json_serializer": json_dumps,
        "json_deserializer": json_loads,
    }
    if budget is not None:
        kwargs.update(poolclass=BudgetPool, budget=budget, pool_size=pool_size)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs["connect_args"] = connect_args(url, pgbouncer=pgbouncer)
    if null_pool:
        return create_async_engine(url, poolclass=NullPool, **kwargs)
    if budget is not None:
        return create_async_engine(url, pool_recycle=1800, **kwargs)
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        **kwargs,
    )


def read_engine(engine: AsyncEngine, *, pgbouncer: bool) -> AsyncEngine:
    """``engine`` for pure reads: autocommit, so no BEGIN and COMMIT/ROLLBACK round trips
    (each statement is its own transaction: what READ COMMITTED gives each statement
    anyway). Never for writes: they would not be atomic. Behind PgBouncer in transaction
    mode it is ``engine`` itself, transactional: there a statement outside a transaction
    may be prepared on one server connection and executed on another."""
    if pgbouncer:
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def read_sessions(engine: AsyncEngine, *, pgbouncer: bool) -> async_sessionmaker[AsyncSession]:
    """ORM sessions on ``read_engine``."""
    return async_sessionmaker(read_engine(engine, pgbouncer=pgbouncer), expire_on_commit=False)


_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def plan_for_current_size(session: AsyncSession) -> None:
    """Plan this transaction's statements for their own parameters and the tables' size
    now (PostgreSQL; nothing to do on SQLite).

    asyncpg prepares every statement, and after five executions PostgreSQL may keep one
    generic plan for the connection's life, replanned only after an ANALYZE. A scan over a
    table that grows while nothing analyzes it (autovacuum off or behind: a fresh tenant
    database) keeps the plan it got when the table was empty; an anti-join that scans the
    whole inner table per outer row went from 1 ms to 3 s per statement in the 13-month
    simulation. A custom plan sees the table's current size even before any ANALYZE. For
    batch scans (the billing tick), where planning costs far less than a wrong plan."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_CUSTOM_PLANS)


# SQLSTATE classes/codes that mean "the server is not there for us right now"; 25006
# (read-only transaction) and 3D000 (no such database): a tenant database being moved to
# another server (tenancy/moving.py) refuses writes, then is gone from the old one
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "53400", "25006", "3D000")
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)
_UNAVAILABLE_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted
    TimeoutError,  # connect timeout (asyncio's is the builtin since 3.11)
    sa_exc.TimeoutError,  # pool exhausted for longer than pool_timeout
)


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the database cannot be reached or will
    not serve now — down, restarting, out of connections — rather than a bug or bad data.
    Such a request answers 503 with ``Retry-After``; the next one may succeed."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _UNAVAILABLE_TYPES):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, socket.gaierror) or (
            isinstance(current, OSError) and current.errno in _NETWORK_ERRNOS
        ):
            return True
        if (
            isinstance(current, OSError)
            and current.errno is None
            and "connect" in str(current).lower()
        ):
            return True  # asyncpg: "Multiple exceptions: [Errno 111] Connect call failed ..."
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        if type(current).__name__ in ("ConnectionDoesNotExistError", "InterfaceError") and (
            "connection" in str(current).lower() and "closed" in str(current).lower()
        ):
            return True
        todo.extend([getattr(current, "orig", None), current.__cause__, current.__context__])
    return False


def short_string(length: int = 255) -> String:
    return String(length)
