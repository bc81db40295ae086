"""BullMQ backend: ``BullMQQueue`` (producer, used by API processes) and ``run_worker``
(consumer, ``novabilling worker``). Keys live under ``{prefix}:{queue}:*``.

Job options: ``attempts`` tries with ``{"type": "exponential", "delay": backoff}``;
finished jobs are kept bounded (completed: 1 h / last 1000; failed: 24 h / last 5000) so
Redis does not grow, and ``job_id`` dedups for as long as the job is kept.

Worker settings (crash recovery is BullMQ's own):
- ``lockDuration`` 30 s: a running job holds a lock renewed every 15 s (``lockRenewTime``).
- ``stalledInterval`` 30 s: every worker checks for jobs whose lock expired (their worker
  died) and moves them back to wait.
- ``maxStalledCount`` 2: a job found stalled a third time goes to failed — handlers are
  idempotent, so re-running a job whose worker died is safe.
So a job whose worker was SIGKILLed runs again within ~30-60 s.

Graceful stop: when ``stop`` is set every worker stops fetching, the jobs already running
finish (their results are recorded), then connections close.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from bullmq import Job as BullJob
from bullmq import Queue, UnrecoverableError, Worker
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from novabilling.kit.jobs import (
    DEFAULT_ATTEMPTS,
    Job,
    JobHandlers,
    PermanentJobError,
    check_enqueue_args,
    run_handler,
)

log = structlog.get_logger(__name__)

KEEP_COMPLETED: dict[str, int] = {"age": 3600, "count": 1000}
KEEP_FAILED: dict[str, int] = {"age": 24 * 3600, "count": 5000}
WORKER_SETTINGS: dict[str, int] = {
    "lockDuration": 30_000,
    "stalledInterval": 30_000,
    "maxStalledCount": 2,
    "drainDelay": 5,  # seconds a worker blocks waiting for jobs (bounds stop latency)
}


def _producer_client(redis_url: str) -> Redis:
    """Short timeouts and few retries: an API request must not hang on a dead Redis
    (bullmq's default client retries for minutes)."""
    return Redis.from_url(
        redis_url,
        decode_responses=True,  # bullmq expects str replies
        socket_connect_timeout=1.0,
        socket_timeout=3.0,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
    )


class BullMQQueue:
    """Producer. One ``bullmq.Queue`` per queue name, created on first use."""

    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str = "nb",
        backoff_base_seconds: float = 5.0,
    ) -> None:
        self._redis_url = redis_url
        self._prefix = prefix
        self._backoff_ms = int(backoff_base_seconds * 1000)
        self._queues: dict[str, Queue] = {}

    def bullmq_queue(self, queue: str) -> Queue:
        existing = self._queues.get(queue)
        if existing is None:
            existing = Queue(
                queue,
                {"prefix": self._prefix, "connection": _producer_client(self._redis_url)},
            )
            self._queues[queue] = existing
        return existing

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
        check_enqueue_args(queue, name, data, job_id, attempts)
        opts = self._options(attempts)
        if job_id is not None:
            opts["jobId"] = job_id
        if delay_seconds > 0:
            opts["delay"] = int(delay_seconds * 1000)
        await self.bullmq_queue(queue).add(name, data, opts)  # type: ignore[arg-type]

    async def enqueue_many(self, queue: str, batch: list[dict[str, Any]]) -> None:
        """One ``addBulk`` (one Redis round trip) for many jobs with default options (and an
        optional ``delay_seconds`` each)."""
        jobs: list[dict[str, Any]] = []
        for job in batch:
            check_enqueue_args(queue, job["name"], job["data"], job.get("job_id"), DEFAULT_ATTEMPTS)
            opts = self._options(DEFAULT_ATTEMPTS)
            if job.get("job_id") is not None:
                opts["jobId"] = job["job_id"]
            if job.get("delay_seconds"):
                opts["delay"] = int(float(job["delay_seconds"]) * 1000)
            jobs.append({"name": job["name"], "data": job["data"], "opts": opts})
        await self.bullmq_queue(queue).addBulk(jobs)  # type: ignore[arg-type]

    def _options(self, attempts: int) -> dict[str, Any]:
        return {
            "attempts": attempts,
            "backoff": {"type": "exponential", "delay": self._backoff_ms},
            "removeOnComplete": KEEP_COMPLETED,
            "removeOnFail": KEEP_FAILED,
        }

    async def close(self) -> None:
        queues, self._queues = list(self._queues.values()), {}
        for queue in queues:
            try:
                await queue.close()
            except Exception as exc:  # noqa: BLE001 - closing must not fail shutdown
                log.warning("jobs.queue_close_failed", queue=queue.name, error=repr(exc))


def _to_job(queue: str, bull_job: BullJob) -> Job:
    data = bull_job.data if isinstance(bull_job.data, dict) else {}
    return Job(
        queue=queue,
        name=bull_job.name,
        data=data,
        job_id=str(bull_job.id) if bull_job.id is not None else None,
        attempts_made=int(bull_job.attemptsMade or 0),
        attempts=int(bull_job.opts.get("attempts") or 1),
    )


def _processor(
    queue: str, handlers: JobHandlers, producer: BullMQQueue
) -> Callable[[BullJob, str], Awaitable[None]]:
    async def process(bull_job: BullJob, token: str) -> None:
        job = _to_job(queue, bull_job)
        try:
            await run_handler(handlers, job, queue=producer)
        except PermanentJobError as exc:
            log.error("job.failed_permanently", job=job.name, job_id=job.job_id, error=repr(exc))
            raise UnrecoverableError(str(exc)) from exc
        except Exception:
            log.warning(
                "job.attempt_failed",
                job=job.name,
                job_id=job.job_id,
                queue=queue,
                attempts_made=job.attempts_made,
                attempts=job.attempts,
                final=job.is_last_attempt,
                exc_info=True,
            )
            raise

    return process


async def run_worker(
    redis_url: str,
    handlers: JobHandlers,
    *,
    queues: Sequence[str],
    concurrency: int,
    stop: asyncio.Event,
    prefix: str = "nb",
    worker_settings: dict[str, int] | None = None,
) -> None:
    """Consume ``queues`` until ``stop`` is set, then stop fetching, let running jobs
    finish, and close. ``concurrency`` is per queue. Jobs enqueued by handlers (through
    ``enqueue_after_commit``) are pushed with the same prefix."""
    if not queues:
        raise ValueError("run_worker needs at least one queue")
    settings = {**WORKER_SETTINGS, **(worker_settings or {})}
    producer = BullMQQueue(redis_url, prefix=prefix)
    workers: list[Worker] = []
    runs: list[asyncio.Task[Any]] = []
    try:
        for queue in queues:
            worker = Worker(
                queue,
                _processor(queue, handlers, producer),
                {
                    "prefix": prefix,
                    "connection": redis_url,
                    "concurrency": concurrency,
                    "autorun": False,
                    **settings,  # type: ignore[typeddict-item]
                },
            )
            worker.on("error", _log_worker_error(queue))
            workers.append(worker)
            runs.append(asyncio.create_task(worker.run(), name=f"bullmq-worker:{queue}"))
        log.info("worker.started", queues=list(queues), concurrency=concurrency, prefix=prefix)
        stop_wait = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stop_wait, *runs], return_when=asyncio.FIRST_COMPLETED)
        if stop_wait not in done:
            stop_wait.cancel()
            log.error("worker.loop_exited", queues=list(queues))
        log.info("worker.stopping", queues=list(queues))
    finally:
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        await asyncio.gather(*runs, return_exceptions=True)
        await producer.close()
        log.info("worker.stopped", queues=list(queues))


def _log_worker_error(queue: str) -> Callable[..., None]:
    def on_error(error: BaseException, *_args: Any) -> None:
        log.warning("worker.error", queue=queue, error=repr(error))

    return on_error


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM / SIGINT set ``stop`` (graceful shutdown). Call from inside the loop."""
    loop = asyncio.get_running_loop()

    def request_stop(signum: int) -> None:
        log.info("worker.signal", signal=signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, request_stop, signum)
        except (NotImplementedError, RuntimeError):  # e.g. Windows, non-main thread
            signal.signal(signum, lambda num, _frame: loop.call_soon_threadsafe(stop.set))
