"""Proration of a plan change in the middle of a period, in integer minor units.

The share of a period is measured in whole microseconds and every result is one exact
integer division (no floats, no Decimal division):

- ``unused_credit``: what the customer paid for the rest of the period, rounded DOWN,
  so the credit is never more than was paid and never negative;
- ``remaining_charge``: the new price for the rest of the period, rounded half-up;
- ``change_plan``: both, plus the net amount (positive: charge the customer; negative:
  credit them).

All amounts are minor units of one currency; mixing currencies is the caller's error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Proration", "change_plan", "remaining_charge", "unused_credit"]

_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Proration:
    credit_minor: int
    charge_minor: int
    net_minor: int


def _remaining_share(period_start: datetime, period_end: datetime, at: datetime) -> tuple[int, int]:
    """(remaining microseconds, total microseconds) of the period as seen from ``at``."""
    for name, value in (("period_start", period_start), ("period_end", period_end), ("at", at)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")
    total = (period_end - period_start) // _MICROSECOND
    if total <= 0:
        raise ValueError("period_end must be after period_start")
    if not period_start <= at <= period_end:
        raise ValueError(
            f"at {at.isoformat()} is outside the period "
            f"[{period_start.isoformat()}, {period_end.isoformat()}]"
        )
    return (period_end - at) // _MICROSECOND, total


def _amount(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int of minor units")
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


def unused_credit(
    paid_minor: int, period_start: datetime, period_end: datetime, at: datetime
) -> int:
    """Credit for the unused part ``[at, period_end)`` of a period paid ``paid_minor``.

    ``floor(paid * remaining / total)``: 0 <= credit <= paid.
    """
    paid = _amount(paid_minor, "paid_minor")
    remaining, total = _remaining_share(period_start, period_end, at)
    return paid * remaining // total


def remaining_charge(
    new_price_minor: int, period_start: datetime, period_end: datetime, at: datetime
) -> int:
    """Charge for ``[at, period_end)`` at a full-period price of ``new_price_minor``.

    ``price * remaining / total`` rounded half-up: 0 <= charge <= price.
    """
    price = _amount(new_price_minor, "new_price_minor")
    remaining, total = _remaining_share(period_start, period_end, at)
    return (2 * price * remaining + total) // (2 * total)


def change_plan(
    old_paid_minor: int,
    new_price_minor: int,
    period_start: datetime,
    period_end: datetime,
    at: datetime,
) -> Proration:
    """Credit for the old plan's unused time, charge for the new plan's remaining time.

    ``net_minor = charge_minor - credit_minor``.
    """
    credit = unused_credit(old_paid_minor, period_start, period_end, at)
    charge = remaining_charge(new_price_minor, period_start, period_end, at)
    return Proration(credit_minor=credit, charge_minor=charge, net_minor=charge - credit)
