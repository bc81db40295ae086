"""``kit.timestamps.query_instant``: the one reading of a query-string date filter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from novabilling.errors import FieldError, Invalid
from novabilling.kit.timestamps import query_instant


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
