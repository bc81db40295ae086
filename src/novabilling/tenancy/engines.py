"""Tenant engine registry: one AsyncEngine per tenant database, LRU-bounded, small pools,
idle engines disposed. Nothing outside tenancy sees a tenant DSN."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from novabilling.errors import NotFound
from novabilling.kit.crypto import Encryptor
from novabilling.kit.db import make_engine
from novabilling.kit.outbox import outbox_sessionmaker
from novabilling.tenancy.models import DatabaseConnection

log = structlog.get_logger(__name__)


@dataclass
class _Entry:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    readers: async_sessionmaker[AsyncSession]
    last_used: float


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
    ) -> None:
        self._central = central
        self._encryptor = encryptor
        self._max = max_engines
        self._pool_size = pool_size
        self._overflow = max_overflow
        self._idle = idle_seconds
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    async def sessionmaker(self, tenant_id: str) -> async_sessionmaker[AsyncSession]:
        entry = self._entries.get(tenant_id)
        if entry is None:
            entry = await self._open(tenant_id)
        else:
            self._entries.move_to_end(tenant_id)
        entry.last_used = time.monotonic()
        return entry.sessions

    async def read_sessionmaker(self, tenant_id: str) -> async_sessionmaker[AsyncSession]:
        """Sessions for pure reads: autocommit, so no BEGIN/COMMIT round trips."""
        await self.sessionmaker(tenant_id)
        return self._entries[tenant_id].readers

    async def engine(self, tenant_id: str) -> AsyncEngine:
        await self.sessionmaker(tenant_id)
        return self._entries[tenant_id].engine

    async def _open(self, tenant_id: str) -> _Entry:
        async with self._lock:
            entry = self._entries.get(tenant_id)
            if entry is not None:
                return entry
            url = await self._tenant_url(tenant_id)
            engine = make_engine(url, pool_size=self._pool_size, max_overflow=self._overflow)
            entry = _Entry(
                engine=engine,
                sessions=outbox_sessionmaker(engine),
                # Same pool; no BEGIN/COMMIT round trips (each statement is its own
                # transaction: what READ COMMITTED gives each statement anyway).
                readers=async_sessionmaker(
                    engine.execution_options(isolation_level="AUTOCOMMIT"),
                    expire_on_commit=False,
                ),
                last_used=time.monotonic(),
            )
            self._entries[tenant_id] = entry
            evicted = []
            while len(self._entries) > self._max:
                _, old = self._entries.popitem(last=False)
                evicted.append(old.engine)
        for old_engine in evicted:
            await old_engine.dispose()
        return entry

    async def _tenant_url(self, tenant_id: str) -> str:
        async with self._central() as session:
            conn = await session.scalar(
                select(DatabaseConnection).where(DatabaseConnection.tenant_id == tenant_id)
            )
        if conn is None:
            raise NotFound("Tenant database not found")
        return self._encryptor.decrypt(conn.url_encrypted, aad=tenant_id.encode())

    async def forget(self, tenant_id: str) -> None:
        entry = self._entries.pop(tenant_id, None)
        if entry is not None:
            await entry.engine.dispose()

    async def sweep_idle(self) -> int:
        """Dispose engines unused for ``idle_seconds``; returns how many were closed."""
        cutoff = time.monotonic() - self._idle
        stale = [tid for tid, e in self._entries.items() if e.last_used < cutoff]
        for tid in stale:
            await self.forget(tid)
        if stale:
            log.info("tenancy.engines_disposed", count=len(stale))
        return len(stale)

    async def dispose_all(self) -> None:
        for tid in list(self._entries):
            await self.forget(tid)
