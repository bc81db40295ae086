"""The SQL of the reports: every figure is an aggregate computed by the tenant database,
returned as a few rows per currency (never the invoices, payments or subscriptions
themselves). Money comes back as sums of integer minor units.

Indexes these lean on (tenant migration 0009; docs/benchmarks.md, "Analytics"):
``ix_invoices_status_paid_at`` (revenue, customers, LTV), ``ix_invoices_status_created_at``
and ``ix_payments_status_created_at`` and ``ix_credit_notes_status_created_at`` (net
revenue), ``ix_payments_created_at_id`` (payment counts), ``ix_subscriptions_created_at_id``
(new MRR, cohorts), ``uq_plan_prices_plan_id_currency`` (MRR).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from novabilling.customers.models import Customer
from novabilling.invoices.models import PAID, CreditNote, Invoice
from novabilling.kit.db import UTCDateTime
from novabilling.payments.models import FAILED, REFUNDED, SUCCEEDED, Payment
from novabilling.plans.models import Plan, PlanPrice
from novabilling.subscriptions.models import Subscription

__all__ = [
    "MrrRow",
    "Span",
    "credit_notes",
    "customer_counts",
    "lifespans",
    "mrr_rows",
    "paid_by_plan",
    "paid_invoices",
    "payment_counts",
    "plan_changes",
    "refunded_payments",
    "subscription_counts",
    "subscriptions_per_currency",
]

ACTIVE = "ACTIVE"
CANCELED = "CANCELED"


@dataclass(frozen=True)
class Span:
    """Inclusive bounds on an instant column (either may be open)."""

    start: datetime | None = None
    end: datetime | None = None

    def on(self, column: InstrumentedAttribute[Any]) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.start is not None:
            out.append(column >= self.start)
        if self.end is not None:
            out.append(column <= self.end)
        return out

    @property
    def open(self) -> bool:
        return self.start is None and self.end is None


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def paid_invoices(
    session: AsyncSession,
    *,
    paid: Span | None = None,
    created: Span | None = None,
    currency: str | None = None,
) -> list[tuple[str, int, int]]:
    """PAID invoices: ``(currency, total minor units, count)`` per currency."""
    stmt = select(Invoice.currency, func.sum(Invoice.total_minor), func.count()).where(
        Invoice.status == PAID
    )
    if paid is not None:
        stmt = stmt.where(*paid.on(Invoice.paid_at))
    if created is not None:
        stmt = stmt.where(*created.on(Invoice.created_at))
    if currency is not None:
        stmt = stmt.where(Invoice.currency == currency)
    rows = await session.execute(stmt.group_by(Invoice.currency))
    return [(c, int(s or 0), int(n)) for c, s, n in rows]


@dataclass(frozen=True)
class MrrRow:
    plan_id: str
    plan_name: str
    interval: str
    currency: str
    price_minor: int  # sum over the subscriptions of the row
    count: int


def _priced(stmt: Any, *, plan_column: Any = None) -> Any:
    """Join each subscription to its plan and the plan's price in its currency (a
    subscription without one is left out, as in the original)."""
    plan_id = plan_column if plan_column is not None else Subscription.plan_id
    return stmt.join(Plan, Plan.id == plan_id).join(
        PlanPrice,
        and_(PlanPrice.plan_id == plan_id, PlanPrice.currency == Subscription.currency),
    )


async def mrr_rows(
    session: AsyncSession,
    *,
    status: str = ACTIVE,
    created_since: datetime | None = None,
    canceled: Span | None = None,
) -> list[MrrRow]:
    """Plan prices of the subscriptions in ``status`` (optionally created since, or
    canceled within a span), summed per plan, interval and currency."""
    stmt = _priced(
        select(
            Plan.id,
            Plan.name,
            Plan.billing_interval,
            Subscription.currency,
            func.sum(PlanPrice.amount_minor),
            func.count(),
        )
    ).where(Subscription.status == status)
    if created_since is not None:
        stmt = stmt.where(Subscription.created_at >= created_since)
    if canceled is not None:
        stmt = stmt.where(*canceled.on(Subscription.canceled_at))
    stmt = stmt.group_by(Plan.id, Plan.name, Plan.billing_interval, Subscription.currency)
    rows = await session.execute(stmt)
    return [MrrRow(p, n, i, c, int(s or 0), int(k)) for p, n, i, c, s, k in rows]


async def plan_changes(session: AsyncSession, *, since: datetime) -> list[tuple[str, int, int]]:
    """ACTIVE subscriptions with a previous plan, updated since ``since``: per currency,
    the sum of price increases and the sum of decreases (new minus previous plan price,
    raw prices, contract), in minor units."""
    new_price = aliased(PlanPrice)
    old_price = aliased(PlanPrice)
    up = new_price.amount_minor - old_price.amount_minor
    stmt = (
        select(
            Subscription.currency,
            func.sum(case((up > 0, up), else_=0)),
            func.sum(case((up < 0, -up), else_=0)),
        )
        .join(
            new_price,
            and_(
                new_price.plan_id == Subscription.plan_id,
                new_price.currency == Subscription.currency,
            ),
        )
        .join(
            old_price,
            and_(
                old_price.plan_id == Subscription.previous_plan_id,
                old_price.currency == Subscription.currency,
            ),
        )
        .where(
            Subscription.status == ACTIVE,
            Subscription.previous_plan_id.is_not(None),
            Subscription.updated_at >= since,
        )
        .group_by(Subscription.currency)
    )
    rows = await session.execute(stmt)
    return [(c, int(e or 0), int(k or 0)) for c, e, k in rows]


@dataclass(frozen=True)
class SubscriptionCounts:
    total: int
    active: int
    trialing: int
    paused: int
    canceled_in_range: int
    created_in_range: int


async def subscription_counts(session: AsyncSession, *, created: Span) -> SubscriptionCounts:
    in_range = and_(*created.on(Subscription.created_at)) if not created.open else None
    created_count = _count_if(in_range) if in_range is not None else func.count()
    canceled = Subscription.status == CANCELED
    canceled_count = _count_if(and_(canceled, in_range) if in_range is not None else canceled)
    row = (
        await session.execute(
            select(
                func.count(),
                _count_if(Subscription.status == ACTIVE),
                _count_if(Subscription.status == "TRIALING"),
                _count_if(Subscription.status == "PAUSED"),
                canceled_count,
                created_count,
            ).select_from(Subscription)
        )
    ).one()
    return SubscriptionCounts(*(int(v or 0) for v in row))


async def customer_counts(session: AsyncSession, *, created: Span) -> tuple[int, int]:
    """(all customers, customers created in the span)."""
    in_range = func.count() if created.open else _count_if(and_(*created.on(Customer.created_at)))
    row = (await session.execute(select(func.count(), in_range).select_from(Customer))).one()
    return int(row[0] or 0), int(row[1] or 0)


async def payment_counts(
    session: AsyncSession, *, created: Span, provider: str | None
) -> tuple[int, int, int]:
    """(payments created in the span, of which SUCCEEDED, of which FAILED)."""
    stmt = select(
        func.count(), _count_if(Payment.status == SUCCEEDED), _count_if(Payment.status == FAILED)
    ).where(*created.on(Payment.created_at))
    if provider is not None:
        stmt = stmt.where(Payment.provider == provider)
    row = (await session.execute(stmt)).one()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


async def refunded_payments(session: AsyncSession, *, created: Span) -> list[tuple[str, int]]:
    """REFUNDED payments created in the span: (currency, full payment amounts) - the
    contract's "full amount of REFUNDED payments", also for a partial refund."""
    stmt = (
        select(Payment.currency, func.sum(Payment.amount_minor))
        .where(Payment.status == REFUNDED, *created.on(Payment.created_at))
        .group_by(Payment.currency)
    )
    return [(c, int(s or 0)) for c, s in (await session.execute(stmt))]


async def credit_notes(session: AsyncSession, *, created: Span) -> list[tuple[str, int]]:
    """FINALIZED credit notes created in the span: (currency, amounts)."""
    stmt = (
        select(CreditNote.currency, func.sum(CreditNote.amount_minor))
        .where(CreditNote.status == "FINALIZED", *created.on(CreditNote.created_at))
        .group_by(CreditNote.currency)
    )
    return [(c, int(s or 0)) for c, s in (await session.execute(stmt))]


def _lifespan_days(dialect: str, now: datetime) -> ColumnElement[Any]:
    """Days from ``created_at`` to ``canceled_at`` (or ``now``), at least 1 (fractional)."""
    end = func.coalesce(Subscription.canceled_at, literal(now, UTCDateTime()))
    if dialect == "postgresql":
        seconds = func.extract("epoch", end - Subscription.created_at)
        return func.greatest(1, seconds / 86400)
    return func.max(1, func.julianday(end) - func.julianday(Subscription.created_at))


async def lifespans(session: AsyncSession, *, now: datetime) -> list[tuple[str, str, int, Decimal]]:
    """Per current plan: (plan id, name, subscriptions, sum of their lifespans in days)."""
    days = _lifespan_days(session.get_bind().dialect.name, now)
    stmt = (
        select(Plan.id, Plan.name, func.count(), func.sum(days))
        .join(Plan, Plan.id == Subscription.plan_id)
        .group_by(Plan.id, Plan.name)
    )
    rows = await session.execute(stmt)
    return [(p, n, int(k), Decimal(str(d or 0))) for p, n, k, d in rows]


async def paid_by_plan(session: AsyncSession) -> list[tuple[str, str, int]]:
    """PAID invoices of subscriptions, per current plan and currency: (plan, currency,
    minor units)."""
    stmt = (
        select(Subscription.plan_id, Invoice.currency, func.sum(Invoice.total_minor))
        .join(Subscription, Subscription.id == Invoice.subscription_id)
        .where(Invoice.status == PAID)
        .group_by(Subscription.plan_id, Invoice.currency)
    )
    return [(p, c, int(s or 0)) for p, c, s in (await session.execute(stmt))]


async def subscriptions_per_currency(session: AsyncSession) -> Sequence[tuple[str, int]]:
    stmt = select(Subscription.currency, func.count()).group_by(Subscription.currency)
    return [(c, int(n)) for c, n in (await session.execute(stmt))]
