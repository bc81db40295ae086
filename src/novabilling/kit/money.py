"""Money: integer minor units + ISO currency code (DESIGN rule 1).

This module is the ONLY converter between the wire's major-unit decimals and the integer
minor units used everywhere inside. Floats never enter the arithmetic:

- ``parse_amount`` turns a request value (int, Decimal, numeric string, or the float a
  JSON decoder produced) into an exact ``Decimal``. A float is read through ``repr`` so
  ``29.99`` becomes ``Decimal("29.99")``, never ``Decimal(29.99)``.
- ``to_minor`` converts exactly with the currency's exponent; more significant decimals
  than the currency allows are rejected (400), never rounded.
- ``to_wire`` renders the contract's canonical string (``"29.99"``, ``"25000"``, ``"0.5"``).

String inputs are strict: optional leading ``-``, digits, optional ``.`` and digits
(``"29.99"``, ``"-1.5"``, ``"5"``, ``"5."`` and ``".5"`` are NOT accepted, nor surrounding
whitespace, ``+``, ``_`` or exponent forms such as ``"1e3"``). Exponent forms are only seen
from ``float``/``Decimal`` inputs, where they are exact and accepted.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import BeforeValidator

from novabilling.errors import Invalid
from novabilling.kit.currencies import CURRENCY_LIST, Currency

__all__ = [
    "CURRENCIES",
    "MAX_MINOR",
    "Currency",
    "WireAmount",
    "allocate",
    "decimal_number",
    "decimal_to_number",
    "decimal_to_wire",
    "decimals_of",
    "exponent",
    "fixed",
    "format_display",
    "get_currency",
    "normalize_code",
    "parse_amount",
    "to_major",
    "to_minor",
    "to_number",
    "to_wire",
]

CURRENCIES: dict[str, Currency] = {c.code: c for c in CURRENCY_LIST}

# Exclusive bound on |minor units| of any single amount (10**15 cents = 10 trillion USD).
MAX_MINOR = 10**15
# Exclusive bound on |major units| accepted by parse_amount, before the currency is known.
_MAX_MAJOR_DIGITS = 18
_MAX_STRING_LENGTH = 64
_NUMERIC_STRING = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_CODE = re.compile(r"[A-Z]{1,3}")


class _NotANumber(ValueError):
    """Internal: why a value is not an acceptable amount (message without field name)."""


def normalize_code(code: str, *, field: str = "currency") -> str:
    """Upper-case a currency code and check its shape (1-3 ASCII letters).

    Does not check the supported list (contract README §5); ``exponent`` does.
    """
    if not isinstance(code, str):
        raise Invalid(field, f"{field} must be a string of at most 3 letters")
    upper = code.upper()
    if not _CODE.fullmatch(upper):
        raise Invalid(field, f"{field} must be a string of at most 3 letters")
    return upper


def get_currency(code: str, *, field: str = "currency") -> Currency:
    """The supported ``Currency`` for ``code`` (case-insensitive) or ``Invalid(field)``."""
    found = CURRENCIES.get(code.upper()) if isinstance(code, str) else None
    if found is None:
        raise Invalid(field, f"{field} {code!s} is not a supported currency")
    return found


def exponent(code: str, *, field: str = "currency") -> int:
    """Number of minor-unit digits of ``code`` (USD 2, UGX 0, TND 3)."""
    return get_currency(code, field=field).decimals


def _parse(value: object) -> Decimal:
    """Exact Decimal for an accepted amount value; raises ``_NotANumber`` otherwise."""
    if isinstance(value, bool) or value is None:
        raise _NotANumber("must be a number")
    if isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _NotANumber("must be a finite number")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        if len(value) > _MAX_STRING_LENGTH or not _NUMERIC_STRING.fullmatch(value):
            raise _NotANumber("must be a number")
        result = Decimal(value)
    else:
        raise _NotANumber("must be a number")
    if not result.is_finite():
        raise _NotANumber("must be a finite number")
    if result and result.adjusted() >= _MAX_MAJOR_DIGITS:
        raise _NotANumber("is too large")
    return result


def parse_amount(value: object, *, field: str) -> Decimal:
    """Exact ``Decimal`` for a wire amount, or ``Invalid(field)``.

    Accepts int, finite Decimal, finite float (via ``repr``) and strict numeric strings.
    Rejects bool, None, NaN, infinities, other strings and types, and magnitudes >= 1e18.
    """
    try:
        return _parse(value)
    except _NotANumber as exc:
        raise Invalid(field, f"{field} {exc}") from None


def _exact_minor(amount: Decimal, decimals: int) -> int | None:
    """``amount * 10**decimals`` as an int when exact, else None. Pure integer work."""
    sign, digits, exp = amount.as_tuple()
    assert isinstance(exp, int)  # finite, checked by _parse
    coefficient = int("".join(map(str, digits))) if digits else 0
    if coefficient == 0:
        return 0
    while exp < 0 and coefficient % 10 == 0:
        coefficient //= 10
        exp += 1
    shift = exp + decimals
    if shift < 0:
        return None
    magnitude = coefficient * 10**shift
    return -magnitude if sign else magnitude


def to_minor(
    value: object,
    currency: str,
    *,
    field: str,
    allow_negative: bool = False,
    allow_zero: bool = True,
    currency_field: str = "currency",
) -> int:
    """Wire amount -> integer minor units of ``currency``, exactly, or ``Invalid``.

    ``"29.990"`` is fine for USD (trailing zeros carry no value); ``"29.999"`` is not.
    An unknown currency raises ``Invalid(currency_field)``.
    """
    decimals = exponent(currency, field=currency_field)
    amount = parse_amount(value, field=field)
    minor = _exact_minor(amount, decimals)
    code = currency.upper()
    if minor is None:
        if decimals == 0:
            raise Invalid(field, f"{field} must be a whole number for {code}")
        raise Invalid(field, f"{field} must have at most {decimals} decimal places for {code}")
    if minor < 0 and not allow_negative:
        raise Invalid(field, f"{field} must not be negative")
    if minor == 0 and not allow_zero:
        raise Invalid(field, f"{field} must be greater than 0")
    if abs(minor) >= MAX_MINOR:
        raise Invalid(field, f"{field} is too large")
    return minor


def _split(minor: int, decimals: int) -> tuple[str, str, str]:
    """(sign, integer digits, fraction digits padded to ``decimals``)."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor units must be an int, got {type(minor).__name__}")
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor)).rjust(decimals + 1, "0")
    if decimals == 0:
        return sign, digits, ""
    return sign, digits[:-decimals], digits[-decimals:]


def to_wire(minor: int, currency: str) -> str:
    """Canonical major-unit string: no trailing zeros, no exponent (contract README §5).

    ``to_wire(2999, "USD") == "29.99"``, ``to_wire(50, "USD") == "0.5"``,
    ``to_wire(25000, "UGX") == "25000"``, ``to_wire(-150, "USD") == "-1.5"``.
    """
    sign, whole, fraction = _split(minor, exponent(currency))
    fraction = fraction.rstrip("0")
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def decimal_to_wire(value: Decimal) -> str:
    """Canonical string of a currency-less exact decimal (a per-unit rate, a unit count):
    no exponent, no trailing zeros (``"0.0025"``, ``"12"``, ``"-1.5"``)."""
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def decimal_to_number(value: Decimal) -> float | int:
    """JSON number of an exact decimal (a computed unit count): int when whole. Only for
    the JSON edge; never compute with the result."""
    text = decimal_to_wire(value)
    return float(text) if "." in text else int(text)


def to_number(minor: int, currency: str) -> float | int:
    """JSON number for computed fields: int when whole, else the float of the exact string.

    Only for the JSON edge; never compute with the result.
    """
    text = to_wire(minor, currency)
    return float(text) if "." in text else int(text)


def to_major(minor: int, currency: str) -> Decimal:
    """Exact major units of ``minor`` (``to_major(2999, "USD") == Decimal("29.99")``), for
    computed figures (reports). A code outside the supported list counts 2 decimals."""
    found = CURRENCIES.get(currency.upper())
    return Decimal(int(minor)).scaleb(-(found.decimals if found else 2))


def decimals_of(currency: str) -> int:
    """Minor-unit digits of ``currency``; 2 for a code outside the supported list."""
    found = CURRENCIES.get(currency.upper())
    return found.decimals if found else 2


def fixed(value: Decimal, places: int = 2) -> str:
    """``value`` rounded half-up to exactly ``places`` decimals, as text (``"12.30"``,
    ``"0.00"``; ``"25000"`` for 0 places). Computed figures only (reports)."""
    quantum = Decimal(1).scaleb(-places)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    return f"{rounded:f}" if rounded else f"{Decimal(0).quantize(quantum):f}"


def decimal_number(value: Decimal, places: int = 2) -> float | int:
    """``value`` rounded half-up to ``places`` decimals as a JSON number: int when whole,
    else the float of the exact rounded text. Only for the JSON edge."""
    text = fixed(value, places)
    whole, _, fraction = text.partition(".")
    if not fraction.strip("0"):
        return int(whole)
    return float(text)


def format_display(minor: int, currency: str) -> str:
    """Human text for PDFs and emails: ``"USD 1,234.50"``, ``"UGX 25,000"``, ``"USD -5.00"``
    (code, thousands separators, exactly the currency's number of decimals)."""
    decimals = exponent(currency)
    sign, whole, fraction = _split(minor, decimals)
    grouped = f"{int(whole):,}"
    number = f"{grouped}.{fraction}" if decimals else grouped
    return f"{currency.upper()} {sign}{number}"


def round_half_up(value: Decimal) -> int:
    """``value`` (in minor units) rounded to a whole minor unit, halves away from zero
    (2.5 -> 3, -2.5 -> -3): the one rounding rule of invoice lines."""
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def allocate(total_minor: int, weights: list[int]) -> list[int]:
    """Split ``total_minor`` in proportion to ``weights`` so the parts sum exactly to it.

    Largest remainder method: each part gets the floor of its exact share (toward zero for
    negative totals), then the leftover units go one each to the largest remainders,
    earliest index first on ties. Weights must be non-negative ints with a positive sum.
    """
    if not weights:
        raise ValueError("weights must not be empty")
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 0 for w in weights):
        raise ValueError("weights must be non-negative integers")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("weights must not all be zero")
    sign = -1 if total_minor < 0 else 1
    total = abs(total_minor)
    shares = [divmod(total * w, weight_sum) for w in weights]
    parts = [q for q, _ in shares]
    leftover = total - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-shares[i][1], i))
    for i in by_remainder[:leftover]:
        parts[i] += 1
    return [sign * p for p in parts]


def _wire_amount(value: object) -> Decimal:
    try:
        return _parse(value)
    except _NotANumber as exc:
        raise ValueError(str(exc)) from None


WireAmount = Annotated[Decimal, BeforeValidator(_wire_amount)]
"""Request-body amount: numbers and strict numeric strings become an exact Decimal;
bool, None, NaN, infinities and other strings fail pydantic validation (-> 400 naming the
field). Convert with ``to_minor(value, currency, field=...)`` once the currency is known."""
