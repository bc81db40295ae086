"""Test clocks: create, read, move and delete the clock rows, and the clock an attached
customer lives on. What advancing means for billing (the tick run for the clock's
customers) is the billing engine's part (``billing.test_clocks``).

A clock's time moves forward only, at most ``MAX_ADVANCE_YEARS`` per advance. While an
advance runs the clock is ``advancing`` and a second advance is refused (409); an
advance that died with its process stops counting as running after ``STALE_ADVANCE``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from novabilling.errors import Conflict, Invalid, NotFound
from novabilling.kit.clock import Clock, FixedClock
from novabilling.kit.pagination import paginate
from novabilling.kit.periods import period_end
from novabilling.testclocks.models import ADVANCING, READY, TestClockRow
from novabilling.testclocks.schemas import TestClockCreate

log = structlog.get_logger(__name__)

MAX_ADVANCE_YEARS = 2
STALE_ADVANCE = timedelta(minutes=10)
FIELD = "testClockId"


async def create_clock(
    session: AsyncSession, *, body: TestClockCreate, clock: Clock
) -> TestClockRow:
    now = clock.now()
    row = TestClockRow(
        name=body.name, frozen_time=body.frozen_time, status=READY, created_at=now, updated_at=now
    )
    session.add(row)
    await session.flush()
    log.info("test_clock.created", test_clock_id=row.id)
    return row


async def get_clock(
    session: AsyncSession, clock_id: str, *, for_update: bool = False
) -> TestClockRow:
    stmt = select(TestClockRow).where(TestClockRow.id == clock_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = await session.scalar(stmt)
    if row is None:
        raise NotFound("Test clock not found")
    return row


async def clocks_page(
    session: AsyncSession, *, page: int, limit: int
) -> tuple[list[TestClockRow], int]:
    return await paginate(session, select(TestClockRow), page, limit)


async def attachable(connection: AsyncConnection, clock_id: str) -> FixedClock:
    """The time of the clock a new customer is attached to (``testClockId`` of a create
    body): 400 naming the field when there is no such clock."""
    frozen = await connection.scalar(
        select(TestClockRow.frozen_time).where(TestClockRow.id == clock_id)
    )
    if frozen is None:
        raise Invalid(FIELD, f"{FIELD} {clock_id} does not exist")
    return FixedClock(frozen)


def _latest(frozen: datetime) -> datetime:
    return period_end(frozen, "YEARLY", MAX_ADVANCE_YEARS)


async def begin_advance(
    session: AsyncSession, clock_id: str, *, target: datetime, clock: Clock
) -> tuple[TestClockRow, datetime]:
    """Check ``target`` (after the clock's time, at most two years later) and mark the
    clock advancing; returns it and the time it starts from. Flushes; the caller commits
    before running the ticks."""
    row = await get_clock(session, clock_id, for_update=True)
    now = clock.now()
    if row.status == ADVANCING and row.updated_at > now - STALE_ADVANCE:
        raise Conflict("Test clock is already advancing")
    if target <= row.frozen_time:
        raise Invalid("frozenTime", "frozenTime must be after the clock's current frozenTime")
    if target > _latest(row.frozen_time):
        raise Invalid(
            "frozenTime",
            f"frozenTime must be at most {MAX_ADVANCE_YEARS} years after the clock's "
            "current frozenTime",
        )
    row.status = ADVANCING
    row.updated_at = now
    await session.flush()
    return row, row.frozen_time


async def move(
    session: AsyncSession, clock_id: str, *, at: datetime, clock: Clock, done: bool = False
) -> TestClockRow:
    """Set the clock's time to ``at`` (each step of an advance; ``done``: ready again)."""
    row = await get_clock(session, clock_id, for_update=True)
    row.frozen_time = max(row.frozen_time, at)
    row.updated_at = clock.now()
    if done:
        row.status = READY
        log.info("test_clock.advanced", test_clock_id=clock_id, frozen_time=at.isoformat())
    await session.flush()
    return row


async def delete_clock(session: AsyncSession, row: TestClockRow) -> None:
    """The clock row only (its customers are deleted first by the billing engine)."""
    await session.delete(row)
    await session.flush()
    log.info("test_clock.deleted", test_clock_id=row.id)
