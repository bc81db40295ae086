"""STANDARD: units x ``amount``."""

from __future__ import annotations

from decimal import Decimal

from novabilling.usage.pricing.terms import Terms


def cost(units: Decimal, terms: Terms) -> Decimal:
    return units * terms.number("amount")
