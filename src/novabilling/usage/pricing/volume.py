"""VOLUME: every unit at the price of the one range the total falls in:
u x ``perUnitAmount`` + ``flatAmount``. The range is the last one starting at or below u
(contract Improve: a fractional u between one range's ``toValue`` and the next
``fromValue`` takes the lower range; whole units get the original's result); u beyond a
closed last range matches nothing and costs 0, as in the original."""

from __future__ import annotations

from decimal import Decimal

from novabilling.usage.pricing.terms import Terms


def cost(units: Decimal, terms: Terms) -> Decimal:
    chosen = None
    for item in terms.ranges:
        if item.from_value <= units:
            chosen = item
    if chosen is None:
        return Decimal(0)
    if chosen is terms.ranges[-1] and chosen.to_value is not None and units > chosen.to_value:
        return Decimal(0)
    return units * chosen.per_unit + chosen.flat
