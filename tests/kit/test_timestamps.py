"""``kit.timestamps.query_instant``: the one reading of a query-string date filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novabilling.errors import FieldError, Invalid
from novabilling.kit.timestamps import query_instant, to_wire


def test_absent_is_none_and_a_date_is_midnight_utc() -> None:
    assert query_instant("dateFrom", None) is None
    assert query_instant("dateFrom", "2026-02-01") == datetime(2026, 2, 1, tzinfo=UTC)
    assert query_instant("dateTo", "2026-02-01T10:00:00+02:00") == datetime(
        2026, 2, 1, 8, tzinfo=UTC
    )


@pytest.mark.parametrize("raw", ["", "x", "2026-13-01", "1999-12-31", "9999-12-31"])
def test_unparsable_or_out_of_range_names_the_parameter(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        query_instant("dateTo", raw)
    assert caught.value.errors == [
        FieldError(field="dateTo", message="dateTo must be a valid ISO 8601 date string")
    ]


def _reference_wire(value: datetime) -> str:
    """The wire form spelled out field by field (contract README §4)."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}."
        f"{value.microsecond // 1000:03d}Z"
    )


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.one_of(
            st.none(),
            st.just(UTC),
            st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
        ),
    )
)
def test_to_wire_is_utc_milliseconds_and_z(value: datetime) -> None:
    wire = to_wire(value)
    assert wire == _reference_wire(value)
    assert len(wire) == 24 and wire.endswith("Z")


def test_to_wire_examples() -> None:
    assert to_wire(datetime(2026, 3, 1, 9, 15, 2, 123999, tzinfo=UTC)) == "2026-03-01T09:15:02.123Z"
    assert to_wire(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000Z"
    plus3 = timezone(timedelta(hours=3))
    assert to_wire(datetime(2026, 1, 1, 2, 0, tzinfo=plus3)) == "2025-12-31T23:00:00.000Z"
    assert to_wire(datetime(2026, 1, 1, 2, 0)) == "2026-01-01T02:00:00.000Z"  # naive: UTC
