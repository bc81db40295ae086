"""The transactional outbox: jobs that must follow a commit are written in that commit.

Services queue side effects with ``kit.jobs.enqueue_after_commit`` (e-mails, webhooks,
charges). On a tenant database session (``outbox_sessionmaker``) the commit first writes
the unit of work's buffered jobs into the tenant's ``outbox`` table - same transaction as
the rows they are about - and the buffer's ``flush`` after the commit pushes them to the
queue and deletes their rows. A crash between the commit and the push leaves the rows;
the billing tick relays every row older than ``STALE_AFTER`` (``relay_stale``). A job is
therefore pushed at least once; its dedup id (a row without one gets ``outbox:<row id>``)
makes a second push of the same row a no-op while the queue remembers the first, and the
handlers are safe to run twice. Exactly-once effects still rest on unique keys.

Central-database work (sign-up e-mails) has no outbox: its buffer is pushed after the
commit only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import JSON, Float, Index, Integer, String, Table, delete, event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, mapped_column

from novabilling.kit.clock import SystemClock
from novabilling.kit.db import TenantBase
from novabilling.kit.ids import new_id
from novabilling.kit.jobs import JobQueue, PendingJob, current_job_buffer

__all__ = [
    "STALE_AFTER",
    "OutboxMessage",
    "OutboxSession",
    "outbox_sessionmaker",
    "relay_stale",
]

log = structlog.get_logger(__name__)

STALE_AFTER = timedelta(seconds=60)
RELAY_BATCH = 500
_FORGET_KEY = "nb_outbox_forget"
_STAGED_KEY = "nb_outbox_staged"  # row ids staged in the transaction in progress
_SYSTEM = SystemClock()  # operational time: when a row was written, not billing time


class OutboxMessage(TenantBase):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    job_id: Mapped[str] = mapped_column(String(255))
    delay_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


_TABLE = cast(Table, OutboxMessage.__table__)


class OutboxSession(Session):
    """A tenant database session whose commit writes the buffered jobs to the outbox."""


@event.listens_for(OutboxSession, "before_commit")
def _stage(session: Session) -> None:
    buffer = current_job_buffer()
    if buffer is None:
        return
    fresh = [job for job in buffer.pending if job.outbox_id is None]
    if not fresh:
        return
    now = _SYSTEM.now()
    staged: list[PendingJob] = []
    rows = []
    for job in fresh:
        row_id = new_id()
        staged.append(job.staged(row_id, job.job_id or f"outbox:{row_id}"))
        rows.append(
            {
                "id": row_id,
                "queue": job.queue,
                "name": job.name,
                "data": job.data,
                "job_id": staged[-1].job_id,
                "delay_seconds": job.delay_seconds,
                "attempts": job.attempts,
                "created_at": now,
            }
        )
    session.execute(_TABLE.insert(), rows)  # runs in the async session's greenlet
    buffer.replace(fresh, staged, forget=session.info[_FORGET_KEY])
    session.info.setdefault(_STAGED_KEY, set()).update(row["id"] for row in rows)


@event.listens_for(OutboxSession, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(_STAGED_KEY, None)


@event.listens_for(OutboxSession, "after_rollback")
def _rolled_back(session: Session) -> None:
    """The commit failed after staging (or the transaction was rolled back): its rows do
    not exist, so neither do its jobs."""
    staged = session.info.pop(_STAGED_KEY, None)
    buffer = current_job_buffer()
    if staged and buffer is not None:
        buffer.drop_staged(staged)


def outbox_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on a tenant database whose commits stage the buffered jobs."""

    async def forget(ids: list[str]) -> None:
        """Drop outbox rows whose jobs reached the queue."""
        async with engine.begin() as connection:
            await connection.execute(delete(_TABLE).where(_TABLE.c.id.in_(ids)))

    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        sync_session_class=OutboxSession,
        info={_FORGET_KEY: forget},
    )


async def relay_stale(
    maker: async_sessionmaker[AsyncSession], queue: JobQueue, *, now: datetime | None = None
) -> int:
    """Push outbox rows older than ``STALE_AFTER`` (their unit of work's own push never
    happened: the process died after the commit), then delete them. Returns how many."""
    cutoff = (now or _SYSTEM.now()) - STALE_AFTER
    async with maker() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.created_at <= cutoff)
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
                .limit(RELAY_BATCH)
            )
        ).all()
        pushed = []
        for row in rows:
            try:
                await queue.enqueue(
                    row.queue,
                    row.name,
                    dict(row.data),
                    job_id=row.job_id,
                    delay_seconds=row.delay_seconds,
                    attempts=row.attempts,
                )
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                log.warning("outbox.relay_failed", job=row.name, error=repr(exc))
                break
            pushed.append(row.id)
        if pushed:
            await session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(pushed)))
            await session.commit()
    if pushed:
        log.warning("outbox.relayed_stale", count=len(pushed))
    return len(pushed)
