"""Spans of time as people read them on a bill: ``2 Dec – 2 Jan 2027`` and
``Pro, 2 Dec – 2 Jan 2027 (remaining 31 of 31 days)``. Locale-independent."""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["day_range", "share_description"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)
_LONG = timedelta(days=300)


def _day(value: datetime, *, year: bool) -> str:
    text = f"{value.day} {_MONTHS[value.month - 1]}"
    return f"{text} {value.year}" if year else text


def day_range(start: datetime, end: datetime) -> str:
    """``2 Dec – 2 Jan 2027``; the start's year too when the span is long enough to be
    misread without it (``2 Dec 2026 – 2 Dec 2027``)."""
    long_span = end - start >= _LONG
    return f"{_day(start, year=long_span)} – {_day(end, year=True)}"


def _count(span: timedelta) -> tuple[int, str]:
    if span >= 2 * _DAY:
        return round(span / _DAY), "days"
    return round(span / _HOUR), "hours"


def share_description(
    label: str, part: tuple[datetime, datetime], period: tuple[datetime, datetime]
) -> str:
    """A proration line: ``Pro, 2 Dec – 2 Jan 2027 (remaining 31 of 31 days)``."""
    total = period[1] - period[0]
    whole, unit = _count(total)
    scale = _DAY if unit == "days" else _HOUR
    share = round((part[1] - part[0]) / scale)
    verb = "remaining" if part[1] == period[1] else "used"
    return f"{label}, {day_range(*part)} ({verb} {share} of {whole} {unit})"
