"""Wire time: responses use UTC ISO 8601 with exactly 3 fractional digits and ``Z``;
requests take any ISO 8601 date or date-time (contract README §4)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer


def to_wire(value: datetime) -> str:
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_instant(value: Any) -> datetime:
    """Parse an ISO 8601 date or date-time into an aware UTC datetime (ValueError if not)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a valid ISO 8601 date string")
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError("must be a valid ISO 8601 date string") from exc
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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

InstantInput = Annotated[datetime, BeforeValidator(parse_instant)]
"""A request field that takes any ISO 8601 date or date-time."""
