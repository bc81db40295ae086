"""Invoice lines as values, and how they read: descriptions a customer understands and
the ``metadata.items`` entries of the wire (contract invoice-composition.md, "Line items").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from novabilling.kit.money import decimal_to_number, exponent, to_number
from novabilling.kit.timestamps import to_wire

__all__ = ["Line", "item_out", "period_description"]


@dataclass(frozen=True, slots=True)
class Line:
    """One invoice line; ``type`` None for a manual invoice's own items. ``usage`` lines
    carry their charge and bucket (``""`` the charge's own events, a charge filter id, or
    ``"minimum"``) and may bill fractional units."""

    type: str | None
    description: str
    quantity: int | Decimal
    unit_amount_minor: int
    amount_minor: int
    period_start: datetime | None = None
    period_end: datetime | None = None
    charge_id: str | None = None
    bucket: str | None = None

    @classmethod
    def single(
        cls,
        type: str,
        description: str,
        amount_minor: int,
        span: tuple[datetime, datetime] | None = None,
    ) -> Line:
        """A quantity-1 line (``unitAmount`` = ``amount``)."""
        start, end = span if span is not None else (None, None)
        return cls(type, description, 1, amount_minor, amount_minor, start, end)

    def manual_out(self, currency: str) -> dict[str, Any]:
        """A manual invoice's ``metadata.items`` entry, as the caller sent it."""
        return {
            "description": self.description,
            "quantity": self.quantity,
            "unitAmount": to_number(self.unit_amount_minor, currency),
        }


def _unit_amount(line: Line, currency: str) -> float | int:
    """``unitAmount`` of a usage line: amount / quantity, half-up to 4 decimals (display
    only; ``amount`` is authoritative)."""
    if line.quantity in (0, 1):
        return to_number(line.amount_minor, currency)
    scale = Decimal(10) ** -exponent(currency)
    unit = (Decimal(line.amount_minor) * scale / line.quantity).quantize(
        Decimal("0.0001"), rounding=ROUND_HALF_UP
    )
    return int(unit) if unit == unit.to_integral_value() else float(unit)


def item_out(line: Line, currency: str) -> dict[str, Any]:
    """A subscription invoice's ``metadata.items`` entry (JSON numbers)."""
    item: dict[str, Any] = {
        "description": line.description,
        "quantity": (
            decimal_to_number(line.quantity)
            if isinstance(line.quantity, Decimal)
            else line.quantity
        ),
        "unitAmount": (
            _unit_amount(line, currency)
            if line.type == "usage"
            else to_number(line.unit_amount_minor, currency)
        ),
        "amount": to_number(line.amount_minor, currency),
        "type": line.type,
    }
    if line.type == "usage":
        item["chargeId"] = line.charge_id
        item["periodStart"] = to_wire(line.period_start) if line.period_start else None
        item["periodEnd"] = to_wire(line.period_end) if line.period_end else None
    return item


def period_description(
    plan_name: str, interval: str, span: tuple[datetime, datetime], *, custom: bool = False
) -> str:
    """The ``plan`` line: ``<plan name> (<interval, lower case>)`` (contract), plus
    `` [custom pricing]`` for an override price."""
    text = f"{plan_name} ({interval.lower()})"
    return f"{text} [custom pricing]" if custom else text
