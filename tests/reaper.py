"""Drop each test's PostgreSQL databases while the following tests run.

A test run creates hundreds of tenant databases; dropping them all at the end of the
session cost each xdist worker three to four minutes of wall time after its last test
(``DROP DATABASE`` waits for a checkpoint and for the files to go). The reaper lists this
run's databases when a test starts and again when it ends, and drops the new ones - with
the role of the same name that every tenant database has - a batch at a time on a few
connections of its own in a background thread, overlapping with the next tests.

Kept for the session end (the conftest's cleanup drops them): the central database (made
by a session fixture, possibly inside a test) and templates (shared by every later
registration; named ``..._tpl_<head>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


class DatabaseReaper:
    def __init__(
        self, *, host: str, port: int, prefix: str, keep: set[str], drops: int, batch: int
    ) -> None:
        self._connect_args: dict[str, Any] = {
            "host": host,
            "port": port,
            "user": "postgres",
            "database": "postgres",
        }
        self._prefix = prefix
        self._keep = keep
        self._drops = drops
        self._batch = batch
        self._waiting: set[str] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="nbtest-database-reaper", daemon=True
        )
        self._thread.start()
        self._pending: list[Future[None]] = []
        self._lister: asyncpg.Connection | None = None
        self._pool: asyncpg.Pool | None = None
        self.dropped = 0

    def _run(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _names(self) -> set[str]:
        if self._lister is None:
            self._lister = await asyncpg.connect(**self._connect_args)
        rows = await self._lister.fetch(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1) "
            "AND NOT datistemplate AND strpos(datname, '_tpl_') = 0",
            self._prefix,
        )
        return {row["datname"] for row in rows} - self._keep

    def databases(self) -> set[str]:
        """This run's databases that exist now (central and templates left out)."""
        return self._run(self._names()).result()

    async def _drop(self, names: set[str]) -> None:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                **self._connect_args, min_size=0, max_size=self._drops
            )
        pool = self._pool

        async def drop(name: str) -> None:
            async with pool.acquire() as conn:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                # the tenant's role (same name); a role that owns something elsewhere is
                # left for the session-end cleanup
                with contextlib.suppress(asyncpg.PostgresError):
                    await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
            self.dropped += 1

        await asyncio.gather(*(drop(name) for name in sorted(names)))

    def keep(self, name: str) -> None:
        """Leave ``name`` alone until ``release``: a database shared by several tests."""
        self._keep.add(name)

    def release(self, name: str) -> None:
        """Its tests are over: drop ``name`` in the background."""
        self._keep.discard(name)
        self.drop({name})

    def drop(self, names: set[str]) -> None:
        """Drop ``names`` in the background, ``batch`` at a time; returns at once.

        Every ``DROP DATABASE`` waits for a checkpoint, and a checkpoint per test slowed
        the tests around it (each one flushes what they wrote, and the next write of
        every page logs the whole page): drops started together share a checkpoint."""
        self._waiting |= names
        if len(self._waiting) >= self._batch:
            self._flush()

    def _flush(self) -> None:
        names, self._waiting = self._waiting, set()
        if names:
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._run(self._drop(names)))

    def settle(self) -> None:
        """Drop what waits for a batch and wait until every drop asked for so far is
        done (raises a drop's error)."""
        self._flush()
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        try:
            self.settle()
        finally:

            async def disconnect() -> None:
                if self._lister is not None:
                    await self._lister.close()
                if self._pool is not None:
                    await self._pool.close()

            self._run(disconnect()).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
