"""The five pricing models (contract charges.md, "Pricing"), against amounts worked out by
hand in the comments. Pure functions: no database."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from novabilling.usage.charge_rules import RangeSpec
from novabilling.usage.pricing import MODELS, Terms, cost

# 0-100 (101 units: both ends count) at 0.01 + flat 1; 101-1000 at 0.005; 1001+ at 0.002
TIERS = (
    RangeSpec(0, 100, D("0.01"), D("1")),
    RangeSpec(101, 1000, D("0.005"), D("0")),
    RangeSpec(1001, None, D("0.002"), D("5")),
)


def test_registry_has_the_five_models() -> None:
    assert set(MODELS) == {"STANDARD", "GRADUATED", "VOLUME", "PACKAGE", "PERCENTAGE"}


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("0", "0"),
        ("1", "0.1"),  # 1 x 0.10
        ("1234", "123.4"),
        ("2.5", "0.25"),  # fractional units (a SUM of decimals)
        ("-3", "0"),  # no usage, no cost
    ],
)
def test_standard(units: str, expected: str) -> None:
    assert cost("STANDARD", D(units), Terms({"amount": "0.10"})) == D(expected)


def test_standard_reads_numbers_and_strings_exactly() -> None:
    assert cost("STANDARD", D(3), Terms({"amount": 0.1})) == D("0.3")  # not 0.30000000000000004
    assert cost("STANDARD", D(3), Terms({"amount": "abc"})) == 0  # non-numeric -> 0
    assert cost("STANDARD", D(3), Terms({})) == 0


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        # 50 in the first range: 50 x 0.01 + 1 = 1.5
        ("50", "1.5"),
        # the first range is full at 101 units: 101 x 0.01 + 1 = 2.01
        ("101", "2.01"),
        # crosses into the second: 2.01 + 1 x 0.005 = 2.015
        ("102", "2.015"),
        # 2.01 + 900 x 0.005 = 6.51 (second range full)
        ("1001", "6.51"),
        # crosses into the open third: 6.51 + 1 x 0.002 + 5 = 11.512
        ("1002", "11.512"),
        # 6.51 + 3999 x 0.002 + 5 = 19.508
        ("5000", "19.508"),
        # fractional: 101 x 0.01 + 1 + 0.5 x 0.005 = 2.0125
        ("101.5", "2.0125"),
    ],
)
def test_graduated_crossing_boundaries(units: str, expected: str) -> None:
    assert cost("GRADUATED", D(units), Terms(ranges=TIERS)) == D(expected)


def test_graduated_units_beyond_a_closed_last_range_are_free() -> None:
    closed = (RangeSpec(0, 9, D("1"), D("0")), RangeSpec(10, 19, D("0.5"), D("2")))
    # 10 x 1 + 10 x 0.5 + 2 = 17, the next 80 units free
    assert cost("GRADUATED", D(100), Terms(ranges=closed)) == D(17)


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("100", "2"),  # 100 x 0.01 + 1
        ("101", "0.505"),  # 101 x 0.005 (edge: the second range starts at 101)
        ("1000", "5"),  # 1000 x 0.005
        ("1001", "7.002"),  # 1001 x 0.002 + 5
        ("100.5", "2.005"),  # between 100 and 101: the lower range (100.5 x 0.01 + 1)
    ],
)
def test_volume_tier_edges(units: str, expected: str) -> None:
    assert cost("VOLUME", D(units), Terms(ranges=TIERS)) == D(expected)


def test_volume_beyond_a_closed_last_range_costs_nothing() -> None:
    closed = (RangeSpec(0, 10, D("1"), D("0")),)
    assert cost("VOLUME", D(11), Terms(ranges=closed)) == 0
    assert cost("VOLUME", D(10), Terms(ranges=closed)) == D(10)


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("1", "5"),  # one started block of 100
        ("100", "5"),
        ("101", "10"),  # rounds up to a second block
        ("250", "15"),
        ("0.5", "5"),
    ],
)
def test_package_rounds_up(units: str, expected: str) -> None:
    terms = Terms({"amount": 5, "packageSize": 100})
    assert cost("PACKAGE", D(units), terms) == D(expected)


def test_package_size_defaults_to_one() -> None:
    assert cost("PACKAGE", D(3), Terms({"amount": "2"})) == D(6)
    assert cost("PACKAGE", D(3), Terms({"amount": "2", "packageSize": "junk"})) == D(6)


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("1000", "0"),  # all free: no fixed fee either
        ("999.99", "0"),
        # 10,000 - 1,000 free = 9,000 x 2.5 % = 225 + fixed 0.30 = 225.30
        ("10000", "225.30"),
        # 1,000.40 - 1,000 = 0.40 x 2.5 % = 0.01 + 0.30
        ("1000.40", "0.31"),
    ],
)
def test_percentage_with_free_units_and_fixed_fee(units: str, expected: str) -> None:
    terms = Terms({"rate": "2.5", "fixedAmount": "0.30", "freeUnitsPerTotalAggregation": 1000})
    assert cost("PERCENTAGE", D(units), terms) == D(expected)


def test_percentage_without_extras() -> None:
    assert cost("PERCENTAGE", D("200"), Terms({"rate": 1.5})) == D(3)
