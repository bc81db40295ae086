"""Invoice numbers: ``INV-`` + a per-tenant sequence zero-padded to 5 digits.

The sequence lives in one ``invoice_counters`` row, bumped with
``UPDATE ... SET value = value + 1 RETURNING value`` inside the transaction that inserts
the invoice. On PostgreSQL the update holds the row lock until commit, so concurrent
transactions take numbers one after another; a rollback returns its number (gapless).
SQLite serialises writers anyway. Take the number as late as possible in a transaction so
the lock is held briefly.

A caller-supplied ``INV-<digits>`` number (import) moves the counter forward when it is
ahead, so generated numbers never collide with imported ones (the contract's "next =
last + 1").
"""

from __future__ import annotations

import re

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.invoices.models import InvoiceCounter

COUNTER = "invoice"
_NUMBER = re.compile(r"INV-(\d{1,15})")


def format_number(sequence: int) -> str:
    """``INV-00001`` ... ``INV-99999``, ``INV-100000``."""
    return f"INV-{sequence:05d}"


def parse_sequence(number: str) -> int | None:
    """The sequence of an ``INV-<digits>`` number, else None."""
    match = _NUMBER.fullmatch(number)
    return int(match.group(1)) if match else None


async def _ensure_row(session: AsyncSession) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(InvoiceCounter).values(name=COUNTER, value=0).on_conflict_do_nothing()
    await session.execute(stmt)


async def next_number(session: AsyncSession) -> str:
    """The next number of the sequence (row locked until commit)."""
    return format_number(await reserve(session, 1))


async def reserve(session: AsyncSession, count: int) -> int:
    """Bump the tenant counter by ``count`` (row locked until commit); returns the first
    of the ``count`` consecutive sequence values now taken."""
    stmt = (
        update(InvoiceCounter)
        .where(InvoiceCounter.name == COUNTER)
        .values(value=InvoiceCounter.value + count)
        .returning(InvoiceCounter.value)
        .execution_options(synchronize_session=False)
    )
    value = (await session.execute(stmt)).scalar_one_or_none()
    if value is None:
        await _ensure_row(session)
        value = (await session.execute(stmt)).scalar_one()
    return int(value) - count + 1


async def note_supplied(session: AsyncSession, number: str) -> None:
    """Move the counter up to an imported ``INV-<n>`` number when it is ahead."""
    sequence = parse_sequence(number)
    if sequence is None:
        return
    await _ensure_row(session)
    await session.execute(
        update(InvoiceCounter)
        .where(InvoiceCounter.name == COUNTER, InvoiceCounter.value < sequence)
        .values(value=sequence)
        .execution_options(synchronize_session=False)
    )
