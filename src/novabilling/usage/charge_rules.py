"""The rules a charge's settings must follow (contract charges.md, "Improve" lines), shared
by charges and plan overrides: model properties, graduated ranges, filters. Pure
functions raising ``Invalid`` with the dotted wire path of the broken rule.

Prices here are rates, not amounts: a per-unit price may have more decimals than the
currency (0.0025 USD a call), so they are exact decimals with at most
``MAX_RATE_DECIMALS`` fractional digits, never floats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from novabilling.errors import Invalid
from novabilling.kit.money import parse_amount

__all__ = [
    "MAX_RATE_DECIMALS",
    "MODEL_KEYS",
    "FilterSpec",
    "RangeSpec",
    "check_filters",
    "check_properties",
    "check_ranges",
    "rate",
]

MAX_RATE_DECIMALS = 12
_MAX_RATE = Decimal(10) ** 15
_QUANTUM = Decimal(1).scaleb(-MAX_RATE_DECIMALS)

# model -> (key, required, lower bound, upper bound, whole number)
_Rule = tuple[str, bool, Decimal, Decimal | None, bool]
MODEL_KEYS: Mapping[str, tuple[_Rule, ...]] = {
    "STANDARD": (("amount", True, Decimal(0), None, False),),
    "PACKAGE": (
        ("amount", True, Decimal(0), None, False),
        ("packageSize", True, Decimal(1), None, True),
    ),
    "PERCENTAGE": (
        ("rate", True, Decimal(0), Decimal(100), False),
        ("fixedAmount", False, Decimal(0), None, False),
        ("freeUnitsPerTotalAggregation", False, Decimal(0), None, False),
    ),
    "GRADUATED": (),
    "VOLUME": (),
}
RANGE_MODELS = frozenset({"GRADUATED", "VOLUME"})


@dataclass(frozen=True, slots=True)
class RangeSpec:
    """A validated range: ``to_value`` None is the open end."""

    from_value: int
    to_value: int | None
    per_unit: Decimal
    flat: Decimal


def rate(value: object, *, field: str, low: Decimal = Decimal(0)) -> Decimal:
    """An exact decimal >= ``low`` with at most ``MAX_RATE_DECIMALS`` decimals."""
    number = parse_amount(value, field=field)
    if abs(number) >= _MAX_RATE:
        raise Invalid(field, f"{field} is too large")
    exponent = number.as_tuple().exponent
    too_fine = isinstance(exponent, int) and exponent < -MAX_RATE_DECIMALS
    if too_fine and number != number.quantize(_QUANTUM):
        raise Invalid(field, f"{field} must have at most {MAX_RATE_DECIMALS} decimal places")
    if number < low:
        raise Invalid(field, f"{field} must not be less than {low}")
    return number


def check_properties(
    model: str, properties: Mapping[str, Any], *, field: str = "properties", required: bool = True
) -> None:
    """The keys ``model`` reads must hold acceptable numbers (numbers or numeric
    strings); ``required``: the model's mandatory keys must be present. Other keys are
    kept as sent."""
    for key, needed, low, high, whole in MODEL_KEYS[model]:
        where = f"{field}.{key}"
        if key not in properties or properties[key] is None:
            if needed and required:
                raise Invalid(where, f"{where} is required for {model} charges")
            continue
        number = rate(properties[key], field=where, low=low)
        if high is not None and number > high:
            raise Invalid(where, f"{where} must not be greater than {high}")
        if whole and number != number.to_integral_value():
            raise Invalid(where, f"{where} must be an integer")


def check_ranges(ranges: Sequence[RangeSpec], *, field: str = "graduatedRanges") -> None:
    """Integers >= 0, ``toValue`` >= ``fromValue``, only the last range open, each range
    starting right after the previous one (``toValue + 1``)."""
    for index, item in enumerate(ranges):
        where = f"{field}.{index}"
        if item.from_value < 0:
            raise Invalid(f"{where}.fromValue", f"{where}.fromValue must not be less than 0")
        if item.to_value is None:
            if index != len(ranges) - 1:
                raise Invalid(f"{where}.toValue", f"{where}.toValue is required except last")
        elif item.to_value < item.from_value:
            raise Invalid(f"{where}.toValue", f"{where}.toValue must be >= fromValue")
        if index > 0:
            previous = ranges[index - 1].to_value
            if previous is not None and item.from_value != previous + 1:
                raise Invalid(
                    f"{where}.fromValue",
                    f"{where}.fromValue must be {previous + 1} (the previous toValue + 1)",
                )


@dataclass(frozen=True, slots=True)
class FilterSpec:
    key: str
    values: tuple[str, ...]
    properties: Mapping[str, Any]


def check_filters(
    model: str,
    filters: Sequence[FilterSpec],
    allowed: Mapping[str, Sequence[str]],
    *,
    field: str = "filters",
) -> None:
    """One filter per key; each ``key`` one of the metric's filter keys and its
    ``values`` among that filter's values; its ``properties`` valid for ``model``."""
    seen: set[str] = set()
    for index, item in enumerate(filters):
        where = f"{field}.{index}"
        if item.key in seen:
            raise Invalid(f"{where}.key", f"{where}.key {item.key} is listed twice")
        seen.add(item.key)
        if item.key not in allowed:
            raise Invalid(
                f"{where}.key", f"{where}.key {item.key} is not a filter of the billable metric"
            )
        unknown = [v for v in item.values if v not in allowed[item.key]]
        if unknown:
            raise Invalid(
                f"{where}.values",
                f"{where}.values {unknown[0]} is not a value of the metric's {item.key} filter",
            )
        check_properties(model, item.properties, field=f"{where}.properties", required=False)
