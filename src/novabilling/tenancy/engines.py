"""Tenant engine registry: one AsyncEngine per tenant database, LRU-bounded, small pools,
idle engines disposed. Nothing outside tenancy sees a tenant DSN.

With a ``ConnectionBudget`` (PostgreSQL tenants), every tenant pool draws from the one
process-wide cap on connections (kit/pools.py), and the tenant engines of one server share
that server's dialect and compiled-statement cache: an engine per tenant is then a pool and
a small object, so thousands of them fit in memory and a new one costs no dialect start-up
and no SQL compilation."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

import structlog
from sqlalchemy import bindparam, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from novabilling.errors import NotFound
from novabilling.kit.crypto import Encryptor
from novabilling.kit.db import connect_args, make_engine, read_engine, read_sessions
from novabilling.kit.outbox import outbox_sessionmaker
from novabilling.kit.pools import ConnectionBudget, derive_engine
from novabilling.tenancy.models import DatabaseConnection

log = structlog.get_logger(__name__)


_URL_OF = select(DatabaseConnection.url_encrypted).where(
    DatabaseConnection.tenant_id == bindparam("tenant_id")
)


@dataclass
class _Entry:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    readers: async_sessionmaker[AsyncSession]
    reads: AsyncEngine  # the readers' engine, for Core reads without a session
    last_used: float
    url: str
    checked: float  # when the URL was last read from the central database


def _server_key(url: str) -> str:
    """The server part of a URL: tenant databases with the same key share a dialect."""
    parsed = make_url(url)
    query = sorted((k, str(v)) for k, v in parsed.query.items())
    return f"{parsed.drivername}://{parsed.host}:{parsed.port}?{query}"


class EngineRegistry:
    def __init__(
        self,
        *,
        central: async_sessionmaker[AsyncSession],
        encryptor: Encryptor,
        max_engines: int = 64,
        pool_size: int = 5,
        max_overflow: int = 0,
        idle_seconds: float = 600.0,
        budget: ConnectionBudget | None = None,
        pgbouncer: bool = False,
        url_ttl: float = 30.0,
    ) -> None:
        self._central = central
        self._encryptor = encryptor
        self._max = max_engines
        self._pool_size = pool_size
        self._overflow = max_overflow
        self._idle = idle_seconds
        self.budget = budget
        self._pgbouncer = pgbouncer
        self._url_ttl = url_ttl
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._templates: dict[str, AsyncEngine] = {}
        self._lock = asyncio.Lock()
        self._next_sweep = time.monotonic() + idle_seconds

    def __len__(self) -> int:
        return len(self._entries)

    async def sessionmaker(self, tenant_id: str) -> async_sessionmaker[AsyncSession]:
        now = time.monotonic()
        entry = self._entries.get(tenant_id)
        if entry is None:
            if now >= self._next_sweep:
                await self.sweep_idle()
            entry = await self._open(tenant_id)
        else:
            self._entries.move_to_end(tenant_id)
            if now - entry.checked >= self._url_ttl:
                entry = await self._revalidate(tenant_id, entry, now)
        entry.last_used = now
        return entry.sessions

    async def _revalidate(self, tenant_id: str, entry: _Entry, now: float) -> _Entry:
        """Re-read where the tenant's database lives: a move (tenants move) changes it, and
        every process follows within ``url_ttl``."""
        entry.checked = now  # one re-read at a time, not one per concurrent request
        try:
            url = await self._tenant_url(tenant_id)
        except NotFound:
            await self.forget(tenant_id)
            raise
        if url == entry.url:
            return entry
        log.info("tenancy.database_moved", tenant_id=tenant_id)
        await self.forget(tenant_id)
        return await self._open(tenant_id)

    async def read_sessionmaker(self, tenant_id: str) -> async_sessionmaker[AsyncSession]:
        """Sessions for pure reads: autocommit, so no BEGIN/COMMIT round trips."""
        await self.sessionmaker(tenant_id)
        return self._entries[tenant_id].readers

    async def read_engine(self, tenant_id: str) -> AsyncEngine:
        """``read_sessionmaker``'s engine: for reads that run Core statements only."""
        await self.sessionmaker(tenant_id)
        return self._entries[tenant_id].reads

    async def engine(self, tenant_id: str) -> AsyncEngine:
        await self.sessionmaker(tenant_id)
        return self._entries[tenant_id].engine

    async def _open(self, tenant_id: str) -> _Entry:
        async with self._lock:
            entry = self._entries.get(tenant_id)
            if entry is not None:
                return entry
            url = await self._tenant_url(tenant_id)
            engine = await self._build(url)
            sessions = outbox_sessionmaker(engine)
            entry = _Entry(
                engine=engine,
                sessions=sessions,
                # Same pool; autocommit (kit.db.read_engine), or the ordinary (outbox)
                # sessions behind PgBouncer
                readers=sessions if self._pgbouncer else read_sessions(engine, pgbouncer=False),
                reads=read_engine(engine, pgbouncer=self._pgbouncer),
                last_used=time.monotonic(),
                url=url,
                checked=time.monotonic(),
            )
            self._entries[tenant_id] = entry
            evicted = []
            while len(self._entries) > self._max:
                _, old = self._entries.popitem(last=False)
                evicted.append(old.engine)
        for old_engine in evicted:
            await old_engine.dispose()
        return entry

    async def _build(self, url: str) -> AsyncEngine:
        if self.budget is None or url.startswith("sqlite"):
            return make_engine(
                url,
                pool_size=self._pool_size,
                max_overflow=self._overflow,
                pgbouncer=self._pgbouncer,
            )
        key = _server_key(url)
        args = connect_args(url, pgbouncer=self._pgbouncer)
        template = self._templates.get(key)
        if template is not None:
            return derive_engine(template, url, connect_args=args)
        template = make_engine(
            url, budget=self.budget, pool_size=self._pool_size, pgbouncer=self._pgbouncer
        )
        engine = derive_engine(template, url, connect_args=args)
        # The first connection initialises the shared dialect; do it now, alone, before
        # concurrent requests race to use a half-initialised one.
        async with engine.connect():
            pass
        self._templates[key] = template
        return engine

    async def _tenant_url(self, tenant_id: str) -> str:
        async with self._central() as session:
            sealed = await session.scalar(_URL_OF, {"tenant_id": tenant_id})
        if sealed is None:
            raise NotFound("Tenant database not found")
        return self._encryptor.decrypt(sealed, aad=tenant_id.encode())

    async def forget(self, tenant_id: str) -> None:
        entry = self._entries.pop(tenant_id, None)
        if entry is not None:
            await entry.engine.dispose()

    async def sweep_idle(self) -> int:
        """Dispose engines unused for ``idle_seconds``; returns how many were closed."""
        now = time.monotonic()
        self._next_sweep = now + max(self._idle / 10, 1.0)
        cutoff = now - self._idle
        stale = [tid for tid, e in self._entries.items() if e.last_used < cutoff]
        for tid in stale:
            await self.forget(tid)
        if stale:
            log.info("tenancy.engines_disposed", count=len(stale))
        return len(stale)

    async def dispose_all(self) -> None:
        for tid in list(self._entries):
            await self.forget(tid)
        for template in self._templates.values():
            await template.dispose()
        self._templates.clear()
