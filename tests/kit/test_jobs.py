"""Jobs: in-process runner, after-commit buffer, and BullMQ against a real Redis."""

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from novabilling.config import Settings
from novabilling.kit.jobs import (
    QUEUE_BILLING,
    QUEUE_EMAILS,
    Job,
    JobHandler,
    NoJobBufferError,
    PermanentJobError,
    current_job_buffer,
    enqueue_after_commit,
    enqueue_many,
    job_buffer,
)
from novabilling.kit.jobs_bullmq import BullMQQueue, install_signal_handlers, run_worker
from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.runtime import attach_jobs, make_runtime

REDIS_URL = os.environ.get("NB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Recorder:
    """Handlers that record what they saw; ``fail_times`` makes the first N calls raise."""

    def __init__(self) -> None:
        self.seen: list[Job] = []
        self.fail_times: dict[str, int] = {}
        self.event = asyncio.Event()

    def handler(self, *, sleep: float = 0) -> JobHandler:
        async def handle(job: Job) -> None:
            self.seen.append(job)
            if sleep:
                await asyncio.sleep(sleep)
            left = self.fail_times.get(job.name, 0)
            if left:
                self.fail_times[job.name] = left - 1
                raise RuntimeError(f"transient failure of {job.name}")
            self.event.set()

        return handle

    def names(self) -> list[str]:
        return [job.name for job in self.seen]


# ------------------------------------------------------------------ in-process


async def test_inprocess_runs_job_with_copied_data() -> None:
    rec = Recorder()
    queue = InProcessQueue({(QUEUE_BILLING, "billing.tick"): rec.handler()})
    data: dict[str, Any] = {"tenant_id": "t1", "items": [1]}
    await queue.enqueue(QUEUE_BILLING, "billing.tick", data)
    data["items"].append(2)
    await queue.join()
    assert rec.seen == [
        Job(QUEUE_BILLING, "billing.tick", {"tenant_id": "t1", "items": [1]}, None, 0, 5)
    ]
    assert queue.completed == 1
    await queue.close()


async def test_inprocess_retries_with_backoff_then_succeeds() -> None:
    rec = Recorder()
    rec.fail_times["flaky"] = 2
    queue = InProcessQueue({(QUEUE_BILLING, "flaky"): rec.handler()}, backoff_base_seconds=0.05)
    started = time.monotonic()
    await queue.enqueue(QUEUE_BILLING, "flaky", {}, attempts=3)
    await queue.join()
    elapsed = time.monotonic() - started
    assert [job.attempts_made for job in rec.seen] == [0, 1, 2]
    assert rec.seen[-1].is_last_attempt
    assert elapsed >= 0.05 + 0.1 - 0.01  # exponential: 0.05 then 0.1
    assert (queue.completed, queue.failed) == (1, 0)


async def test_inprocess_gives_up_after_attempts() -> None:
    rec = Recorder()
    rec.fail_times["doomed"] = 99
    queue = InProcessQueue({(QUEUE_BILLING, "doomed"): rec.handler()}, backoff_base_seconds=10)
    await queue.enqueue(QUEUE_BILLING, "doomed", {}, attempts=3)
    await queue.drain()  # skips the 10 s / 20 s backoffs
    assert len(rec.seen) == 3
    assert (queue.completed, queue.failed) == (0, 1)


async def test_inprocess_permanent_error_and_unknown_job_do_not_retry() -> None:
    calls = 0

    async def refuse(job: Job) -> None:
        nonlocal calls
        calls += 1
        raise PermanentJobError("bad payload")

    queue = InProcessQueue({(QUEUE_BILLING, "refuse"): refuse}, backoff_base_seconds=0)
    await queue.enqueue(QUEUE_BILLING, "refuse", {})
    await queue.enqueue(QUEUE_BILLING, "no.such.job", {})
    await queue.join()
    assert calls == 1
    assert queue.failed == 2


async def test_inprocess_dedup_by_job_id() -> None:
    rec = Recorder()
    queue = InProcessQueue({(QUEUE_BILLING, "tick"): rec.handler(sleep=0.05)})
    await queue.enqueue(QUEUE_BILLING, "tick", {"n": 1}, job_id="t1:202401010000")
    await queue.enqueue(QUEUE_BILLING, "tick", {"n": 2}, job_id="t1:202401010000")
    await queue.enqueue(QUEUE_BILLING, "tick", {"n": 3}, job_id="t1:202401010001")
    await queue.join()
    # still kept after finishing, as BullMQ keeps completed jobs
    await queue.enqueue(QUEUE_BILLING, "tick", {"n": 4}, job_id="t1:202401010000")
    await queue.join()
    assert sorted(job.data["n"] for job in rec.seen) == [1, 3]


async def test_inprocess_rejects_bad_arguments() -> None:
    queue = InProcessQueue({})
    with pytest.raises(ValueError):
        await queue.enqueue(QUEUE_BILLING, "x", {}, job_id="12345")
    with pytest.raises(TypeError):
        await queue.enqueue(QUEUE_BILLING, "x", {"when": object()})
    with pytest.raises(ValueError):
        await queue.enqueue(QUEUE_BILLING, "x", {}, attempts=0)


async def test_inprocess_delay_and_drain() -> None:
    rec = Recorder()
    queue = InProcessQueue({(QUEUE_EMAILS, "mail"): rec.handler()})
    await queue.enqueue(QUEUE_EMAILS, "mail", {}, delay_seconds=0.2)
    await asyncio.sleep(0.05)
    assert rec.seen == []
    await queue.join()
    assert rec.names() == ["mail"]
    await queue.enqueue(QUEUE_EMAILS, "mail", {}, delay_seconds=3600)
    started = time.monotonic()
    await queue.drain()
    assert time.monotonic() - started < 1
    assert rec.names() == ["mail", "mail"]


async def test_inprocess_concurrency_limit() -> None:
    running = 0
    peak = 0

    async def slow(job: Job) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    queue = InProcessQueue({(QUEUE_BILLING, "slow"): slow}, concurrency=2)
    for _ in range(6):
        await queue.enqueue(QUEUE_BILLING, "slow", {})
    await queue.join()
    assert peak == 2


async def test_inprocess_close_waits_for_running_and_drops_delayed() -> None:
    rec = Recorder()
    queue = InProcessQueue({(QUEUE_BILLING, "slow"): rec.handler(sleep=0.1)})
    await queue.enqueue(QUEUE_BILLING, "slow", {"n": 1})
    await queue.enqueue(QUEUE_BILLING, "slow", {"n": 2}, delay_seconds=60)
    await asyncio.sleep(0.02)
    await queue.close()
    assert rec.event.is_set()  # the running job finished
    assert [job.data["n"] for job in rec.seen] == [1]
    with pytest.raises(RuntimeError):
        await queue.enqueue(QUEUE_BILLING, "slow", {})


async def test_inprocess_handler_can_enqueue_after_commit() -> None:
    rec = Recorder()

    async def parent(job: Job) -> None:
        enqueue_after_commit(QUEUE_EMAILS, "child", {"from": job.name})

    async def failing_parent(job: Job) -> None:
        enqueue_after_commit(QUEUE_EMAILS, "child", {"from": job.name})
        raise PermanentJobError("rolled back")

    queue = InProcessQueue(
        {
            (QUEUE_BILLING, "parent"): parent,
            (QUEUE_BILLING, "failing"): failing_parent,
            (QUEUE_EMAILS, "child"): rec.handler(),
        }
    )
    await queue.enqueue(QUEUE_BILLING, "parent", {})
    await queue.enqueue(QUEUE_BILLING, "failing", {})
    await queue.join()
    assert [job.data for job in rec.seen] == [{"from": "parent"}]


# ------------------------------------------------------------------ after-commit buffer


async def test_buffer_flush_pushes_after_commit() -> None:
    rec = Recorder()
    queue = InProcessQueue({(QUEUE_EMAILS, "mail"): rec.handler()})
    async with job_buffer(queue) as buffer:
        enqueue_after_commit(QUEUE_EMAILS, "mail", {"n": 1}, job_id="m-1")
        enqueue_after_commit(QUEUE_EMAILS, "mail", {"n": 1}, job_id="m-1")  # same unit: once
        enqueue_after_commit(QUEUE_EMAILS, "mail", {"n": 2})
        assert current_job_buffer() is buffer
        assert len(buffer.pending) == 2
        await asyncio.sleep(0.01)
        assert rec.seen == []  # nothing runs before the commit
        await buffer.flush()
    assert current_job_buffer() is None
    await queue.join()
    assert sorted(job.data["n"] for job in rec.seen) == [1, 2]


async def test_buffer_discarded_on_rollback_and_on_error() -> None:
    rec = Recorder()
    queue = InProcessQueue({(QUEUE_EMAILS, "mail"): rec.handler()})
    async with job_buffer(queue) as buffer:
        enqueue_after_commit(QUEUE_EMAILS, "mail", {})
        buffer.discard()
        await buffer.flush()
    with pytest.raises(RuntimeError):
        async with job_buffer(queue):
            enqueue_after_commit(QUEUE_EMAILS, "mail", {})
            raise RuntimeError("boom")
    async with job_buffer(queue):  # never flushed: dropped with a warning
        enqueue_after_commit(QUEUE_EMAILS, "mail", {})
    await queue.join()
    assert rec.seen == []


async def test_enqueue_after_commit_without_buffer_is_a_clear_error() -> None:
    with pytest.raises(NoJobBufferError, match="job_buffer"):
        enqueue_after_commit(QUEUE_EMAILS, "mail", {})


async def test_nested_buffers_restore_outer() -> None:
    queue = InProcessQueue({})
    async with job_buffer(queue) as outer:
        async with job_buffer(queue) as inner:
            assert current_job_buffer() is inner
        assert current_job_buffer() is outer


class BrokenQueue:
    def __init__(self, error: BaseException | None = None, hang: bool = False) -> None:
        self.error = error
        self.hang = hang
        self.calls = 0

    async def enqueue(
        self,
        queue: str,
        name: str,
        data: dict[str, Any],
        *,
        job_id: str | None = None,
        delay_seconds: float = 0,
        attempts: int = 5,
    ) -> None:
        self.calls += 1
        if self.hang:
            await asyncio.sleep(3600)
        if self.error:
            raise self.error

    async def close(self) -> None:
        return None


async def test_flush_never_raises_when_queue_is_down() -> None:
    broken = BrokenQueue(error=ConnectionError("redis down"))
    async with job_buffer(broken) as buffer:
        enqueue_after_commit(QUEUE_EMAILS, "a", {})
        enqueue_after_commit(QUEUE_EMAILS, "b", {})
        await buffer.flush()
    assert broken.calls == 2


async def test_flush_is_time_bounded() -> None:
    hanging = BrokenQueue(hang=True)
    started = time.monotonic()
    async with job_buffer(hanging, flush_timeout_seconds=0.1) as buffer:
        enqueue_after_commit(QUEUE_EMAILS, "a", {})
        await buffer.flush()
    assert time.monotonic() - started < 1


async def test_flush_to_dead_redis_is_fast_and_silent() -> None:
    queue = BullMQQueue("redis://127.0.0.1:1/0", prefix=f"nbtest-{uuid.uuid4().hex}")
    started = time.monotonic()
    async with job_buffer(queue) as buffer:
        enqueue_after_commit(QUEUE_EMAILS, "mail", {"n": 1})
        await buffer.flush()
    await queue.close()
    assert time.monotonic() - started < 6


async def test_attach_jobs_picks_the_backend_from_the_settings(tmp_path: Path) -> None:
    embedded = make_runtime(Settings(env="test", data_dir=tmp_path / "a"))
    assert isinstance(attach_jobs(embedded, {}), InProcessQueue)
    await embedded.close()
    with_redis = make_runtime(
        Settings(env="test", data_dir=tmp_path / "b", redis_url="redis://127.0.0.1:6379/0")
    )
    assert isinstance(attach_jobs(with_redis, {}), BullMQQueue)
    await with_redis.close()


# ------------------------------------------------------------------ BullMQ on real Redis


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis unreachable at {REDIS_URL} with CI=true: {exc!r}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc!r}")
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_client: Redis) -> AsyncIterator[str]:
    value = f"nbtest-{uuid.uuid4().hex}"
    yield value
    keys = [key async for key in redis_client.scan_iter(match=f"{value}:*")]
    if keys:
        await redis_client.delete(*keys)


async def wait_for(predicate: Any, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def start_worker(
    handlers: Any, prefix: str, stop: asyncio.Event, queues: tuple[str, ...] = (QUEUE_BILLING,)
) -> "asyncio.Task[None]":
    return asyncio.create_task(
        run_worker(
            REDIS_URL,
            handlers,
            queues=queues,
            concurrency=2,
            stop=stop,
            prefix=prefix,
            worker_settings={"drainDelay": 1},
        )
    )


@pytest.mark.redis
async def test_bullmq_enqueue_runs_handler(prefix: str) -> None:
    rec = Recorder()
    stop = asyncio.Event()
    worker = start_worker({(QUEUE_BILLING, "billing.tick"): rec.handler()}, prefix, stop)
    producer = BullMQQueue(REDIS_URL, prefix=prefix)
    try:
        await producer.enqueue(QUEUE_BILLING, "billing.tick", {"tenant_id": "t1"})
        await wait_for(lambda: len(rec.seen) == 1)
        job = rec.seen[0]
        assert (job.queue, job.name, job.data, job.attempts_made, job.attempts) == (
            QUEUE_BILLING,
            "billing.tick",
            {"tenant_id": "t1"},
            0,
            5,
        )
    finally:
        stop.set()
        await asyncio.wait_for(worker, 15)
        await producer.close()


@pytest.mark.redis
async def test_bullmq_dedup_job_id_and_delay(prefix: str) -> None:
    rec = Recorder()
    producer = BullMQQueue(REDIS_URL, prefix=prefix)
    await producer.enqueue(QUEUE_BILLING, "tick", {"n": 1}, job_id="t1:202401010000")
    await producer.enqueue(QUEUE_BILLING, "tick", {"n": 2}, job_id="t1:202401010000")
    await producer.enqueue(QUEUE_BILLING, "tick", {"n": 3}, job_id="later", delay_seconds=0.5)
    counts = await producer.bullmq_queue(QUEUE_BILLING).getJobCounts("wait", "delayed")
    assert counts == {"wait": 1, "delayed": 1}
    stop = asyncio.Event()
    worker = start_worker({(QUEUE_BILLING, "tick"): rec.handler()}, prefix, stop)
    try:
        await wait_for(lambda: len(rec.seen) == 2)
        assert [job.data["n"] for job in rec.seen] == [1, 3]
        assert rec.seen[0].job_id == "t1:202401010000"
    finally:
        stop.set()
        await asyncio.wait_for(worker, 15)
        await producer.close()


@pytest.mark.redis
async def test_bullmq_failing_handler_retried_then_succeeds(prefix: str) -> None:
    rec = Recorder()
    rec.fail_times["flaky"] = 2
    stop = asyncio.Event()
    worker = start_worker({(QUEUE_BILLING, "flaky"): rec.handler()}, prefix, stop)
    producer = BullMQQueue(REDIS_URL, prefix=prefix, backoff_base_seconds=0.05)
    try:
        await producer.enqueue(QUEUE_BILLING, "flaky", {"id": "inv_1"}, attempts=3)
        await wait_for(rec.event.is_set)
        assert [job.attempts_made for job in rec.seen] == [0, 1, 2]
        completed = await producer.bullmq_queue(QUEUE_BILLING).getJobCounts("completed", "failed")
        assert completed == {"completed": 1, "failed": 0}
    finally:
        stop.set()
        await asyncio.wait_for(worker, 15)
        await producer.close()


@pytest.mark.redis
async def test_bullmq_unknown_job_fails_without_retry(prefix: str) -> None:
    stop = asyncio.Event()
    worker = start_worker({}, prefix, stop)
    producer = BullMQQueue(REDIS_URL, prefix=prefix, backoff_base_seconds=0.01)
    try:
        await producer.enqueue(QUEUE_BILLING, "no.such.job", {}, attempts=5)
        bull = producer.bullmq_queue(QUEUE_BILLING)

        async def failed() -> int:
            return int((await bull.getJobCounts("failed"))["failed"])

        deadline = time.monotonic() + 10
        while await failed() != 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert worker.done() is False  # the worker keeps running
    finally:
        stop.set()
        await asyncio.wait_for(worker, 15)
        await producer.close()


@pytest.mark.redis
async def test_bullmq_graceful_stop_finishes_running_job(prefix: str) -> None:
    started = asyncio.Event()
    finished: list[str] = []

    async def slow(job: Job) -> None:
        started.set()
        await asyncio.sleep(1.0)
        enqueue_after_commit(QUEUE_EMAILS, "receipt", {"for": job.data["id"]})
        finished.append(job.data["id"])

    stop = asyncio.Event()
    worker = start_worker({(QUEUE_BILLING, "slow"): slow}, prefix, stop)
    producer = BullMQQueue(REDIS_URL, prefix=prefix)
    try:
        await producer.enqueue(QUEUE_BILLING, "slow", {"id": "a"})
        await asyncio.wait_for(started.wait(), 10)
        stop.set()
        await asyncio.wait_for(worker, 15)
        assert finished == ["a"]
        counts = await producer.bullmq_queue(QUEUE_BILLING).getJobCounts("completed", "active")
        assert counts == {"completed": 1, "active": 0}
        # the job the handler queued after its commit was pushed
        emails = await producer.bullmq_queue(QUEUE_EMAILS).getJobCounts("wait")
        assert emails == {"wait": 1}
    finally:
        stop.set()
        await producer.close()


@pytest.mark.redis
async def test_bullmq_stop_takes_no_new_jobs(prefix: str) -> None:
    started: list[str] = []
    finished: list[str] = []

    async def slow(job: Job) -> None:
        started.append(job.data["id"])
        await asyncio.sleep(0.5)
        finished.append(job.data["id"])

    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(
            REDIS_URL,
            {(QUEUE_BILLING, "slow"): slow},
            queues=(QUEUE_BILLING,),
            concurrency=1,
            stop=stop,
            prefix=prefix,
        )
    )
    producer = BullMQQueue(REDIS_URL, prefix=prefix)
    try:
        await producer.enqueue(QUEUE_BILLING, "slow", {"id": "a"})
        await producer.enqueue(QUEUE_BILLING, "slow", {"id": "b"})
        await wait_for(lambda: started == ["a"])
        stop.set()
        await asyncio.wait_for(worker, 15)
        assert finished == ["a"]
        counts = await producer.bullmq_queue(QUEUE_BILLING).getJobCounts("completed", "wait")
        assert counts == {"completed": 1, "wait": 1}  # "b" waits for the next worker
    finally:
        stop.set()
        await producer.close()


async def test_signal_handlers_set_stop() -> None:
    stop = asyncio.Event()
    install_signal_handlers(stop)
    loop = asyncio.get_running_loop()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 2)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        loop.remove_signal_handler(signal.SIGINT)


@pytest.mark.redis
async def test_bullmq_enqueue_many_is_one_call_and_keeps_job_ids(prefix: str) -> None:
    rec = Recorder()
    producer = BullMQQueue(REDIS_URL, prefix=prefix)
    batch = [
        {"name": "tick", "data": {"n": 1}, "job_id": "bulk-a"},
        {"name": "tick", "data": {"n": 2}, "job_id": "bulk-b"},
        {"name": "tick", "data": {"n": 3}},
    ]
    await enqueue_many(producer, QUEUE_BILLING, batch)
    await enqueue_many(producer, QUEUE_BILLING, batch[:1])  # same job id: no second job
    counts = await producer.bullmq_queue(QUEUE_BILLING).getJobCounts("wait")
    assert counts == {"wait": 3}
    stop = asyncio.Event()
    worker = start_worker({(QUEUE_BILLING, "tick"): rec.handler()}, prefix, stop)
    try:
        await wait_for(lambda: len(rec.seen) == 3)
        assert sorted(job.data["n"] for job in rec.seen) == [1, 2, 3]
        assert {job.job_id for job in rec.seen} >= {"bulk-a", "bulk-b"}
        assert all(job.attempts == 5 for job in rec.seen)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 15)
        await producer.close()


async def test_enqueue_many_falls_back_to_one_by_one() -> None:
    recorded: list[tuple[str, str, dict[str, Any], str | None, float]] = []

    class OneByOne:
        async def enqueue(
            self,
            queue: str,
            name: str,
            data: dict[str, Any],
            *,
            job_id: str | None = None,
            delay_seconds: float = 0,
        ) -> None:
            recorded.append((queue, name, data, job_id, delay_seconds))

    batch = [
        {"name": "a", "data": {"n": 1}, "job_id": "x"},
        {"name": "b", "data": {}, "delay_seconds": 30},
    ]
    await enqueue_many(OneByOne(), QUEUE_BILLING, batch)  # type: ignore[arg-type]
    assert recorded == [
        (QUEUE_BILLING, "a", {"n": 1}, "x", 0.0),
        (QUEUE_BILLING, "b", {}, None, 30.0),
    ]
