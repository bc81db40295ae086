"""Group commit for the central webhook inbox.

Every verified delivery becomes one ``webhook_inbox`` row, processed by a job. Done one at
a time, each delivery pays a database round trip, a commit (WAL flush) and a Redis round
trip of its own. ``InboxWriter`` lets concurrent deliveries share them: the
first caller starts a flush; deliveries that arrive while that flush is on the wire wait
for the next one, which writes them all with one multi-row
``INSERT .. ON CONFLICT (provider, event_id) DO NOTHING RETURNING`` (autocommit: the
statement is its own transaction) and enqueues one job for the rows it stored
(``webhooks.process_batch``; ``webhooks.process`` for a single row). There is no timer:
a lone delivery is written at once, so batching adds no latency at low load and grows
with load by itself.

Every caller gets its own answer: the new row's id, or ``None`` when (provider, event_id)
was already stored (also when the same event appears twice in one batch: the first
wins). A failed multi-row INSERT is retried row by row, so only the delivery whose row cannot be
stored fails (500: the provider retries it).
A failed enqueue does not: the rows are stored, and ``sweep_unqueued`` (run by the billing
tick) re-enqueues inbox rows still ``RECEIVED`` after a while.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from novabilling.kit.ids import new_id
from novabilling.kit.jobs import QUEUE_WEBHOOKS, JobQueue, enqueue_many
from novabilling.tenancy.models import WebhookInbox

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from novabilling.runtime import Runtime

log = structlog.get_logger(__name__)

PROCESS = "webhooks.process"
PROCESS_BATCH = "webhooks.process_batch"
MAX_BATCH = 200
STALE_AFTER = timedelta(minutes=2)
_EXTRAS_KEY = "webhooks.inbox_writer"


@dataclass
class InboxRow:
    provider: str
    event_id: str
    tenant_id: str
    body: str
    headers: dict[str, Any]
    received_at: datetime
    id: str = field(default_factory=new_id)


def process_job(rows: list[tuple[str, str]]) -> dict[str, Any]:
    """One job for the (tenant id, inbox id) rows stored by one flush: ``webhooks.process``
    for a single row, else ``webhooks.process_batch`` (one queue round trip for the lot;
    each row is still processed, and skipped once done, on its own)."""
    first_tenant, first_id = rows[0]
    if len(rows) == 1:
        data: dict[str, Any] = {"tenant_id": first_tenant, "inbox_id": first_id}
        return {"name": PROCESS, "data": data, "job_id": f"inbox:{first_id}"}
    data = {"rows": [[tenant_id, inbox_id] for tenant_id, inbox_id in rows]}
    return {"name": PROCESS_BATCH, "data": data, "job_id": f"inbox-batch:{first_id}"}


class InboxWriter:
    def __init__(self, engine: AsyncEngine, jobs: JobQueue | None) -> None:
        self._engine = engine
        self._jobs = jobs
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self._pending: list[tuple[InboxRow, asyncio.Future[str | None]]] = []
        self._drainer: asyncio.Task[None] | None = None  # referenced: a bare task may be GC'd

    async def write(self, row: InboxRow) -> str | None:
        """Store ``row`` (shared flush); its id, or ``None`` for a duplicate."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # let deliveries that are ready now join this batch
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            await self._flush(batch)

    async def _flush(self, batch: list[tuple[InboxRow, asyncio.Future[str | None]]]) -> None:
        groups: dict[tuple[str, str], list[tuple[InboxRow, asyncio.Future[str | None]]]] = {}
        for pair in batch:
            groups.setdefault((pair[0].provider, pair[0].event_id), []).append(pair)
        first = [group[0][0] for group in groups.values()]  # the first delivery of an event wins
        try:
            stored = await self._store(first)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting deliveries
            if len(groups) > 1:
                # One bad row (its tenant deleted meanwhile, say) must not fail the others.
                log.warning("webhook.batch_insert_failed", rows=len(groups), error=repr(exc))
                for group in groups.values():
                    await self._flush(group)
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for row, future in batch:
            if not future.done():
                future.set_result(row.id if row.id in stored else None)
        await self._enqueue([row for row in first if row.id in stored])

    async def _store(self, rows: list[InboxRow]) -> set[str]:
        stmt = (
            self._insert(WebhookInbox)
            .values(
                [
                    {
                        "id": row.id,
                        "provider": row.provider,
                        "event_id": row.event_id,
                        "tenant_id": row.tenant_id,
                        "body": row.body,
                        "headers": row.headers,
                        "status": "RECEIVED",
                        "attempts": 0,
                        "received_at": row.received_at,
                    }
                    for row in rows
                ]
            )
            .on_conflict_do_nothing(index_elements=["provider", "event_id"])
            .returning(WebhookInbox.id)
        )
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return {str(found) for found in (await conn.execute(stmt)).scalars()}

    async def _enqueue(self, rows: list[InboxRow]) -> None:
        if not rows or self._jobs is None:
            return
        try:
            job = process_job([(row.tenant_id, row.id) for row in rows])
            await enqueue_many(self._jobs, QUEUE_WEBHOOKS, [job])
        except Exception as exc:  # noqa: BLE001 - stored rows are re-enqueued by the sweep
            log.warning("webhook.enqueue_failed", rows=len(rows), error=repr(exc))


def inbox_writer(runtime: Runtime) -> InboxWriter:
    """The process-wide writer kept on the runtime (created on first use)."""
    writer = runtime.extras.get(_EXTRAS_KEY)
    if not isinstance(writer, InboxWriter):
        writer = InboxWriter(runtime.central_engine, runtime.jobs)
        runtime.extras[_EXTRAS_KEY] = writer
    return writer


async def sweep_unqueued(runtime: Runtime, *, limit: int = 500) -> int:
    """Re-enqueue inbox rows still ``RECEIVED`` after ``STALE_AFTER`` (their job was lost:
    Redis down at intake, or a queue flushed). Processing is idempotent per row and the job
    id is the row's, so a row whose job is merely slow is not processed twice."""
    if runtime.jobs is None:
        return 0
    cutoff = runtime.clock.now() - STALE_AFTER
    async with runtime.central() as session:
        rows = (
            await session.execute(
                select(WebhookInbox.id, WebhookInbox.tenant_id)
                .where(WebhookInbox.status == "RECEIVED", WebhookInbox.received_at < cutoff)
                .order_by(WebhookInbox.received_at)
                .limit(limit)
            )
        ).all()
    jobs = [process_job([(tenant_id, inbox_id)]) for inbox_id, tenant_id in rows if tenant_id]
    if jobs:
        await enqueue_many(runtime.jobs, QUEUE_WEBHOOKS, jobs)
        log.info("webhook.requeued", rows=len(jobs))
    return len(jobs)
