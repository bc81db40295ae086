"""Pricing models of usage charges (contract charges.md, "Pricing"): one small module per
model, each ``cost(units, terms) -> Decimal`` in major units of the subscription's
currency, exact (no floats, no rounding here: the caller rounds each invoice line once,
half-up, in minor units). ``MODELS`` is the registry; ``cost`` looks a model up by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, localcontext

from novabilling.usage.pricing import graduated, package, percentage, standard, volume
from novabilling.usage.pricing.terms import Terms

__all__ = ["MODELS", "PRECISION", "Model", "Terms", "cost"]

Model = Callable[[Decimal, Terms], Decimal]
MODELS: Mapping[str, Model] = {
    "STANDARD": standard.cost,
    "GRADUATED": graduated.cost,
    "VOLUME": volume.cost,
    "PACKAGE": package.cost,
    "PERCENTAGE": percentage.cost,
}
PRECISION = 60  # digits: enough that no product or quotient here is ever rounded


def cost(model: str, units: Decimal, terms: Terms) -> Decimal:
    """The cost of ``units`` under ``model``; units <= 0 cost nothing (contract: no line
    and no minimum). An unknown model is a ``KeyError`` (the database allows only five)."""
    if units <= 0:
        return Decimal(0)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return MODELS[model](units, terms)
