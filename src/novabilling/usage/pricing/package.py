"""PACKAGE: ``amount`` per started block of ``packageSize`` units (ceil(u / size))."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from novabilling.usage.pricing.terms import Terms


def cost(units: Decimal, terms: Terms) -> Decimal:
    size = terms.number("packageSize", Decimal(1))
    if size <= 0:
        size = Decimal(1)
    blocks = (units / size).to_integral_value(rounding=ROUND_CEILING)
    return blocks * terms.number("amount")
