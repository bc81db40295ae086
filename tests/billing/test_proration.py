from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novabilling.kit.proration import (
    Proration,
    change_plan,
    remaining_charge,
    unused_credit,
)

START = datetime(2025, 4, 1, tzinfo=UTC)
END = datetime(2025, 5, 1, tzinfo=UTC)  # 30 days


def test_half_way_examples() -> None:
    middle = START + timedelta(days=15)
    assert unused_credit(3000, START, END, middle) == 1500
    assert remaining_charge(6000, START, END, middle) == 3000
    assert change_plan(3000, 6000, START, END, middle) == Proration(
        credit_minor=1500, charge_minor=3000, net_minor=1500
    )
    assert change_plan(6000, 3000, START, END, middle).net_minor == -1500


def test_edges_of_the_period() -> None:
    assert unused_credit(2999, START, END, START) == 2999
    assert unused_credit(2999, START, END, END) == 0
    assert remaining_charge(2999, START, END, START) == 2999
    assert remaining_charge(2999, START, END, END) == 0


def test_rounding_directions() -> None:
    one_third_left = START + timedelta(days=20)  # 10 of 30 days remain
    # 100 * 10 / 30 = 33.33..: credit floors, charge rounds half-up
    assert unused_credit(100, START, END, one_third_left) == 33
    assert remaining_charge(100, START, END, one_third_left) == 33
    # 5 * 15 / 30 = 2.5: credit 2 (down), charge 3 (half-up)
    middle = START + timedelta(days=15)
    assert unused_credit(5, START, END, middle) == 2
    assert remaining_charge(5, START, END, middle) == 3
    # 101 * 10 / 30 = 33.67
    assert unused_credit(101, START, END, one_third_left) == 33
    assert remaining_charge(101, START, END, one_third_left) == 34


def test_microsecond_precision_and_huge_amounts_stay_exact() -> None:
    at = END - timedelta(microseconds=1)
    total_us = 30 * 24 * 3600 * 10**6
    paid = 10**15 - 1
    assert unused_credit(paid, START, END, at) == paid // total_us
    assert remaining_charge(paid, START, END, at) == (2 * paid + total_us) // (2 * total_us)


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        unused_credit(100, START, END, START - timedelta(seconds=1))
    with pytest.raises(ValueError):
        remaining_charge(100, START, END, END + timedelta(microseconds=1))
    with pytest.raises(ValueError):
        unused_credit(100, END, START, END)
    with pytest.raises(ValueError):
        unused_credit(100, START, START, START)
    with pytest.raises(ValueError):
        unused_credit(-1, START, END, START)
    with pytest.raises(ValueError):
        unused_credit(100, START.replace(tzinfo=None), END, END)
    with pytest.raises(TypeError):
        unused_credit(True, START, END, START)
    with pytest.raises(TypeError):
        remaining_charge(1.5, START, END, START)  # type: ignore[arg-type]


periods = st.tuples(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.just(UTC),
    ),
    st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=800)),
)
prices = st.integers(min_value=0, max_value=10**15 - 1)
fractions = st.fractions(min_value=0, max_value=1)


@given(paid=prices, period=periods, where=fractions)
def test_credit_never_exceeds_paid_and_never_creates_units(
    paid: int, period: tuple[datetime, timedelta], where: Fraction
) -> None:
    start, length = period
    end = start + length
    total_us = length // timedelta(microseconds=1)
    elapsed_us = int(where * total_us)
    at = start + timedelta(microseconds=elapsed_us)

    credit = unused_credit(paid, start, end, at)
    assert 0 <= credit <= paid
    # The used share, rounded half-up independently, plus the credit gives back what was
    # paid, short by at most one minor unit (the credit is rounded down): never more.
    used = (2 * paid * elapsed_us + total_us) // (2 * total_us)
    assert paid - 1 <= credit + used <= paid
    # Exactness: credit is the floor of the exact rational share.
    remaining_us = total_us - elapsed_us
    assert credit * total_us <= paid * remaining_us < (credit + 1) * total_us


@given(old=prices, new=prices, period=periods, where=fractions)
def test_change_plan_is_consistent(
    old: int, new: int, period: tuple[datetime, timedelta], where: Fraction
) -> None:
    start, length = period
    end = start + length
    total_us = length // timedelta(microseconds=1)
    at = start + timedelta(microseconds=int(where * total_us))

    result = change_plan(old, new, start, end, at)
    assert result.net_minor == result.charge_minor - result.credit_minor
    assert 0 <= result.credit_minor <= old
    assert 0 <= result.charge_minor <= new
    # Same plan, same price: the customer is never charged more than the credit plus one
    # unit of rounding.
    same = change_plan(old, old, start, end, at)
    assert 0 <= same.net_minor <= 1


@given(price=prices, period=periods, where=fractions)
def test_charge_is_nearest_integer(
    price: int, period: tuple[datetime, timedelta], where: Fraction
) -> None:
    start, length = period
    total_us = length // timedelta(microseconds=1)
    elapsed_us = int(where * total_us)
    at = start + timedelta(microseconds=elapsed_us)
    charge = remaining_charge(price, start, start + length, at)
    exact_times_total = price * (total_us - elapsed_us)
    # |charge - exact| <= 1/2, with exact halves going up
    assert 2 * abs(charge * total_us - exact_times_total) <= total_us
    assert 2 * (charge * total_us - exact_times_total) > -total_us
