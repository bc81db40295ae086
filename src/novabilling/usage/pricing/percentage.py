"""PERCENTAGE: ``rate`` % of the units beyond ``freeUnitsPerTotalAggregation``, plus
``fixedAmount`` once per period when any unit is billed."""

from __future__ import annotations

from decimal import Decimal

from novabilling.usage.pricing.terms import Terms


def cost(units: Decimal, terms: Terms) -> Decimal:
    billed = max(Decimal(0), units - terms.number("freeUnitsPerTotalAggregation"))
    if billed <= 0:
        return Decimal(0)
    return billed * terms.number("rate") / 100 + terms.number("fixedAmount")
