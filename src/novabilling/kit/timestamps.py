"""Wire time: responses use UTC ISO 8601 with exactly 3 fractional digits and ``Z``;
requests take any ISO 8601 date or date-time (contract README §4) **between 2000-01-01 and
ten years from now** (issue 14, defects 5-6: a start date in year 1 made the billing engine
issue thousands of invoices; dates at the calendar's edges overflowed into 500s)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer

from novabilling.errors import Invalid
from novabilling.kit.clock import SystemClock

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
HORIZON_YEARS = 10
DATE_RANGE_TEXT = "an ISO 8601 date or date-time between 2000-01-01 and 10 years from now"
_INVALID = "must be a valid ISO 8601 date string"


def to_wire(value: datetime) -> str:
    """``2026-03-01T09:15:02.123Z``; four-digit years always (never ``1-01-01T...``:
    ``isoformat`` pads the year), milliseconds truncated. A naive value is taken as UTC."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def latest_accepted(now: datetime | None = None) -> datetime:
    """The far end of the accepted range: ten years after ``now``."""
    now = now or SystemClock().now()
    try:
        return now.replace(year=now.year + HORIZON_YEARS)
    except ValueError:  # 29 February
        return now.replace(year=now.year + HORIZON_YEARS, day=28)


def _parse(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("z", "Z")):
            text = text[:-1] + "+00:00"
        if len(text) == 10:
            day = date.fromisoformat(text)
            parsed = datetime(day.year, day.month, day.day)
        else:
            parsed = datetime.fromisoformat(text)
    else:
        raise ValueError(_INVALID)
    # far-edge offsets (0001-01-01T00:00:00+01:00) overflow when moved to UTC
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_instant(value: Any) -> datetime:
    """Parse an ISO 8601 date or date-time into an aware UTC datetime inside the accepted
    range (``ValueError`` otherwise: unparsable, or before 2000-01-01, or more than ten
    years ahead)."""
    try:
        instant = _parse(value)
    except OverflowError as exc:  # a real date, too close to the calendar's ends
        raise ValueError(f"must be {DATE_RANGE_TEXT}") from exc
    except (ValueError, TypeError) as exc:
        raise ValueError(_INVALID) from exc
    if not EARLIEST <= instant <= latest_accepted():
        raise ValueError(f"must be {DATE_RANGE_TEXT}")
    return instant


def query_instant(name: str, raw: str | None) -> datetime | None:
    """A query-string date filter (``dateFrom``, ``dateTo``): ``None`` when absent, else
    ``parse_instant``; anything it refuses is a 400 on ``name``."""
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except ValueError:
        raise Invalid(name, f"{name} {_INVALID}") from None


_OFFSET = re.compile(r"([+-])(\d+)([wdhms])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_when(value: str, *, now: datetime) -> datetime:
    """``now``, an offset from ``now`` (``+40d``, ``-1d``, ``+2h``, ``+30m``, ``+2w``,
    ``+90s``) or an ISO 8601 date / date-time (``parse_instant``); ValueError otherwise."""
    text = value.strip().lower()
    if text == "now":
        return now
    offset = _OFFSET.fullmatch(text)
    if offset is None:
        try:
            return parse_instant(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is neither an offset like +40d, +2h, -1d, +30m nor an ISO 8601 "
                "date or date-time"
            ) from None
    sign, amount, unit = offset.groups()
    delta = timedelta(**{_UNITS[unit]: int(amount)})
    return now + delta if sign == "+" else now - delta


WireTime = Annotated[datetime, PlainSerializer(to_wire, return_type=str)]
"""A datetime field serialised as ``2026-03-01T09:15:02.123Z``."""

InstantInput = Annotated[
    datetime,
    BeforeValidator(parse_instant),
    Field(description=f"{DATE_RANGE_TEXT[0].upper()}{DATE_RANGE_TEXT[1:]}."),
]
"""A request field that takes any ISO 8601 date or date-time in the accepted range."""
