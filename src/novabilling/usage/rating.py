"""Rating: usage of many subscriptions priced by their plans' charges (contract
charges.md "Aggregation", "Pricing", "Filters"; plan-overrides.md "Billing rules").

``rate(session, subjects)`` prices each subject's window (its own period, or the part of
it so far) with a fixed number of statements whatever the number of subjects: the
charges of the plans involved, their metrics and filters, the overrides, and ONE
aggregation per charge over the (subscription, code, timestamp) index
(``aggregation.aggregate`` with per-subscription windows).

Every (charge, bucket) of the subject's plan gets an entry, priced or not (amount 0), so
the caller can subtract what earlier invoices billed and correct what no longer stands.
Buckets: ``""`` the charge's own events (the default bucket), a charge filter's id, and
``"minimum"`` (the shortfall to ``minAmountCents`` on the charge's total; only with
``minimums``). Amounts are minor units of the subject's currency, each entry rounded once,
half-up, from the exact cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.kit.money import decimal_to_wire, exponent, round_half_up
from novabilling.usage import pricing
from novabilling.usage.aggregation import MetricSpec, aggregate
from novabilling.usage.charge_rules import RangeSpec
from novabilling.usage.charges import ChargeView, views_of_plans
from novabilling.usage.models import PlanOverride
from novabilling.usage.overrides import charge_settings, for_pairs

__all__ = ["MINIMUM", "Rated", "Subject", "minor_of_e4", "rate"]

MINIMUM = "minimum"
E4 = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class Subject:
    """A subscription and the usage window to price."""

    subscription_id: str
    customer_id: str
    plan_id: str
    currency: str
    window: tuple[datetime, datetime]
    started_at: datetime | None = None  # recurring metrics aggregate from here


@dataclass(frozen=True, slots=True)
class Rated:
    """One bucket of one charge for one subject: units and amount (minor units)."""

    charge_id: str
    bucket: str
    description: str
    units: Decimal
    amount_minor: int
    timing: str


def minor_of_e4(value_e4: int, currency: str) -> int:
    """A decimal stored scaled by 10**4 (a minimum commitment) in minor units, half-up."""
    return round_half_up(Decimal(value_e4) / E4 * (Decimal(10) ** exponent(currency)))


def _ranges(view: ChargeView) -> tuple[RangeSpec, ...]:
    return tuple(
        RangeSpec(r.from_value, r.to_value, Decimal(r.per_unit_amount), Decimal(r.flat_amount))
        for r in view.ranges
    )


def _name(view: ChargeView, units: Decimal, suffix: str = "") -> str:
    if view.charge.invoice_display_name:
        return f"{view.charge.invoice_display_name}{suffix}"
    return f"{view.metric.name} ({decimal_to_wire(units)} units){suffix}"


def _window(view: ChargeView, subject: Subject) -> tuple[datetime, datetime]:
    """Recurring metrics carry their value over: aggregated from the subscription's
    start (contract Improve) instead of the period start."""
    if view.metric.recurring and subject.started_at is not None:
        return (min(subject.started_at, subject.window[0]), subject.window[1])
    return subject.window


Bucket = tuple[str, str, dict[str, Any]]  # (bucket id, name suffix, properties)


@dataclass(frozen=True, slots=True)
class _Terms:
    """A charge's pricing inputs as its plan sets them: the same for every subscription
    without an override, so made once per charge, not once per subscription."""

    buckets: tuple[Bucket, ...]
    ranges: tuple[RangeSpec, ...]


def _buckets(view: ChargeView, properties: dict[str, Any]) -> tuple[Bucket, ...]:
    out: list[Bucket] = [("", "", properties)]
    for f in view.filters:
        suffix = f" [{f.key}: {', '.join(f.values)}]"
        out.append((f.id, suffix, {**properties, **(f.properties or {})}))
    return tuple(out)


def _plan_terms(view: ChargeView) -> _Terms:
    return _Terms(_buckets(view, dict(view.charge.properties or {})), _ranges(view))


def _price(
    view: ChargeView,
    subject: Subject,
    units: Mapping[int, Decimal],
    settings: tuple[dict[str, Any] | None, tuple[RangeSpec, ...] | None] | None,
    *,
    minimums: bool,
    terms: _Terms,
) -> list[Rated]:
    """``terms``: ``_plan_terms(view)`` (``settings``, an override, replaces them)."""
    charge = view.charge
    buckets, ranges = terms.buckets, terms.ranges
    if settings is not None:
        properties: dict[str, Any] = dict(charge.properties or {})
        if settings[0] is not None:
            properties = dict(settings[0])
        if settings[1] is not None:
            ranges = settings[1]
        buckets = _buckets(view, properties)
    scale = Decimal(10) ** exponent(subject.currency)
    out: list[Rated] = []
    for index, (bucket, suffix, props) in enumerate(buckets):
        u = units.get(index, Decimal(0))
        cost = pricing.cost(charge.charge_model, u, pricing.Terms(props, ranges))
        amount = round_half_up(cost * scale) if cost > 0 else 0
        out.append(
            Rated(charge.id, bucket, _name(view, u, suffix), u, amount, charge.billing_timing)
        )
    if minimums:
        floor = charge.min_amount_cents or 0
        total_units = sum(units.values(), Decimal(0))
        priced = sum(r.amount_minor for r in out)
        shortfall = floor - priced if floor > 0 and total_units > 0 and priced < floor else 0
        label = charge.invoice_display_name or view.metric.name
        out.append(
            Rated(
                charge.id,
                MINIMUM,
                f"{label} (minimum)",
                Decimal(1),
                shortfall,
                charge.billing_timing,
            )
        )
    return out


async def rate(
    session: AsyncSession,
    subjects: Sequence[Subject],
    *,
    minimums: bool = True,
    timing: str | None = None,
    overrides: Mapping[tuple[str, str], PlanOverride] | None = None,
) -> dict[str, list[Rated]]:
    """Per subscription id: every (charge, bucket) entry of its plan's charges (only the
    charges billed ``timing``, when given). ``overrides`` by (customer, plan): loaded
    here when not given."""
    out: dict[str, list[Rated]] = {s.subscription_id: [] for s in subjects}
    if not subjects:
        return out
    plans = await views_of_plans(session, sorted({s.plan_id for s in subjects}))
    if not any(plans.values()):
        return out
    if overrides is None:
        overrides = await for_pairs(session, {(s.customer_id, s.plan_id) for s in subjects})
    by_plan: dict[str, list[Subject]] = {}
    for s in subjects:
        by_plan.setdefault(s.plan_id, []).append(s)
    for plan_id, views in plans.items():
        members = by_plan.get(plan_id, [])
        for view in views:
            if timing is not None and view.charge.billing_timing != timing:
                continue
            spec = MetricSpec(
                code=view.metric.code,
                aggregation=view.metric.aggregation_type,
                field_name=view.metric.field_name,
                filters=tuple((f.key, tuple(f.values)) for f in view.metric_filters),
            )
            units = await aggregate(
                session,
                metric=spec,
                windows={s.subscription_id: _window(view, s) for s in members},
                buckets=[(f.key, tuple(f.values)) for f in view.filters],
            )
            per_sub: dict[str, dict[int, Decimal]] = {}
            for (sid, index), value in units.items():
                per_sub.setdefault(sid, {})[index] = value
            terms = _plan_terms(view)
            for s in members:
                own = per_sub.get(s.subscription_id, {})
                override = overrides.get((s.customer_id, plan_id))
                settings = (
                    charge_settings(override).get(view.charge.id) if override is not None else None
                )
                out[s.subscription_id].extend(
                    _price(view, s, own, settings, minimums=minimums, terms=terms)
                )
    return out
