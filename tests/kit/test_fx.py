"""Reporting rates (kit.fx) and the computed-figure helpers of kit.money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from novabilling.errors import Invalid
from novabilling.kit import fx, money


def test_default_table_is_the_originals() -> None:
    rates = fx.rates_from_settings({})
    assert rates.rate("NGN") == Decimal(1550) and rates.rate("eur") == Decimal("0.92")
    assert rates.rate("CAD") == 1  # no rate: counted as USD (contract)
    assert len(fx.DEFAULT_USD_RATES) == 17


def test_conversion_is_exact() -> None:
    rates = fx.rates_from_settings({"fxRates": {"NGN": 1600}})
    assert rates.to_usd(Decimal("15500"), "NGN") == Decimal("9.6875")
    assert rates.to_usd(Decimal("27.60"), "EUR") == Decimal(30)
    third = rates.to_usd(Decimal(1), "XYZ") / 3
    assert money.fixed(third * 3) == "1.00"


def test_tenant_rates_override_and_extend() -> None:
    rates = fx.rates_from_settings({"fxRates": {"ngn": "1600.5", "CAD": 1.36, "KES": -1}})
    assert rates.rate("NGN") == Decimal("1600.5") and rates.rate("CAD") == Decimal("1.36")
    assert rates.rate("KES") == 153  # an invalid stored entry is skipped


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"NGN": 0}, "settings.fxRates.NGN"),
        ({"NGN": "1e3"}, "settings.fxRates.NGN"),
        ({"NGN": None}, "settings.fxRates.NGN"),
        ({"1GN": 5}, "settings.fxRates.1GN"),
        ({"NGN": 10**13}, "settings.fxRates.NGN"),
        ("x", "settings.fxRates"),
    ],
)
def test_check_setting_names_the_bad_entry(value: object, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        fx.check_setting(value)
    assert caught.value.errors[0].field == field


def test_check_setting_keeps_values_upper_cases_codes() -> None:
    assert fx.check_setting({"ngn": 1600, "CAD": "1.36"}) == {"NGN": 1600, "CAD": "1.36"}
    assert fx.check_setting(None) == {}


@pytest.mark.parametrize(
    ("value", "places", "text", "number"),
    [
        (Decimal("22.555"), 2, "22.56", 22.56),  # half up, exact
        (Decimal("-0.004"), 2, "0.00", 0),
        (Decimal("123"), 2, "123.00", 123),
        (Decimal("37500.4"), 0, "37500", 37500),
        (Decimal("1.0005"), 3, "1.001", 1.001),
        (Decimal("-33"), 2, "-33.00", -33),
    ],
)
def test_fixed_and_decimal_number(value: Decimal, places: int, text: str, number: float) -> None:
    assert money.fixed(value, places) == text
    result = money.decimal_number(value, places)
    assert result == number and type(result) is type(number)


def test_to_major() -> None:
    assert money.to_major(2999, "USD") == Decimal("29.99")
    assert money.to_major(25000, "UGX") == Decimal(25000)
    assert money.to_major(1234, "TND") == Decimal("1.234")
    assert money.to_major(150, "ZZZ") == Decimal("1.50")  # outside the list: 2 decimals
