"""GRADUATED: walk the ranges in order; each range prices the units that fall in it
(size ``toValue - fromValue + 1``, both ends counted - the contract's kept quirk - or
everything left for the open range) at ``perUnitAmount``, plus its ``flatAmount`` once
entered. Units beyond a closed last range are free."""

from __future__ import annotations

from decimal import Decimal

from novabilling.usage.pricing.terms import Terms


def cost(units: Decimal, terms: Terms) -> Decimal:
    total = Decimal(0)
    left = units
    for item in terms.ranges:
        if left <= 0:
            break
        size = left if item.to_value is None else Decimal(item.to_value - item.from_value + 1)
        take = min(left, size)
        total += take * item.per_unit + item.flat
        left -= take
    return total
