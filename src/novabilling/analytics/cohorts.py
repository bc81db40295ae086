"""Churn cohorts (contract analytics.md, ``GET /api/analytics/churn-cohorts``).

The last N calendar months (UTC) ending with the current one. A month's cohort: the
distinct customers with a subscription created in it. Its retention at the end of each
month from the cohort month on: the share of the cohort with a subscription created by
that month's end that is ACTIVE or TRIALING now, or was canceled after that month's end.

One statement, whatever N: the cohorts (distinct customer and cohort month of the
subscriptions created in the window) joined to each customer's retention per month (one
0/1 column per month end, aggregated over their subscriptions), summed per cohort month.
Month numbers come from a CASE over the month boundaries and month ends are bound
parameters: the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.kit.db import UTCDateTime
from novabilling.kit.money import decimal_number
from novabilling.subscriptions.models import Subscription

__all__ = ["churn_cohorts", "month_starts"]


def month_starts(now: datetime, count: int) -> list[datetime]:
    """The first instants of the last ``count`` months up to ``now``'s, and of the month
    after (``count + 1`` boundaries, oldest first)."""
    now = now.astimezone(UTC)
    index = now.year * 12 + now.month - 1 - (count - 1)
    return [
        datetime((index + k) // 12, (index + k) % 12 + 1, 1, tzinfo=UTC) for k in range(count + 1)
    ]


def _month_of(column: Any, bounds: list[datetime]) -> ColumnElement[int]:
    """0 .. len(bounds)-2: which month ``[bounds[k], bounds[k+1])`` the value falls in."""
    whens = [(column < bounds[k + 1], k) for k in range(len(bounds) - 1)]
    return case(*whens, else_=len(bounds) - 1)


def _members(bounds: list[datetime]) -> Any:
    """(customer, cohort month): customers with a subscription created in the window."""
    month = _month_of(Subscription.created_at, bounds).label("month")
    return (
        select(Subscription.customer_id, month)
        .where(Subscription.created_at >= bounds[0], Subscription.created_at < bounds[-1])
        .distinct()
        .subquery("members")
    )


def _alive(bounds: list[datetime]) -> Any:
    """Per customer, one 0/1 column per month k: retained at the end of month k (instant
    ``bounds[k + 1]``), i.e. some subscription of theirs was created before it and is
    ACTIVE or TRIALING now or was canceled at or after it. One pass over the
    subscriptions, grouped by customer (no row per customer and month)."""
    live = Subscription.status.in_(("ACTIVE", "TRIALING"))
    columns = []
    for k in range(len(bounds) - 1):
        at = literal(bounds[k + 1], UTCDateTime())
        kept = and_(Subscription.created_at < at, or_(live, Subscription.canceled_at >= at))
        columns.append(func.max(case((kept, 1), else_=0)).label(f"a{k}"))
    return (
        select(Subscription.customer_id, *columns)
        .where(Subscription.created_at < bounds[-1])
        .group_by(Subscription.customer_id)
        .subquery("alive")
    )


async def _counts(
    session: AsyncSession, bounds: list[datetime]
) -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    """Cohort sizes per month, and retained customers per (cohort month, month)."""
    months = len(bounds) - 1
    members = _members(bounds)
    alive = _alive(bounds)
    stmt = (
        select(
            members.c.month,
            func.count(),
            *(func.sum(alive.c[f"a{k}"]) for k in range(months)),
        )
        .join(alive, alive.c.customer_id == members.c.customer_id)
        .group_by(members.c.month)
    )
    sizes: dict[int, int] = {}
    kept: dict[tuple[int, int], int] = {}
    for row in await session.execute(stmt):
        month = int(row[0])
        sizes[month] = int(row[1])
        for k in range(month, months):
            kept[(month, k)] = int(row[2 + k] or 0)
    return sizes, kept


async def churn_cohorts(session: AsyncSession, *, now: datetime, months: int) -> dict[str, Any]:
    bounds = month_starts(now, months)
    labels = [f"{b.year:04d}-{b.month:02d}" for b in bounds[:-1]]
    sizes, kept = await _counts(session, bounds)
    cohorts = []
    for i, label in enumerate(labels):
        size = sizes.get(i, 0)
        percentages = (
            [
                decimal_number(Decimal(kept.get((i, k), 0) * 100) / Decimal(size))
                for k in range(i, months)
            ]
            if size
            else []
        )
        cohorts.append(
            {"month": label, "totalCustomers": size, "retentionPercentages": percentages}
        )
    return {"months": labels, "cohorts": cohorts}
