"""Queries of the subscriptions domain (STYLE §2): read queries for the billing engine and
the other domains, which reach them through ``subscriptions.service`` (re-exported)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, ScalarSelect, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from novabilling.subscriptions.models import PendingInvoiceItem, Subscription
from novabilling.subscriptions.transitions import Status

__all__ = [
    "active_count_of",
    "count_active",
    "count_for_plan",
    "due_for_renewal",
    "due_for_retry",
    "pending_items",
    "subscriptions_of_customer",
]

_RENEWABLE = (Status.ACTIVE.value, Status.PAST_DUE.value, Status.TRIALING.value)


async def due_for_renewal(
    session: AsyncSession, *, now: datetime, limit: int, skip_locked: bool = False
) -> list[Subscription]:
    """Subscriptions with work due at ``now``, oldest period end first: ACTIVE / PAST_DUE
    whose period ended, TRIALING whose trial ended (``current_period_end == trial_end``),
    and any live one whose ``cancel_at`` passed. ``due_action`` says which.
    ``skip_locked`` adds ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; ignored by SQLite)."""
    stmt = (
        select(Subscription)
        .where(
            or_(
                and_(
                    Subscription.status.in_(_RENEWABLE),
                    Subscription.current_period_end <= now,
                ),
                and_(
                    Subscription.cancel_at <= now,
                    Subscription.status != Status.CANCELED.value,
                ),
            )
        )
        .order_by(Subscription.current_period_end, Subscription.id)
        .limit(limit)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return list(await session.scalars(stmt))


async def due_for_retry(session: AsyncSession, *, now: datetime, limit: int) -> list[Subscription]:
    """PAST_DUE subscriptions whose ``next_retry_at`` passed (dunning)."""
    stmt = (
        select(Subscription)
        .where(Subscription.status == Status.PAST_DUE.value, Subscription.next_retry_at <= now)
        .order_by(Subscription.next_retry_at, Subscription.id)
        .limit(limit)
    )
    return list(await session.scalars(stmt))


async def pending_items(session: AsyncSession, subscription_id: str) -> list[PendingInvoiceItem]:
    """Proration lines not yet on an invoice (oldest first); the invoice engine sets
    ``invoice_id`` on each one it bills, in the invoice's transaction."""
    stmt = (
        select(PendingInvoiceItem)
        .where(
            PendingInvoiceItem.subscription_id == subscription_id,
            PendingInvoiceItem.invoice_id.is_(None),
        )
        .order_by(PendingInvoiceItem.created_at, PendingInvoiceItem.id)
    )
    return list(await session.scalars(stmt))


async def count_active(session: AsyncSession, *, customer_id: str | None = None) -> int:
    """ACTIVE subscriptions (of one customer when given)."""
    stmt = select(func.count()).where(Subscription.status == Status.ACTIVE.value)
    if customer_id is not None:
        stmt = stmt.where(Subscription.customer_id == customer_id)
    return int(await session.scalar(stmt.select_from(Subscription)) or 0)


def active_count_of(
    customer_id: ColumnElement[str] | InstrumentedAttribute[str],
) -> ScalarSelect[int]:
    """Correlated ``count(*)`` of the ACTIVE subscriptions of ``customer_id`` (a column of
    the outer query), to select alongside customers in one statement."""
    return (
        select(func.count())
        .select_from(Subscription)
        .where(
            Subscription.customer_id == customer_id,
            Subscription.status == Status.ACTIVE.value,
        )
        .scalar_subquery()
    )


async def subscriptions_of_customer(session: AsyncSession, customer_id: str) -> list[Subscription]:
    """All of a customer's subscriptions, newest first."""
    stmt = (
        select(Subscription)
        .where(Subscription.customer_id == customer_id)
        .order_by(Subscription.created_at.desc(), Subscription.id.desc())
    )
    return list(await session.scalars(stmt))


async def count_for_plan(session: AsyncSession, plan_id: str) -> int:
    """Subscriptions (any status) referencing the plan (``_count.subscriptions``)."""
    found = await session.scalar(
        select(func.count()).select_from(Subscription).where(Subscription.plan_id == plan_id)
    )
    return int(found or 0)
