"""The one source of time. ``datetime.now()`` is called nowhere else (STYLE §3.12).

A process has one clock, ``runtime.clock`` (``SystemClock`` unless told otherwise);
services take it as an argument. ``FixedClock`` is time frozen at an instant (``billing
run --at``); tests move a ``TestClock`` by hand. There is no process-global clock and no
``now()`` default on any column.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


class FixedClock:
    """Time frozen at one instant (always tz-aware UTC)."""

    def __init__(self, instant: datetime) -> None:
        self._now = _utc(instant)

    def now(self) -> datetime:
        return self._now


class TestClock(FixedClock):
    """A clock tests move by hand."""

    __test__ = False  # not a pytest class

    def set(self, instant: datetime) -> None:
        self._now = _utc(instant)

    def advance(self, delta: timedelta) -> datetime:
        self._now = self._now + delta
        return self._now
