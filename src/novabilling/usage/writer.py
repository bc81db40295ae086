"""Group commit of usage events, one writer per tenant database.

Requests hand their rows to ``EventWriter.write``; the first starts a flush, rows that
arrive while it is on the wire wait for the next one, which stores them all with one
statement in autocommit (the statement is its own transaction): batching grows with load
by itself and adds no latency at low load (no timer), as the webhook inbox does
(``payments/inbox.py``).

PostgreSQL: ``INSERT .. SELECT FROM jsonb_array_elements(<the rows as one JSON array>)
ON CONFLICT (transaction_id) DO NOTHING RETURNING id`` - one prepared statement whatever
the number of rows, and one parameter that orjson writes in C (a row is a tuple, its
``properties`` nested as they are): encoding seven typed arrays value by value cost the
client about three times as much CPU per row, for the same work on the server. The
statement runs on the driver's own connection (no ORM, no SQL construction per flush).
SQLite: a multi-row ``INSERT .. ON CONFLICT DO NOTHING RETURNING id``.

Each caller learns which of its rows were stored (their ids came back); a row whose
``transaction_id`` is already stored, or repeats a row of an earlier request in the same
flush, was not (the first one wins). A failed multi-row statement is retried request by
request, so only the request whose rows cannot be stored fails.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
import structlog
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from novabilling.usage.event_schemas import event_out
from novabilling.usage.models import UsageEvent

if TYPE_CHECKING:
    from novabilling.runtime import Runtime

__all__ = ["MAX_ROWS", "EventRow", "EventWriter", "event_writer"]

log = structlog.get_logger(__name__)

MAX_ROWS = 2000  # rows per statement
_EXTRAS_KEY = "usage.event_writers"

_PG_INSERT = (
    "INSERT INTO usage_events "
    "(id, transaction_id, subscription_id, code, timestamp, properties, created_at) "
    "SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::timestamptz, r->5, (r->>6)::timestamptz "
    "FROM jsonb_array_elements($1::jsonb) AS r "
    "ON CONFLICT (transaction_id) DO NOTHING RETURNING id"
)
_JSON_OPTIONS = orjson.OPT_NAIVE_UTC  # instants are aware UTC; never read a naive one as local


class EventRow(NamedTuple):
    """One event to store (a plain tuple: cheap to make, and JSON as an array)."""

    id: str
    transaction_id: str
    subscription_id: str
    code: str
    timestamp: datetime
    properties: dict[str, Any]
    created_at: datetime

    def wire(self) -> dict[str, Any]:
        return event_out(
            id=self.id,
            transaction_id=self.transaction_id,
            subscription_id=self.subscription_id,
            code=self.code,
            timestamp=self.timestamp,
            properties=self.properties,
            created_at=self.created_at,
        )


def rows_json(rows: list[EventRow]) -> bytes:
    """The rows as one JSON array of 7-element arrays (``_PG_INSERT``'s parameter)."""
    return orjson.dumps(rows, default=tuple, option=_JSON_OPTIONS)


_Waiting = tuple[list[EventRow], "asyncio.Future[set[str]]"]


class EventWriter:
    def __init__(self, runtime: Runtime, tenant_id: str) -> None:
        self._runtime = runtime
        self._tenant_id = tenant_id
        self._pending: list[_Waiting] = []
        self._drainer: asyncio.Task[None] | None = None  # referenced: a bare task may be GC'd

    async def write(self, rows: list[EventRow]) -> set[str]:
        """Store ``rows`` (shared flush); the ids of those stored."""
        future: asyncio.Future[set[str]] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # let requests that are ready now join this flush
            batch: list[_Waiting] = []
            size = 0
            while self._pending and (not batch or size + len(self._pending[0][0]) <= MAX_ROWS):
                item = self._pending.pop(0)
                batch.append(item)
                size += len(item[0])
            await self._flush(batch)

    async def _flush(self, batch: list[_Waiting]) -> None:
        seen: set[str] = set()
        rows: list[EventRow] = []
        for own, _ in batch:
            for row in own:
                if row.transaction_id not in seen:  # the first of equal ids wins
                    seen.add(row.transaction_id)
                    rows.append(row)
        try:
            engine = await self._runtime.engines.engine(self._tenant_id)
            stored = await _store(engine, rows) if rows else set()
        except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
            if len(batch) > 1:
                log.warning("usage.batch_insert_failed", requests=len(batch), error=repr(exc))
                for item in batch:
                    await self._flush([item])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for own, future in batch:
            if not future.done():
                future.set_result({row.id for row in own if row.id in stored})


async def _store(engine: AsyncEngine, rows: list[EventRow]) -> set[str]:
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # autocommit: the driver connection is outside any transaction here (none was
            # begun on it), so the statement is its own; nothing to roll back on release
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            try:
                found = await driver.fetch(_PG_INSERT, rows_json(rows).decode())
            except Exception:
                if driver.is_closed():  # not back into the pool: the ORM path would drop it too
                    await conn.invalidate()
                raise
            return {record[0] for record in found}
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        stmt = (
            sqlite_insert(UsageEvent)
            .values([row._asdict() for row in rows])
            .on_conflict_do_nothing(index_elements=["transaction_id"])
            .returning(UsageEvent.id)
        )
        result = await conn.execute(stmt)
        return {str(found) for found in result.scalars()}


def event_writer(runtime: Runtime, tenant_id: str) -> EventWriter:
    """The process-wide writer of ``tenant_id``'s events (created on first use)."""
    writers = runtime.extras.setdefault(_EXTRAS_KEY, {})
    writer = writers.get(tenant_id)
    if not isinstance(writer, EventWriter):
        writer = EventWriter(runtime, tenant_id)
        writers[tenant_id] = writer
    return writer
