"""The transactional outbox on real tenant databases: jobs are written in the commit of
the rows they are about, pushed and deleted after it, gone with a rollback, and relayed
by the tick when the process died between the commit and the push."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from novabilling.customers.models import Customer
from novabilling.kit.clock import SystemClock
from novabilling.kit.ids import new_id
from novabilling.kit.jobs import QUEUE_EMAILS, enqueue_after_commit, job_buffer
from novabilling.kit.outbox import STALE_AFTER, OutboxMessage, relay_stale
from novabilling.runtime import Runtime
from tests.billing.support import RecordingQueue
from tests.conftest import TenantCreds


def _customer(now: Any) -> Customer:
    return Customer(
        id=new_id(),
        external_id=new_id(),
        email="o@x.test",
        currency="USD",
        created_at=now,
        updated_at=now,
    )


async def _outbox(runtime: Runtime, tenant: TenantCreds) -> list[OutboxMessage]:
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        return list((await session.scalars(select(OutboxMessage))).all())


async def test_jobs_commit_with_their_rows_then_leave_the_outbox(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = RecordingQueue()
    maker = await runtime.engines.sessionmaker(tenant.id)
    now = SystemClock().now()
    async with job_buffer(queue) as buffer, maker() as session:
        session.add(_customer(now))
        enqueue_after_commit(QUEUE_EMAILS, "email.test", {"n": 1}, job_id="t:1")
        enqueue_after_commit(QUEUE_EMAILS, "email.test", {"n": 2})
        await session.commit()
        staged = await _outbox(runtime, tenant)
        assert sorted(r.data["n"] for r in staged) == [1, 2]  # in the same commit
        by_n = {r.data["n"]: r for r in staged}
        assert by_n[1].job_id == "t:1" and by_n[2].job_id == f"outbox:{by_n[2].id}"
        assert queue.jobs == []  # nothing pushed before the flush
        await buffer.flush()
    assert sorted(d["n"] for _, _, d, _ in queue.jobs) == [1, 2]
    assert await _outbox(runtime, tenant) == []  # pushed: rows gone


async def test_a_rollback_leaves_no_job(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = RecordingQueue()
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with job_buffer(queue) as buffer, maker() as session:
        session.add(_customer(SystemClock().now()))
        enqueue_after_commit(QUEUE_EMAILS, "email.test", {"n": 1})
        await session.rollback()
        buffer.discard()
    assert await _outbox(runtime, tenant) == [] and queue.jobs == []


async def test_a_crash_after_the_commit_loses_nothing(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """The process dies after the commit, before the push (the buffer is simply gone):
    the rows stay, and the tick's relay pushes each exactly once after ``STALE_AFTER``."""
    maker = await runtime.engines.sessionmaker(tenant.id)
    lost = RecordingQueue()
    async with job_buffer(lost) as buffer, maker() as session:
        session.add(_customer(SystemClock().now()))
        for n in range(3):
            enqueue_after_commit(QUEUE_EMAILS, "email.test", {"n": n}, job_id=f"crash:{n}")
        await session.commit()
        buffer.discard()  # the crash: no flush
    assert len(await _outbox(runtime, tenant)) == 3 and lost.jobs == []
    relay = RecordingQueue()
    assert await relay_stale(maker, relay) == 0  # too fresh: its own unit may still push
    later = SystemClock().now() + STALE_AFTER + timedelta(seconds=1)
    assert await relay_stale(maker, relay, now=later) == 3
    assert sorted(j for _, _, _, j in relay.jobs) == ["crash:0", "crash:1", "crash:2"]
    assert await relay_stale(maker, relay, now=later) == 0  # relayed once
    async with maker() as session:
        count = await session.scalar(select(func.count()).select_from(Customer))
    assert count == 1
