from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novabilling.kit.periods import (
    Interval,
    index_at,
    next_period,
    parse_interval,
    period_bounds,
    period_end,
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_interval_values_match_contract() -> None:
    assert [i.value for i in Interval] == [
        "HOURLY",
        "DAILY",
        "WEEKLY",
        "MONTHLY",
        "QUARTERLY",
        "YEARLY",
    ]
    assert parse_interval("MONTHLY") is Interval.MONTHLY
    for bad in ["monthly", "BIWEEKLY", ""]:
        with pytest.raises(ValueError):
            parse_interval(bad)


def test_monthly_from_jan_31_never_drifts() -> None:
    anchor = utc(2025, 1, 31, 10, 30)
    ends = [period_end(anchor, "MONTHLY", n) for n in range(1, 13)]
    assert ends == [
        utc(2025, 2, 28, 10, 30),
        utc(2025, 3, 31, 10, 30),
        utc(2025, 4, 30, 10, 30),
        utc(2025, 5, 31, 10, 30),
        utc(2025, 6, 30, 10, 30),
        utc(2025, 7, 31, 10, 30),
        utc(2025, 8, 31, 10, 30),
        utc(2025, 9, 30, 10, 30),
        utc(2025, 10, 31, 10, 30),
        utc(2025, 11, 30, 10, 30),
        utc(2025, 12, 31, 10, 30),
        utc(2026, 1, 31, 10, 30),
    ]


def test_monthly_leap_year_february() -> None:
    assert period_end(utc(2024, 1, 31), "MONTHLY") == utc(2024, 2, 29)
    assert period_end(utc(2024, 1, 30), "MONTHLY") == utc(2024, 2, 29)
    assert period_end(utc(2023, 1, 29), "MONTHLY") == utc(2023, 2, 28)


def test_aug_31_quarterly_and_monthly() -> None:
    anchor = utc(2025, 8, 31)
    assert period_end(anchor, "MONTHLY") == utc(2025, 9, 30)
    assert period_end(anchor, "MONTHLY", 2) == utc(2025, 10, 31)
    assert period_end(anchor, "QUARTERLY") == utc(2025, 11, 30)
    assert period_end(anchor, "QUARTERLY", 2) == utc(2026, 2, 28)
    assert period_end(anchor, "QUARTERLY", 3) == utc(2026, 5, 31)


def test_feb_29_anchor() -> None:
    anchor = utc(2024, 2, 29, 12)
    assert period_end(anchor, "YEARLY") == utc(2025, 2, 28, 12)
    assert period_end(anchor, "YEARLY", 3) == utc(2027, 2, 28, 12)
    assert period_end(anchor, "YEARLY", 4) == utc(2028, 2, 29, 12)
    assert period_end(anchor, "MONTHLY") == utc(2024, 3, 29, 12)
    assert period_end(anchor, "MONTHLY", 12) == utc(2025, 2, 28, 12)
    assert period_end(anchor, "MONTHLY", -1) == utc(2024, 1, 29, 12)


def test_fixed_intervals() -> None:
    anchor = utc(2025, 3, 1, 23, 45)
    assert period_end(anchor, "HOURLY") == utc(2025, 3, 2, 0, 45)
    assert period_end(anchor, "DAILY", 3) == utc(2025, 3, 4, 23, 45)
    assert period_end(anchor, "WEEKLY", 2) == utc(2025, 3, 15, 23, 45)
    assert period_end(anchor, "WEEKLY", 0) == anchor
    assert period_end(anchor, Interval.DAILY, -1) == utc(2025, 2, 28, 23, 45)


def test_naive_rejected_and_other_offsets_normalised_to_utc() -> None:
    with pytest.raises(ValueError):
        period_end(datetime(2025, 1, 1), "MONTHLY")
    with pytest.raises(ValueError):
        index_at(utc(2025, 1, 1), "MONTHLY", datetime(2025, 2, 1))
    lagos = timezone(timedelta(hours=1))
    # 2025-02-01T00:30+01:00 is 2025-01-31T23:30Z: the anchor is Jan 31 in UTC.
    end = period_end(datetime(2025, 2, 1, 0, 30, tzinfo=lagos), "MONTHLY")
    assert end == utc(2025, 2, 28, 23, 30)
    assert end.tzinfo is UTC


def test_period_bounds_and_index_at_examples() -> None:
    anchor = utc(2025, 1, 31)
    assert period_bounds(anchor, "MONTHLY", 0) == (anchor, utc(2025, 2, 28))
    assert period_bounds(anchor, "MONTHLY", 2) == (utc(2025, 3, 31), utc(2025, 4, 30))
    assert index_at(anchor, "MONTHLY", anchor) == 0
    assert index_at(anchor, "MONTHLY", utc(2025, 2, 27, 23, 59, 59)) == 0
    assert index_at(anchor, "MONTHLY", utc(2025, 2, 28)) == 1
    assert index_at(anchor, "MONTHLY", utc(2025, 3, 30)) == 1
    assert index_at(anchor, "MONTHLY", utc(2025, 3, 31)) == 2
    assert index_at(anchor, "MONTHLY", utc(2025, 1, 30)) == -1
    assert index_at(anchor, "HOURLY", anchor + timedelta(minutes=59)) == 0
    assert index_at(anchor, "HOURLY", anchor - timedelta(microseconds=1)) == -1


def test_next_period_walks_the_schedule() -> None:
    anchor = utc(2025, 1, 31)
    start, end = period_bounds(anchor, "MONTHLY", 0)
    seen = []
    for _ in range(4):
        start, end = next_period(anchor, "MONTHLY", end)
        seen.append((start.date().isoformat(), end.date().isoformat()))
    assert seen == [
        ("2025-02-28", "2025-03-31"),
        ("2025-03-31", "2025-04-30"),
        ("2025-04-30", "2025-05-31"),
        ("2025-05-31", "2025-06-30"),
    ]
    with pytest.raises(ValueError):
        next_period(anchor, "MONTHLY", utc(2025, 3, 1))


anchors = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2090, 12, 31),
    timezones=st.just(UTC),
)
intervals = st.sampled_from(list(Interval))


offsets = st.timedeltas(min_value=timedelta(days=-3000), max_value=timedelta(days=3000))


@given(anchor=anchors, interval=intervals, offset=offsets)
def test_index_at_consistent_with_period_bounds(
    anchor: datetime, interval: Interval, offset: timedelta
) -> None:
    instant = anchor + offset
    index = index_at(anchor, interval, instant)
    start, end = period_bounds(anchor, interval, index)
    assert start <= instant < end
    assert index_at(anchor, interval, start) == index
    assert index_at(anchor, interval, end) == index + 1


@given(anchor=anchors, interval=intervals, n=st.integers(min_value=-200, max_value=200))
def test_boundaries_increase_and_keep_time_of_day(
    anchor: datetime, interval: Interval, n: int
) -> None:
    start, end = period_bounds(anchor, interval, n)
    assert start < end
    if interval in (Interval.MONTHLY, Interval.QUARTERLY, Interval.YEARLY):
        assert start.time() == anchor.time()
        assert start.day <= anchor.day  # clamped, never later
        # 28..31 days per month
        months = {"MONTHLY": 1, "QUARTERLY": 3, "YEARLY": 12}[interval.value]
        assert timedelta(days=28 * months) <= end - start <= timedelta(days=31 * months + 3)
    else:
        step = {"HOURLY": timedelta(hours=1), "DAILY": timedelta(days=1)}.get(
            interval.value, timedelta(weeks=1)
        )
        assert end - start == step


@given(anchor=anchors, n=st.integers(min_value=0, max_value=600))
def test_monthly_boundary_uses_anchor_day_when_it_exists(anchor: datetime, n: int) -> None:
    boundary = period_end(anchor, "MONTHLY", n)
    months = (boundary.year - anchor.year) * 12 + boundary.month - anchor.month
    assert months == n
    if boundary.day != anchor.day:
        # clamped: the target month is shorter than the anchor day, and we are on its last day
        assert boundary.day < anchor.day
        assert (boundary + timedelta(days=1)).day == 1
