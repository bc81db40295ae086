"""Background jobs: one ``JobQueue`` interface, two backends, and the after-commit buffer.

- ``novabilling.kit.jobs_inprocess.InProcessQueue``: embedded mode, asyncio tasks, no Redis.
- ``novabilling.kit.jobs_bullmq.BullMQQueue`` (producer) and ``run_worker`` (consumer).
- ``novabilling.runtime.attach_jobs`` picks one from the settings.

Delivery is at-least-once (STYLE convention 6): handlers get ids, reload, and must be safe to
run twice. The database is the truth (DESIGN rule 2): a lost job delays work, the scheduler
tick finds it again.

Dedup: ``job_id`` is a dedup key. Enqueueing an id that already exists (waiting, delayed,
active, or finished and still kept: completed 1 h / last 1000, failed 24 h / last 5000) is
a no-op. Ids that must be able to run again later should carry a time bucket
(``f"{tenant_id}:{minute}"``). Purely numeric ids are refused (BullMQ's own ids are numbers).

After-commit (STYLE convention 5)::

    async with job_buffer(queue) as buffer:      # session dependency / job runner
        ... service calls enqueue_after_commit(QUEUE_BILLING, "invoice.render_pdf", {...})
        await session.commit()
        await buffer.flush()                       # never raises; logs what it drops
    # an exception inside the block discards the buffered jobs (rollback)

Both runners wrap every handler call in such a buffer and flush it after the handler
returns, so a handler (which commits its own session) may call ``enqueue_after_commit``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)

QUEUE_BILLING = "billing"
QUEUE_PAYMENTS = "payments"
QUEUE_WEBHOOKS = "webhooks"
QUEUE_EMAILS = "emails"
ALL_QUEUES: tuple[str, ...] = (QUEUE_BILLING, QUEUE_PAYMENTS, QUEUE_WEBHOOKS, QUEUE_EMAILS)

DEFAULT_ATTEMPTS = 5


@dataclass
class Job:
    """What a handler receives. ``attempts_made`` counts earlier failed tries (0 on the
    first run); ``attempts`` is the total allowed, so the last try has
    ``attempts_made == attempts - 1``."""

    queue: str
    name: str
    data: dict[str, Any]
    job_id: str | None = None
    attempts_made: int = 0
    attempts: int = 1

    @property
    def is_last_attempt(self) -> bool:
        return self.attempts_made + 1 >= self.attempts


JobHandler = Callable[[Job], Awaitable[None]]
Forget = Callable[[list[str]], Awaitable[None]]  # deletes outbox rows by id
# (queue, job name) -> handler. A plain dict is fine: {("billing", "billing.tick"): tick}.
JobHandlers = Mapping[tuple[str, str], JobHandler]


class JobQueue(Protocol):
    async def enqueue(
        self,
        queue: str,
        name: str,
        data: dict[str, Any],
        *,
        job_id: str | None = None,
        delay_seconds: float = 0,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None: ...

    async def close(self) -> None: ...


async def enqueue_many(jobs: JobQueue, queue: str, batch: list[dict[str, Any]]) -> None:
    """Enqueue ``batch`` (dicts of ``name``, ``data``, optional ``job_id`` and
    ``delay_seconds``) in one call when
    the backend can (``BullMQQueue.enqueue_many``: one Redis pipeline), else one by one."""
    bulk = getattr(jobs, "enqueue_many", None)
    if bulk is not None:
        await bulk(queue, batch)
        return
    for job in batch:
        await jobs.enqueue(
            queue,
            job["name"],
            job["data"],
            job_id=job.get("job_id"),
            delay_seconds=float(job.get("delay_seconds") or 0),
        )


class PermanentJobError(Exception):
    """Raise from a handler to fail the job now, without the remaining retries."""


class UnknownJobError(PermanentJobError):
    """No handler is registered for (queue, name)."""


class NoJobBufferError(RuntimeError):
    """``enqueue_after_commit`` was called outside ``job_buffer(...)``."""


def check_enqueue_args(
    queue: str, name: str, data: dict[str, Any], job_id: str | None, attempts: int
) -> None:
    """Shared validation so embedded mode refuses what production would."""
    if not queue or not name:
        raise ValueError("queue and job name must be non-empty")
    if not isinstance(data, dict):
        raise TypeError("job data must be a dict")
    if job_id is not None and (not job_id or job_id.isdigit()):
        raise ValueError(f"job_id must be a non-empty, non-numeric string, got {job_id!r}")
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"job data for {name!r} must be JSON-serialisable: {exc}") from exc


def backoff_seconds(attempts_made: int, base_seconds: float) -> float:
    """Exponential backoff before retry number ``attempts_made`` (1-based), as BullMQ's
    ``{"type": "exponential"}``: base, 2*base, 4*base ..."""
    return base_seconds * (2 ** max(0, attempts_made - 1))


def find_handler(handlers: JobHandlers, job: Job) -> JobHandler:
    handler = handlers.get((job.queue, job.name))
    if handler is None:
        log.error("job.unknown", queue=job.queue, job=job.name, job_id=job.job_id)
        raise UnknownJobError(f"no handler for job {job.name!r} on queue {job.queue!r}")
    return handler


async def run_handler(handlers: JobHandlers, job: Job, *, queue: JobQueue) -> None:
    """Run one job the way both runners do: log context bound, inside a job buffer that is
    flushed (to ``queue``) only if the handler returns. Exceptions propagate."""
    handler = find_handler(handlers, job)
    context: dict[str, Any] = {"job": job.name, "job_id": job.job_id, "queue": job.queue}
    if "tenant_id" in job.data:
        context["tenant_id"] = job.data["tenant_id"]
    with structlog.contextvars.bound_contextvars(**context):
        async with job_buffer(queue) as buffer:
            await handler(job)
            await buffer.flush()


# ----------------------------------------------------------------------------------------
# After-commit buffer
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingJob:
    queue: str
    name: str
    data: dict[str, Any]
    job_id: str | None = None
    delay_seconds: float = 0
    attempts: int = DEFAULT_ATTEMPTS
    outbox_id: str | None = None  # its row in the tenant outbox, once staged (kit.outbox)

    def staged(self, outbox_id: str, job_id: str) -> PendingJob:
        return replace(self, outbox_id=outbox_id, job_id=job_id)


@dataclass
class JobBuffer:
    """Jobs collected during one unit of work, pushed after its commit. Jobs that a tenant
    session's commit wrote to its outbox (``kit.outbox``) have their rows deleted once
    pushed."""

    queue: JobQueue
    flush_timeout_seconds: float = 5.0
    pending: list[PendingJob] = field(default_factory=list)
    # outbox row id -> how to delete it once pushed (its tenant database's deleter)
    forget: dict[str, Forget] = field(default_factory=dict)

    def replace(self, old: list[PendingJob], new: list[PendingJob], *, forget: Forget) -> None:
        """``old`` jobs were staged in an outbox as ``new`` (same order)."""
        staged = {id(o): n for o, n in zip(old, new, strict=True)}
        self.pending = [staged.get(id(job), job) for job in self.pending]
        for job in new:
            if job.outbox_id is not None:
                self.forget[job.outbox_id] = forget

    def add(self, job: PendingJob) -> None:
        if job.job_id is not None and any(
            p.job_id == job.job_id and p.queue == job.queue for p in self.pending
        ):
            return
        self.pending.append(job)

    def discard(self) -> None:
        """Drop everything (the transaction rolled back)."""
        self.pending.clear()
        self.forget.clear()

    def drop_unstaged(self) -> None:
        """The unit of work in progress rolled back: drop the jobs it queued (not yet in
        an outbox), keep those of transactions that committed earlier in this buffer."""
        self.pending = [job for job in self.pending if job.outbox_id is not None]

    def drop_staged(self, outbox_ids: set[str]) -> None:
        """Jobs staged in a transaction that then rolled back: they never happened."""
        self.pending = [job for job in self.pending if job.outbox_id not in outbox_ids]
        for outbox_id in outbox_ids:
            self.forget.pop(outbox_id, None)

    async def flush_committed(self) -> None:
        """Push only the jobs whose outbox rows were committed; drop the rest (for a unit
        of work made of several transactions, some of which may have failed)."""
        self.pending = [job for job in self.pending if job.outbox_id is not None]
        await self.flush()

    async def flush(self) -> None:
        """Push every buffered job; call after the commit. Never raises: a job that cannot
        be pushed is logged and dropped (the DB is the truth; the scheduler finds the work
        again). The whole flush is bounded by ``flush_timeout_seconds``."""
        jobs, self.pending = self.pending, []
        forget, self.forget = self.forget, {}
        if not jobs:
            return
        pushed: list[PendingJob] = []
        failed: list[str] = []
        errors: list[str] = []
        remaining = list(jobs)
        try:
            async with asyncio.timeout(self.flush_timeout_seconds):
                while remaining:
                    job = remaining[0]
                    try:
                        await self.queue.enqueue(
                            job.queue,
                            job.name,
                            job.data,
                            job_id=job.job_id,
                            delay_seconds=job.delay_seconds,
                            attempts=job.attempts,
                        )
                    except Exception as exc:  # noqa: BLE001 - must not fail the request
                        failed.append(job.name)
                        errors.append(repr(exc))
                    else:
                        pushed.append(job)
                    remaining.pop(0)
                await _forget_relayed(pushed, forget)
        except TimeoutError:
            failed.extend(job.name for job in remaining)
            errors.append("flush timed out")
        if failed:
            log.warning(
                "jobs.flush_failed",
                dropped=failed,
                errors=errors[:3],
                hint="the scheduler will find the work again from DB state",
            )


async def _forget_relayed(pushed: list[PendingJob], forget: dict[str, Forget]) -> None:
    """Delete the outbox rows of pushed jobs, one statement per tenant database. A row
    left behind (database gone meanwhile) is relayed again later: a dedup no-op."""
    groups: dict[int, tuple[Forget, list[str]]] = {}
    for job in pushed:
        if job.outbox_id is not None and job.outbox_id in forget:
            deleter = forget[job.outbox_id]
            groups.setdefault(id(deleter), (deleter, []))[1].append(job.outbox_id)
    for deleter, ids in groups.values():
        try:
            await deleter(ids)
        except Exception as exc:  # noqa: BLE001 - the rows are relayed again, deduplicated
            log.warning("outbox.forget_failed", rows=len(ids), error=repr(exc))


_current_buffer: ContextVar[JobBuffer | None] = ContextVar("nb_job_buffer", default=None)


def current_job_buffer() -> JobBuffer | None:
    return _current_buffer.get()


def enqueue_after_commit(
    queue: str,
    name: str,
    data: dict[str, Any],
    *,
    job_id: str | None = None,
    delay_seconds: float = 0,
    attempts: int = DEFAULT_ATTEMPTS,
) -> None:
    """Queue a job to be pushed after the current unit of work commits."""
    buffer = _current_buffer.get()
    if buffer is None:
        raise NoJobBufferError(
            f"enqueue_after_commit({name!r}) outside job_buffer(): open one in the session "
            "dependency / job runner (STYLE convention 5)"
        )
    check_enqueue_args(queue, name, data, job_id, attempts)
    buffer.add(
        PendingJob(
            queue=queue,
            name=name,
            data=data,
            job_id=job_id,
            delay_seconds=delay_seconds,
            attempts=attempts,
        )
    )


@asynccontextmanager
async def job_buffer(
    queue: JobQueue, *, flush_timeout_seconds: float = 5.0
) -> AsyncIterator[JobBuffer]:
    """Open a buffer for this context. On an exception the buffered jobs are discarded;
    jobs still unflushed at a normal exit are discarded with a warning (flush is explicit,
    after the commit)."""
    buffer = JobBuffer(queue=queue, flush_timeout_seconds=flush_timeout_seconds)
    previous = _current_buffer.get()
    token = _current_buffer.set(buffer)
    try:
        yield buffer
    except BaseException:
        buffer.discard()
        raise
    else:
        if buffer.pending:
            log.warning("jobs.buffer_not_flushed", dropped=[p.name for p in buffer.pending])
            buffer.discard()
    finally:
        try:
            _current_buffer.reset(token)
        except ValueError:  # exited in another context (e.g. framework teardown)
            _current_buffer.set(previous)
