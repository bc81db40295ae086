"""Embedded job runner: jobs run as asyncio tasks in the API process (no Redis).

Same contract as BullMQ: at-least-once, ``attempts`` tries with exponential backoff,
``job_id`` dedup (including recently finished jobs, as BullMQ keeps them), delays.
Jobs run in a fresh ``contextvars.Context``: nothing leaks from the request that queued
them. Nothing survives a restart — the scheduler tick finds the work again from the DB.

Tests: ``await queue.join()`` waits until every job (delays and backoffs included) is
done; ``await queue.drain()`` does the same but skips the remaining waits, so scenario
tests driven by a ``TestClock`` need not sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import structlog

from novabilling.kit.jobs import (
    DEFAULT_ATTEMPTS,
    Job,
    JobHandlers,
    PermanentJobError,
    backoff_seconds,
    check_enqueue_args,
    run_handler,
)

log = structlog.get_logger(__name__)


class InProcessQueue:
    def __init__(
        self,
        handlers: JobHandlers,
        *,
        concurrency: int = 4,
        backoff_base_seconds: float = 1.0,
        keep_finished: int = 1000,
        keep_finished_seconds: float = 3600.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._handlers = handlers
        self._slots = asyncio.Semaphore(concurrency)
        self._backoff_base = backoff_base_seconds
        self._keep_finished = keep_finished
        self._keep_finished_seconds = keep_finished_seconds
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[asyncio.Task[None]] = set()
        self._live_ids: set[tuple[str, str]] = set()
        self._finished_ids: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._hurry = asyncio.Event()
        self._closed = False
        self.completed = 0
        self.failed = 0

    # -- JobQueue --------------------------------------------------------------------------

    async def enqueue(
        self,
        queue: str,
        name: str,
        data: dict[str, Any],
        *,
        job_id: str | None = None,
        delay_seconds: float = 0,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        if self._closed:
            raise RuntimeError("InProcessQueue is closed")
        check_enqueue_args(queue, name, data, job_id, attempts)
        if job_id is not None:
            key = (queue, job_id)
            self._forget_old_ids()
            if key in self._live_ids or key in self._finished_ids:
                log.debug("job.duplicate", queue=queue, job=name, job_id=job_id)
                return
            self._live_ids.add(key)
        job = Job(
            queue=queue,
            name=name,
            data=json.loads(json.dumps(data)),  # a copy, as if it went through Redis
            job_id=job_id,
            attempts_made=0,
            attempts=attempts,
        )
        task = asyncio.get_running_loop().create_task(
            self._run(job, delay_seconds), context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop accepting jobs, drop delayed/backing-off ones (logged), wait for running."""
        self._closed = True
        waiting = [t for t in self._tasks if t not in self._running]
        for task in waiting:
            task.cancel()
        if waiting:
            log.warning("jobs.inprocess_dropped_on_close", count=len(waiting))
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- test helpers ----------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return len(self._tasks)

    async def join(self) -> None:
        """Wait until no job is waiting, delayed, backing off or running (including jobs
        enqueued by handlers meanwhile)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def drain(self) -> None:
        """Like ``join`` but run delayed jobs and retries now instead of waiting."""
        self._hurry.set()
        try:
            await self.join()
        finally:
            self._hurry.clear()

    # -- internals -------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0 or self._hurry.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), timeout=seconds)

    async def _run(self, job: Job, delay_seconds: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            await self._sleep(delay_seconds)
            while True:
                async with self._slots:
                    self._running.add(task)
                    try:
                        ok = await self._attempt(job)
                    finally:
                        self._running.discard(task)
                if ok:
                    self.completed += 1
                    return
                job.attempts_made += 1
                if job.attempts_made >= job.attempts or self._closed:
                    self.failed += 1
                    log.error(
                        "job.failed",
                        job=job.name,
                        job_id=job.job_id,
                        attempts_made=job.attempts_made,
                        closing=self._closed,
                    )
                    return
                await self._sleep(backoff_seconds(job.attempts_made, self._backoff_base))
        finally:
            self._finish(job)

    async def _attempt(self, job: Job) -> bool:
        # each try gets its own copy, as a job re-read from Redis would be
        attempt = replace(job, data=json.loads(json.dumps(job.data)))
        try:
            await run_handler(self._handlers, attempt, queue=self)
        except PermanentJobError as exc:
            log.error("job.failed_permanently", job=job.name, job_id=job.job_id, error=repr(exc))
            job.attempts_made = job.attempts - 1  # no more tries
            return False
        except Exception:  # noqa: BLE001 - any handler error means retry
            log.warning(
                "job.attempt_failed",
                job=job.name,
                job_id=job.job_id,
                attempts_made=job.attempts_made,
                exc_info=True,
            )
            return False
        return True

    def _finish(self, job: Job) -> None:
        if job.job_id is None:
            return
        key = (job.queue, job.job_id)
        self._live_ids.discard(key)
        self._finished_ids[key] = time.monotonic()
        self._finished_ids.move_to_end(key)
        while len(self._finished_ids) > self._keep_finished:
            self._finished_ids.popitem(last=False)

    def _forget_old_ids(self) -> None:
        horizon = time.monotonic() - self._keep_finished_seconds
        while self._finished_ids:
            key, finished_at = next(iter(self._finished_ids.items()))
            if finished_at > horizon:
                break
            del self._finished_ids[key]
