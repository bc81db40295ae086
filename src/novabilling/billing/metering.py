"""Usage and customer pricing for period invoices (contract invoice-composition.md steps
1-3, charges.md "Which usage an invoice bills", plan-overrides.md "Billing rules").

``meter(session, dues)`` loads, for many subscriptions at once, what their period
invoices carry besides the plan's own price: the override price, the usage of the period
that ended (``usage.rating``: one aggregation per charge for the whole lot) minus what
earlier invoices of that period already billed (``invoices.billed``: interim invoices),
and the minimum commitment with what already counts towards it. Used by renewals one by
one, by the bulk renewal path (one call per chunk) and by the last invoice of an ending
subscription; ``usage_lines`` is the same subtraction for interim invoices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.invoices import builder
from novabilling.invoices.billed import Billed, billed_for_periods
from novabilling.usage import overrides as plan_overrides
from novabilling.usage.rating import Rated, Subject, minor_of_e4, rate

__all__ = ["Due", "Metered", "Subscribed", "meter", "usage_lines"]


class Subscribed(Protocol):
    """What metering reads of a subscription (an ORM row or a Core row)."""

    @property
    def id(self) -> str: ...
    @property
    def customer_id(self) -> str: ...
    @property
    def plan_id(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...


@dataclass(frozen=True)
class Due:
    """One period invoice to meter: the usage period P and whether the invoice's own plan
    line is P's fee (IN_ARREARS) or not (IN_ADVANCE: P's fee was billed earlier)."""

    sub: Subscribed
    window: tuple[datetime, datetime] | None  # None: no usage (an opening IN_ADVANCE fee)
    fee_included: bool
    plan_minimum_e4: int | None = None


@dataclass(frozen=True)
class Metered:
    usage: tuple[builder.UsageCharge, ...] = ()
    commitment: builder.Commitment | None = None
    price_minor: int | None = None  # the customer's override price, if any


def usage_lines(
    rated: Iterable[Rated], billed: Billed, window: tuple[datetime, datetime]
) -> list[builder.UsageCharge]:
    """Each (charge, bucket) billed once: what it costs now minus what earlier invoices of
    the period billed; a negative difference corrects an over-billing. (What was billed
    for a charge since removed from the plan stands.)"""
    lines: list[builder.UsageCharge] = []
    for entry in rated:
        due = entry.amount_minor - billed.usage.get((entry.charge_id, entry.bucket), 0)
        if due:
            lines.append(
                builder.UsageCharge(
                    charge_id=entry.charge_id,
                    description=entry.description,
                    units=entry.units,
                    amount_minor=due,
                    window=window,
                    bucket=entry.bucket,
                )
            )
    return lines


async def meter(session: AsyncSession, dues: Sequence[Due]) -> dict[str, Metered]:
    """Per subscription id: override price, usage lines and commitment of its invoice."""
    if not dues:
        return {}
    found = await plan_overrides.for_pairs(
        session, {(d.sub.customer_id, d.sub.plan_id) for d in dues}
    )
    subjects = [
        Subject(
            subscription_id=d.sub.id,
            customer_id=d.sub.customer_id,
            plan_id=d.sub.plan_id,
            currency=d.sub.currency.upper(),
            window=d.window,
            started_at=d.sub.started_at,
        )
        for d in dues
        if d.window is not None
    ]
    rated = await rate(session, subjects, overrides=found)
    billed = await billed_for_periods(
        session, [(d.sub.id, d.window[0]) for d in dues if d.window is not None]
    )
    out: dict[str, Metered] = {}
    for d in dues:
        currency = d.sub.currency.upper()
        override = found.get((d.sub.customer_id, d.sub.plan_id))
        price = plan_overrides.price_minor(override, currency)
        if d.window is None:
            out[d.sub.id] = Metered(price_minor=price)
            continue
        before = billed[(d.sub.id, d.window[0])]
        minimum_e4 = plan_overrides.minimum_e4(override)
        if minimum_e4 is None:
            minimum_e4 = d.plan_minimum_e4
        commitment = (
            builder.Commitment(
                minimum_minor=minor_of_e4(minimum_e4, currency),
                counted_minor=before.fee_minor + before.usage_minor,
                fee_included=d.fee_included,
            )
            if minimum_e4
            else None
        )
        out[d.sub.id] = Metered(
            usage=tuple(usage_lines(rated[d.sub.id], before, d.window)),
            commitment=commitment,
            price_minor=price,
        )
    return out
