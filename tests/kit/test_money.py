from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from novabilling.errors import Invalid
from novabilling.kit.money import (
    CURRENCIES,
    MAX_MINOR,
    WireAmount,
    allocate,
    exponent,
    format_display,
    normalize_code,
    parse_amount,
    to_minor,
    to_number,
    to_wire,
)

CODES = list(CURRENCIES)
minor_units = st.integers(min_value=-(MAX_MINOR - 1), max_value=MAX_MINOR - 1)


def field_error(exc: pytest.ExceptionInfo[Invalid]) -> tuple[str, str]:
    (error,) = exc.value.errors
    return error.field, error.message


# --- currencies -------------------------------------------------------------------------


def test_forty_four_currencies_in_contract_order() -> None:
    assert len(CURRENCIES) == 44
    assert CODES[:4] == ["NGN", "KES", "GHS", "ZAR"]
    assert CODES[-9:] == ["USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CNY", "INR", "BRL"]
    featured = {c.code for c in CURRENCIES.values() if c.featured}
    expected = "NGN KES GHS ZAR UGX TZS RWF EGP XOF XAF MAD ETB DZD ZMW USD EUR GBP"
    assert featured == set(expected.split(" "))


def test_exponents_follow_contract_table() -> None:
    zero = {c for c in CODES if exponent(c) == 0}
    three = {c for c in CODES if exponent(c) == 3}
    assert zero == {"UGX", "TZS", "RWF", "XOF", "XAF", "GNF", "JPY"}
    assert three == {"TND", "LYD"}
    assert all(exponent(c) == 2 for c in CODES if c not in zero | three)


def test_symbols_and_names() -> None:
    assert CURRENCIES["NGN"].symbol == "₦"
    assert CURRENCIES["KES"].symbol == "KSh"
    assert CURRENCIES["GHS"].symbol == "GH₵"
    assert CURRENCIES["EUR"].symbol == "€"
    assert CURRENCIES["NGN"].name == "Nigerian Naira"
    assert all(c.symbol and c.name and c.code == code for code, c in CURRENCIES.items())


def test_exponent_is_case_insensitive_and_rejects_unknown() -> None:
    assert exponent("usd") == 2
    assert exponent("Ugx") == 0
    with pytest.raises(Invalid) as exc:
        exponent("XYZ", field="prices.0.currency")
    assert field_error(exc) == (
        "prices.0.currency",
        "prices.0.currency XYZ is not a supported currency",
    )


def test_normalize_code() -> None:
    assert normalize_code("usd") == "USD"
    assert normalize_code("ab") == "AB"  # shape only; the supported list is not checked
    for bad in ["", "USDX", "U1D", "€"]:
        with pytest.raises(Invalid) as exc:
            normalize_code(bad)
        assert field_error(exc)[0] == "currency"


# --- parse_amount ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (29.99, Decimal("29.99")),
        (0.1, Decimal("0.1")),
        (5, Decimal(5)),
        ("29.99", Decimal("29.99")),
        ("-1.5", Decimal("-1.5")),
        ("007", Decimal(7)),
        (Decimal("1.50"), Decimal("1.50")),
        (1e3, Decimal("1000")),
    ],
)
def test_parse_amount_accepts(value: object, expected: Decimal) -> None:
    parsed = parse_amount(value, field="amount")
    assert parsed == expected
    assert isinstance(parsed, Decimal)


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        float("nan"),
        float("inf"),
        float("-inf"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        "NaN",
        "Infinity",
        "abc",
        "",
        " 5",
        "5 ",
        "+5",
        "1e3",
        "1,000",
        "5.",
        ".5",
        "1_000",
        "1" * 65,
        [1],
        {"amount": 1},
        10**18,
        Decimal("1E+30"),
    ],
)
def test_parse_amount_rejects(value: object) -> None:
    with pytest.raises(Invalid) as exc:
        parse_amount(value, field="amount")
    field, message = field_error(exc)
    assert field == "amount"
    assert message.startswith("amount ")


# --- to_minor -------------------------------------------------------------------------


def test_to_minor_examples() -> None:
    assert to_minor("29.99", "USD", field="amount") == 2999
    assert to_minor(29.99, "usd", field="amount") == 2999
    assert to_minor("29.990", "USD", field="amount") == 2999
    assert to_minor(25000, "UGX", field="amount") == 25000
    assert to_minor("25000.000", "UGX", field="amount") == 25000
    assert to_minor("1.234", "TND", field="amount") == 1234
    assert to_minor(0, "USD", field="amount") == 0
    assert to_minor("-1.5", "USD", field="amount", allow_negative=True) == -150


def test_to_minor_rejects_extra_decimals_naming_field() -> None:
    with pytest.raises(Invalid) as exc:
        to_minor("29.999", "USD", field="amount")
    assert field_error(exc) == ("amount", "amount must have at most 2 decimal places for USD")
    with pytest.raises(Invalid) as exc:
        to_minor("0.5", "ugx", field="items.0.unitAmount")
    assert field_error(exc) == (
        "items.0.unitAmount",
        "items.0.unitAmount must be a whole number for UGX",
    )
    with pytest.raises(Invalid) as exc:
        to_minor(0.0001, "TND", field="amount")
    assert field_error(exc)[0] == "amount"


def test_to_minor_sign_zero_and_bounds() -> None:
    with pytest.raises(Invalid) as exc:
        to_minor(-1, "USD", field="amount")
    assert field_error(exc) == ("amount", "amount must not be negative")
    with pytest.raises(Invalid) as exc:
        to_minor(0, "USD", field="amount", allow_zero=False)
    assert field_error(exc) == ("amount", "amount must be greater than 0")
    assert to_minor("-0", "USD", field="amount") == 0
    assert to_minor(MAX_MINOR - 1, "UGX", field="amount") == MAX_MINOR - 1
    with pytest.raises(Invalid) as exc:
        to_minor(MAX_MINOR, "UGX", field="amount")
    assert field_error(exc) == ("amount", "amount is too large")


def test_to_minor_unknown_currency_names_currency_field() -> None:
    with pytest.raises(Invalid) as exc:
        to_minor("1", "ABC", field="amount", currency_field="currency")
    assert field_error(exc)[0] == "currency"


# --- to_wire / to_number / format_display ---------------------------------------------


def test_to_wire_examples() -> None:
    assert to_wire(2999, "USD") == "29.99"
    assert to_wire(2500000, "NGN") == "25000"
    assert to_wire(0, "USD") == "0"
    assert to_wire(50, "USD") == "0.5"
    assert to_wire(5, "USD") == "0.05"
    assert to_wire(25000, "UGX") == "25000"
    assert to_wire(-150, "USD") == "-1.5"
    assert to_wire(1, "TND") == "0.001"
    assert to_wire(1000, "LYD") == "1"
    with pytest.raises(TypeError):
        to_wire(True, "USD")


def test_to_number() -> None:
    assert to_number(2999, "USD") == 29.99
    assert isinstance(to_number(2500, "USD"), int)
    assert to_number(2500, "USD") == 25
    assert to_number(-5, "USD") == -0.05
    assert to_number(25000, "UGX") == 25000


def test_format_display() -> None:
    assert format_display(123450, "USD") == "USD 1,234.50"
    assert format_display(25000, "UGX") == "UGX 25,000"
    assert format_display(0, "usd") == "USD 0.00"
    assert format_display(-5, "USD") == "USD -0.05"
    assert format_display(1234567, "TND") == "TND 1,234.567"


# --- properties over all 44 currencies ------------------------------------------------


@given(code=st.sampled_from(CODES), minor=minor_units)
def test_minor_wire_minor_round_trip(code: str, minor: int) -> None:
    wire = to_wire(minor, code)
    assert "e" not in wire.lower()
    assert wire == "0" or not ("." in wire and wire.endswith("0"))
    assert to_minor(wire, code, field="amount", allow_negative=True) == minor
    assert Decimal(wire) * 10 ** exponent(code) == minor
    number = to_number(minor, code)
    assert to_minor(number, code, field="amount", allow_negative=True) == minor


@given(
    code=st.sampled_from(CODES),
    whole=st.integers(min_value=0, max_value=10**12 - 1),
    fraction=st.text(alphabet="0123456789", min_size=0, max_size=3),
    trailing=st.integers(min_value=0, max_value=3),
)
def test_wire_minor_wire_round_trip(code: str, whole: int, fraction: str, trailing: int) -> None:
    decimals = exponent(code)
    fraction = fraction[:decimals]
    text = f"{whole}.{fraction}{'0' * trailing}" if fraction or trailing else str(whole)
    minor = to_minor(text, code, field="amount")
    wire = to_wire(minor, code)
    assert Decimal(wire) == Decimal(text)
    assert to_wire(to_minor(wire, code, field="amount"), code) == wire


@given(
    code=st.sampled_from(CODES),
    whole=st.integers(min_value=0, max_value=10**9),
    extra=st.integers(min_value=1, max_value=9),
)
def test_too_many_decimals_rejected_for_every_currency(code: str, whole: int, extra: int) -> None:
    text = f"{whole}.{'0' * exponent(code)}{extra}"
    with pytest.raises(Invalid) as exc:
        to_minor(text, code, field="price")
    field, message = field_error(exc)
    assert field == "price"
    assert message.startswith("price must ")
    assert code in message


@given(code=st.sampled_from(CODES), minor=st.integers(min_value=1, max_value=MAX_MINOR - 1))
def test_negative_rejected_unless_allowed(code: str, minor: int) -> None:
    wire = "-" + to_wire(minor, code)
    with pytest.raises(Invalid):
        to_minor(wire, code, field="amount")
    assert to_minor(wire, code, field="amount", allow_negative=True) == -minor


@given(value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9))
def test_float_parsed_through_repr(value: float) -> None:
    assert parse_amount(value, field="amount") == Decimal(repr(value))


# --- allocate -------------------------------------------------------------------------


def test_allocate_examples() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]
    assert allocate(10, [0, 1]) == [0, 10]
    assert allocate(5, [3, 1]) == [4, 1]
    for bad in [[], [0, 0], [-1, 2]]:
        with pytest.raises(ValueError):
            allocate(10, bad)


@given(
    total=st.integers(min_value=-(10**15), max_value=10**15),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=20).filter(
        lambda ws: sum(ws) > 0
    ),
)
def test_allocate_sums_exactly_and_stays_within_one_unit(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        exact = Decimal(total * weight) / Decimal(sum(weights))
        assert abs(Decimal(part) - exact) < 1
        if weight == 0:
            assert part == 0


# --- WireAmount -----------------------------------------------------------------------


class Body(BaseModel):
    amount: WireAmount
    optional: WireAmount | None = None


def test_wire_amount_accepts_numbers_and_numeric_strings() -> None:
    assert Body(amount=29.99).amount == Decimal("29.99")
    assert Body(amount="29.99").amount == Decimal("29.99")
    assert Body(amount=5).amount == Decimal(5)
    assert Body.model_validate_json('{"amount": 29.99}').amount == Decimal("29.99")
    assert Body(amount=1, optional=None).optional is None


@pytest.mark.parametrize("value", [True, None, float("nan"), float("inf"), "abc", "1e3", [1]])
def test_wire_amount_rejects_with_field_location(value: object) -> None:
    with pytest.raises(ValidationError) as exc:
        Body(amount=value)
    (error,) = exc.value.errors()
    assert error["loc"] == ("amount",)
    assert "number" in error["msg"]
