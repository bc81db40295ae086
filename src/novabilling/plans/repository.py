"""Queries of the plans domain (STYLE §2): plans and their per-currency prices."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.errors import NotFound
from novabilling.kit.pagination import newest_first
from novabilling.plans.models import Plan, PlanPrice


async def get(session: AsyncSession, plan_id: str) -> Plan:
    """The plan or ``NotFound("Plan not found")``."""
    plan = await session.get(Plan, plan_id)
    if plan is None:
        raise NotFound("Plan not found")
    return plan


async def newest(session: AsyncSession, *, is_active: bool | None) -> list[Plan]:
    stmt = select(Plan).order_by(*newest_first(Plan))
    if is_active is not None:
        stmt = stmt.where(Plan.is_active.is_(is_active))
    return list(await session.scalars(stmt))


async def prices_of(session: AsyncSession, plan_ids: list[str]) -> dict[str, list[PlanPrice]]:
    """Prices per plan id (every id present, oldest price first)."""
    out: dict[str, list[PlanPrice]] = {pid: [] for pid in plan_ids}
    if not plan_ids:
        return out
    rows = await session.scalars(
        select(PlanPrice)
        .where(PlanPrice.plan_id.in_(plan_ids))
        .order_by(PlanPrice.created_at, PlanPrice.id)
    )
    for price in rows:
        out[price.plan_id].append(price)
    return out


async def price_for(session: AsyncSession, plan_id: str, currency: str) -> PlanPrice | None:
    """The plan's price in ``currency`` (matched case-insensitively), or None."""
    return await session.scalar(
        select(PlanPrice).where(
            PlanPrice.plan_id == plan_id, PlanPrice.currency == currency.upper()
        )
    )
