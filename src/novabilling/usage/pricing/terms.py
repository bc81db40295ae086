"""What a pricing model reads: the charge's ``properties`` (after overrides and filter
overlays) and its ranges, as exact decimals (contract charges.md, "Model settings")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from novabilling.errors import Invalid
from novabilling.kit.money import parse_amount
from novabilling.usage.charge_rules import RangeSpec

__all__ = ["Terms"]


@dataclass(frozen=True)
class Terms:
    properties: Mapping[str, Any] = field(default_factory=dict)
    ranges: tuple[RangeSpec, ...] = ()

    def number(self, key: str, default: Decimal = Decimal(0)) -> Decimal:
        """``properties[key]`` as an exact decimal: a number or a numeric string
        (``"0.10"``); missing or anything else is ``default``."""
        value = self.properties.get(key)
        if value is None:
            return default
        try:
            return parse_amount(value, field=key)
        except Invalid:
            return default
