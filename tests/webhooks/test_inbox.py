"""Group commit of the webhook inbox (``webhooks.inbox``): concurrent deliveries share one
INSERT and one job, every caller gets its own answer, a bad row fails alone, a lost
enqueue is recovered by the sweep, a batch job processes each row on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from novabilling.billing import collection as payment_jobs
from novabilling.billing import scheduler
from novabilling.billing.jobs import billing_handlers
from novabilling.kit.clock import TestClock
from novabilling.kit.jobs import QUEUE_WEBHOOKS
from novabilling.payments.inbox import (
    PROCESS,
    PROCESS_BATCH,
    STALE_AFTER,
    InboxRow,
    InboxWriter,
    sweep_unqueued,
)
from novabilling.runtime import Runtime
from novabilling.tenancy.models import WebhookInbox
from tests.billing.support import RecordingQueue
from tests.conftest import TenantCreds


class DownQueue:
    """A queue whose backend is unreachable (Redis down)."""

    def __init__(self) -> None:
        self.calls = 0

    async def enqueue(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        raise ConnectionError("redis down")

    async def close(self) -> None:
        return None


def row(tenant_id: str, event: str, runtime: Runtime) -> InboxRow:
    return InboxRow(
        provider="paystack",
        event_id=f"{tenant_id}:{event}",
        tenant_id=tenant_id,
        body='{"event": "charge.success"}',
        headers={"x-paystack-signature": "ab"},
        received_at=runtime.clock.now(),
    )


@pytest.fixture
def inserts(runtime: Runtime) -> Iterator[list[str]]:
    """The INSERT statements sent to the inbox."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO WEBHOOK_INBOX"):
            seen.append(statement)

    engine = runtime.central_engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


async def stored(runtime: Runtime, tenant_id: str) -> list[WebhookInbox]:
    async with runtime.central() as session:
        found = await session.scalars(
            select(WebhookInbox).where(WebhookInbox.tenant_id == tenant_id)
        )
        return list(found)


async def test_concurrent_deliveries_share_one_insert_and_one_job(
    runtime: Runtime, tenant: TenantCreds, inserts: list[str]
) -> None:
    queue = RecordingQueue()
    writer = InboxWriter(runtime.central_engine, queue)
    rows = [row(tenant.id, f"evt-{i}", runtime) for i in range(40)]
    ids = await asyncio.gather(*(writer.write(r) for r in rows))
    assert ids == [r.id for r in rows]  # each caller gets its own row id back
    assert 1 <= len(inserts) < 5  # 40 deliveries, a handful of statements
    assert {r.id for r in await stored(runtime, tenant.id)} == set(ids)
    queued = [job for job in queue.jobs if job[0] == QUEUE_WEBHOOKS]
    assert len(queued) == len(inserts)  # one job per flush
    queued_rows = [
        tuple(pair)
        for _, name, data, _ in queued
        for pair in (
            data["rows"] if name == PROCESS_BATCH else [[data["tenant_id"], data["inbox_id"]]]
        )
    ]
    assert sorted(queued_rows) == sorted((tenant.id, i) for i in ids)


async def test_a_lone_delivery_gets_a_single_row_job(runtime: Runtime, tenant: TenantCreds) -> None:
    queue = RecordingQueue()
    writer = InboxWriter(runtime.central_engine, queue)
    inbox_id = await writer.write(row(tenant.id, "alone", runtime))
    assert inbox_id is not None
    assert queue.jobs == [
        (
            QUEUE_WEBHOOKS,
            PROCESS,
            {"tenant_id": tenant.id, "inbox_id": inbox_id},
            f"inbox:{inbox_id}",
        )
    ]


async def test_duplicates_in_one_batch_and_later_are_none(
    runtime: Runtime, tenant: TenantCreds
) -> None:
    queue = RecordingQueue()
    writer = InboxWriter(runtime.central_engine, queue)
    first, second, other = await asyncio.gather(
        writer.write(row(tenant.id, "same", runtime)),
        writer.write(row(tenant.id, "same", runtime)),
        writer.write(row(tenant.id, "other", runtime)),
    )
    assert first is not None and second is None and other is not None
    assert await writer.write(row(tenant.id, "same", runtime)) is None
    assert len(await stored(runtime, tenant.id)) == 2


async def test_a_row_that_cannot_be_stored_fails_alone(
    runtime: Runtime, tenant: TenantCreds
) -> None:
    writer = InboxWriter(runtime.central_engine, RecordingQueue())
    good = row(tenant.id, "good", runtime)
    orphan = row("no-such-tenant", "orphan", runtime)  # foreign key to tenants
    results = await asyncio.gather(writer.write(good), writer.write(orphan), return_exceptions=True)
    assert results[0] == good.id
    assert isinstance(results[1], Exception)
    assert [r.id for r in await stored(runtime, tenant.id)] == [good.id]


async def test_lost_enqueue_keeps_the_row_and_the_sweep_requeues_it(
    runtime: Runtime, tenant: TenantCreds
) -> None:
    down = DownQueue()
    writer = InboxWriter(runtime.central_engine, down)  # type: ignore[arg-type]
    inbox_id = await writer.write(row(tenant.id, "lost-job", runtime))
    assert inbox_id is not None and down.calls == 1  # the caller still got its 200
    clock = TestClock(runtime.clock.now())
    runtime.clock = clock
    runtime.jobs = RecordingQueue()
    ours = (
        QUEUE_WEBHOOKS,
        PROCESS,
        {"tenant_id": tenant.id, "inbox_id": inbox_id},
        f"inbox:{inbox_id}",
    )
    await sweep_unqueued(runtime)
    assert ours not in runtime.jobs.jobs  # type: ignore[attr-defined]  # fresh: may be slow
    clock.advance(STALE_AFTER + timedelta(seconds=1))
    assert await sweep_unqueued(runtime) >= 1  # (the central DB is shared by other tests)
    assert ours in runtime.jobs.jobs  # type: ignore[attr-defined]
    async with runtime.central() as session:
        done = await session.get(WebhookInbox, inbox_id)
        assert done is not None
        done.status = "PROCESSED"
        await session.commit()
    runtime.jobs = RecordingQueue()
    await sweep_unqueued(runtime)
    assert ours not in runtime.jobs.jobs  # type: ignore[attr-defined]  # processed: left alone


async def test_batch_job_processes_every_row_then_reports_the_first_error(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    async def process_inbox(_runtime: Runtime, *, tenant_id: str, inbox_id: str) -> str:
        seen.append(inbox_id)
        if inbox_id.startswith("bad"):
            raise RuntimeError(f"cannot process {inbox_id}")
        return "PROCESSED"

    monkeypatch.setattr(payment_jobs, "process_inbox", process_inbox)
    rows = [("t1", "ok-1"), ("t1", "bad-1"), ("t2", "ok-2"), ("t2", "bad-2")]
    with pytest.raises(RuntimeError, match="bad-1"):
        await payment_jobs.process_inbox_batch(runtime, rows)
    assert seen == ["ok-1", "bad-1", "ok-2", "bad-2"]


async def test_batch_job_is_registered_for_the_worker(runtime: Runtime) -> None:
    handlers = billing_handlers(runtime)
    assert (QUEUE_WEBHOOKS, PROCESS_BATCH) in handlers
    assert (QUEUE_WEBHOOKS, PROCESS) in handlers


async def test_the_scheduler_minute_sweeps_lost_deliveries(
    runtime: Runtime, tenant: TenantCreds
) -> None:
    writer = InboxWriter(runtime.central_engine, DownQueue())  # type: ignore[arg-type]
    inbox_id = await writer.write(row(tenant.id, "lost-at-intake", runtime))
    assert inbox_id is not None
    clock = TestClock(runtime.clock.now() + STALE_AFTER + timedelta(seconds=1))
    runtime.clock = clock
    runtime.jobs = RecordingQueue()
    await scheduler.schedule_once(runtime)
    assert (
        QUEUE_WEBHOOKS,
        PROCESS,
        {"tenant_id": tenant.id, "inbox_id": inbox_id},
        f"inbox:{inbox_id}",
    ) in runtime.jobs.jobs  # type: ignore[attr-defined]
