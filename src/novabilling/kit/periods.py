"""Billing periods: where the n-th period of a subscription starts and ends.

Every boundary is computed FROM THE ORIGINAL ANCHOR, never from the previous boundary, so
month ends do not drift: a Jan 31 anchor gives Feb 28 (29 in leap years), Mar 31, Apr 30,
May 31 ... Calendar intervals (MONTHLY, QUARTERLY, YEARLY) keep the anchor's time of day
and clamp its day to the target month's length (Feb 29 + 1 year -> Feb 28, + 4 years ->
Feb 29). HOURLY, DAILY and WEEKLY are exact multiples of 1 h, 24 h and 7 x 24 h in UTC.

Boundary ``k`` is ``period_end(anchor, interval, k)``; period ``k`` is
``[boundary(k), boundary(k + 1))``. Index 0 is the period starting at the anchor; negative
indices are periods before it. All datetimes must be tz-aware; results are UTC.

Typical engine use::

    index = index_at(anchor, interval, clock.now())
    start, end = period_bounds(anchor, interval, index)
    next_start, next_end = next_period(anchor, interval, end)
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from enum import StrEnum

__all__ = [
    "Interval",
    "index_at",
    "next_period",
    "parse_interval",
    "period_bounds",
    "period_end",
]


class Interval(StrEnum):
    """``billingInterval`` values of the contract (plans.md)."""

    HOURLY = "HOURLY"
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"
    YEARLY = "YEARLY"


_FIXED: dict[Interval, timedelta] = {
    Interval.HOURLY: timedelta(hours=1),
    Interval.DAILY: timedelta(days=1),
    Interval.WEEKLY: timedelta(weeks=1),
}
_MONTHS: dict[Interval, int] = {
    Interval.MONTHLY: 1,
    Interval.QUARTERLY: 3,
    Interval.YEARLY: 12,
}


def parse_interval(value: str) -> Interval:
    """The ``Interval`` named by ``value`` (exact contract spelling) or ValueError."""
    try:
        return Interval(value)
    except ValueError:
        allowed = ", ".join(i.value for i in Interval)
        raise ValueError(f"unknown billing interval {value!r}; expected one of {allowed}") from None


def _utc(instant: datetime, name: str) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {instant.isoformat()}")
    return instant.astimezone(UTC)


def _add_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` moved by ``months`` calendar months, day clamped to the month's length."""
    total = anchor.year * 12 + (anchor.month - 1) + months
    year, month0 = divmod(total, 12)
    month = month0 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_end(anchor: datetime, interval: str, n: int = 1) -> datetime:
    """The ``n``-th boundary after ``anchor`` (``n`` may be 0 or negative), in UTC.

    ``period_end(jan31, "MONTHLY", 1) == feb28``; ``period_end(jan31, "MONTHLY", 2) == mar31``.
    Raises ValueError for a naive ``anchor``, an unknown interval or a year out of range.
    """
    start = _utc(anchor, "anchor")
    kind = parse_interval(interval)
    if kind in _FIXED:
        return start + _FIXED[kind] * n
    return _add_months(start, _MONTHS[kind] * n)


def period_bounds(anchor: datetime, interval: str, index: int) -> tuple[datetime, datetime]:
    """``(start, end)`` of period ``index``: ``[boundary(index), boundary(index + 1))``."""
    return period_end(anchor, interval, index), period_end(anchor, interval, index + 1)


def index_at(anchor: datetime, interval: str, instant: datetime) -> int:
    """Index of the period containing ``instant`` (start inclusive, end exclusive).

    Negative when ``instant`` is before ``anchor``. Consistent with ``period_bounds``:
    ``start <= instant < end`` for ``start, end = period_bounds(anchor, interval, i)``.
    """
    start = _utc(anchor, "anchor")
    at = _utc(instant, "instant")
    kind = parse_interval(interval)
    if kind in _FIXED:
        return (at - start) // _FIXED[kind]
    step = _MONTHS[kind]
    months = (at.year - start.year) * 12 + (at.month - start.month)
    index = months // step
    # The estimate is off by at most one because of day/time within the month.
    while period_end(start, kind, index) > at:
        index -= 1
    while period_end(start, kind, index + 1) <= at:
        index += 1
    return index


def next_period(
    anchor: datetime, interval: str, current_end: datetime
) -> tuple[datetime, datetime]:
    """The period that starts at ``current_end``, which must be a boundary of ``anchor``.

    Raises ValueError when ``current_end`` is not on the anchor's schedule (for example a
    period end that was edited by hand); the caller then re-anchors explicitly.
    """
    end = _utc(current_end, "current_end")
    index = index_at(anchor, interval, end)
    start, next_end = period_bounds(anchor, interval, index)
    if start != end:
        raise ValueError(
            f"current_end {end.isoformat()} is not a {interval} boundary of anchor "
            f"{_utc(anchor, 'anchor').isoformat()}"
        )
    return start, next_end
