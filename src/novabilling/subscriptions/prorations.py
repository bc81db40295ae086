"""Proration lines of a re-anchor (upgrade, resume), in integer minor units.

When a subscription's period restarts at ``now`` and its old period stopped being used at
``cut``, the money of the old period is settled on the next invoice:

- ``IN_ADVANCE`` (the old period was billed up front): a credit (negative) for the unused
  part ``[cut, old_end)`` (``kit.proration.unused_credit``, rounded down) - only when that
  period was invoiced (``credit``): an unbilled period is never credited - and, when
  charging, the whole new period at the target price, which no renewal invoice covers
  because it starts off the old schedule;
- ``IN_ARREARS`` (the old period was not invoiced yet): when charging, the used part
  ``[old_start, cut)`` at the old price (old price minus the unused credit, so the two
  parts of the old period always add up to its price exactly).

Pure: builds ``PendingInvoiceItem`` rows without a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from novabilling.kit.periods import period_bounds
from novabilling.kit.proration import unused_credit
from novabilling.kit.spans import share_description
from novabilling.subscriptions.models import PendingInvoiceItem, Subscription

__all__ = ["IN_ADVANCE", "PlanTarget", "proration_lines"]

IN_ADVANCE = "IN_ADVANCE"


@dataclass(frozen=True, slots=True)
class PlanTarget:
    """What a subscription needs from a plan: id, name, price snapshot, interval."""

    plan_id: str
    name: str
    amount_minor: int
    interval: str


def _line(
    sub: Subscription,
    kind: str,
    description: str,
    amount: int,
    span: tuple[datetime, datetime],
    now: datetime,
) -> PendingInvoiceItem:
    return PendingInvoiceItem(
        subscription_id=sub.id,
        customer_id=sub.customer_id,
        currency=sub.currency,
        kind=kind,
        description=description,
        amount_minor=amount,
        period_start=span[0],
        period_end=span[1],
        created_at=now,
    )


def proration_lines(
    sub: Subscription,
    *,
    now: datetime,
    cut: datetime,
    target: PlanTarget,
    old_name: str,
    charge: bool,
    credit: bool = True,
) -> list[PendingInvoiceItem]:
    """Lines settling ``sub``'s current period when it restarts at ``now`` on ``target``
    (``cut`` is clamped into the current period). Zero amounts are left out."""
    start, end = sub.current_period_start, sub.current_period_end
    if end <= start:
        return []
    cut = min(max(cut, start), end)
    unused = unused_credit(sub.amount_minor, start, end, cut)
    lines: list[PendingInvoiceItem] = []
    if sub.billing_timing == IN_ADVANCE:
        if unused and credit:
            text = share_description(f"Unused time on {old_name}", (cut, end), (start, end))
            lines.append(_line(sub, "proration_credit", text, -unused, (cut, end), now))
        if charge and target.amount_minor:
            span = period_bounds(now, target.interval, 0)
            text = share_description(target.name, span, span)
            lines.append(_line(sub, "proration_charge", text, target.amount_minor, span, now))
    elif charge and sub.amount_minor - unused:
        text = share_description(old_name, (start, cut), (start, end))
        used = sub.amount_minor - unused
        lines.append(_line(sub, "proration_charge", text, used, (start, cut), now))
    return lines
