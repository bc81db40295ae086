"""Plans and plan prices (contract plans.md).

Called by other domains: ``get_plan``, ``prices_of``, ``price_for`` and ``plan_out`` (wire
dict for embedding, re-exported from ``schemas``).
"""

from __future__ import annotations

from decimal import Decimal

import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.errors import BusinessRule, Conflict, Invalid, NotFound
from novabilling.kit.clock import Clock
from novabilling.kit.money import MAX_MINOR, normalize_code, parse_amount, to_minor
from novabilling.plans import repository
from novabilling.plans.models import Plan, PlanPrice
from novabilling.plans.schemas import E4, PlanCreate, PlanPatch, plan_out

__all__ = [
    "add_price",
    "create_plan",
    "delete_plan",
    "delete_price",
    "get_plan",
    "list_plans",
    "plan_out",
    "price_for",
    "prices_of",
    "update_plan",
    "update_price",
]

log = structlog.get_logger(__name__)


def _to_e4(value: Decimal | None, *, field: str) -> int | None:
    """A currency-less decimal >= 0 with at most 4 decimals, scaled by 10**4."""
    if value is None:
        return None
    amount = parse_amount(value, field=field)
    scaled = amount * E4
    if scaled != scaled.to_integral_value():
        raise Invalid(field, f"{field} must have at most 4 decimal places")
    if scaled < 0:
        raise Invalid(field, f"{field} must not be less than 0")
    if scaled >= MAX_MINOR:
        raise Invalid(field, f"{field} is too large")
    return int(scaled)


def _price_minor(currency: str, amount: Decimal, *, prefix: str = "") -> tuple[str, int]:
    """(upper-cased code, minor units) or ``Invalid`` naming ``{prefix}currency|amount``."""
    code = normalize_code(currency, field=f"{prefix}currency")
    minor = to_minor(amount, code, field=f"{prefix}amount", currency_field=f"{prefix}currency")
    return code, minor


get_plan = repository.get
prices_of = repository.prices_of
price_for = repository.price_for


async def list_plans(
    session: AsyncSession, *, is_active: bool | None
) -> list[tuple[Plan, list[PlanPrice]]]:
    plans = await repository.newest(session, is_active=is_active)
    prices = await prices_of(session, [p.id for p in plans])
    return [(p, prices[p.id]) for p in plans]


async def create_plan(
    session: AsyncSession, *, body: PlanCreate, clock: Clock
) -> tuple[Plan, list[PlanPrice]]:
    converted: list[tuple[str, int]] = []
    for index, item in enumerate(body.prices):
        code, minor = _price_minor(item.currency, item.amount, prefix=f"prices.{index}.")
        if any(code == seen for seen, _ in converted):
            raise Invalid(f"prices.{index}.currency", f"currency {code} is listed twice")
        converted.append((code, minor))
    threshold = _to_e4(body.progressive_billing_threshold, field="progressiveBillingThreshold")
    if await session.scalar(select(Plan.id).where(Plan.code == body.code)):
        raise Conflict(f"Plan with code {body.code} already exists")
    now = clock.now()
    plan = Plan(
        name=body.name,
        code=body.code,
        description=body.description,
        billing_interval=body.billing_interval,
        billing_timing=body.billing_timing,
        features=list(body.features),
        is_active=True,
        net_payment_terms=body.net_payment_terms,
        invoice_grace_period_days=body.invoice_grace_period_days,
        progressive_billing_threshold_e4=threshold,
        created_at=now,
        updated_at=now,
    )
    session.add(plan)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Plan with code {body.code} already exists") from exc
    prices = [
        PlanPrice(
            plan_id=plan.id, currency=code, amount_minor=minor, created_at=now, updated_at=now
        )
        for code, minor in converted
    ]
    session.add_all(prices)
    await session.flush()
    log.info("plan.created", plan_id=plan.id, prices=len(prices))
    return plan, (await prices_of(session, [plan.id]))[plan.id]


async def update_plan(
    session: AsyncSession, plan_id: str, *, body: PlanPatch, clock: Clock
) -> tuple[Plan, list[PlanPrice]]:
    nulls = body.explicit_nulls()
    if nulls:
        raise Invalid(nulls[0], f"{nulls[0]} should not be null")
    plan = await get_plan(session, plan_id)
    changes = body.model_dump(exclude_unset=True)
    if "progressive_billing_threshold" in changes:
        plan.progressive_billing_threshold_e4 = _to_e4(
            body.progressive_billing_threshold, field="progressiveBillingThreshold"
        )
    for name in (
        "name",
        "description",
        "billing_interval",
        "billing_timing",
        "features",
        "is_active",
        "net_payment_terms",
        "invoice_grace_period_days",
    ):
        if name in changes:
            setattr(plan, name, changes[name])
    plan.updated_at = clock.now()
    await session.flush()
    log.info("plan.updated", plan_id=plan.id, fields=sorted(changes))
    prices = await prices_of(session, [plan.id])
    return plan, prices[plan.id]


async def delete_plan(session: AsyncSession, plan_id: str) -> None:
    """Deletes the plan and its prices; 400 while any subscription references it (the
    subscriptions' foreign key decides, so a subscription created meanwhile counts)."""
    plan = await get_plan(session, plan_id)
    await session.execute(delete(PlanPrice).where(PlanPrice.plan_id == plan.id))
    await session.delete(plan)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise BusinessRule(
            "Cannot delete a plan used by subscriptions; deactivate it with isActive: false"
        ) from exc
    log.info("plan.deleted", plan_id=plan_id)


async def add_price(
    session: AsyncSession, plan_id: str, *, currency: str, amount: Decimal, clock: Clock
) -> PlanPrice:
    code, minor = _price_minor(currency, amount)
    plan = await get_plan(session, plan_id)
    if await price_for(session, plan.id, code) is not None:
        raise Conflict(f"Plan already has a price in {code}")
    now = clock.now()
    price = PlanPrice(
        plan_id=plan.id, currency=code, amount_minor=minor, created_at=now, updated_at=now
    )
    session.add(price)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Plan already has a price in {code}") from exc
    log.info("plan.price_added", plan_id=plan.id, currency=code)
    return price


async def _price_on_plan(session: AsyncSession, plan_id: str, price_id: str) -> PlanPrice:
    price = await session.scalar(
        select(PlanPrice).where(PlanPrice.id == price_id, PlanPrice.plan_id == plan_id)
    )
    if price is None:
        await get_plan(session, plan_id)
        raise NotFound("Plan price not found")
    return price


async def update_price(
    session: AsyncSession,
    plan_id: str,
    price_id: str,
    *,
    amount: Decimal | None,
    clock: Clock,
) -> PlanPrice:
    """A missing amount changes nothing (contract: the body is otherwise unvalidated)."""
    price = await _price_on_plan(session, plan_id, price_id)
    if amount is not None:
        price.amount_minor = to_minor(amount, price.currency, field="amount")
        price.updated_at = clock.now()
        await session.flush()
        log.info("plan.price_updated", plan_id=plan_id, price_id=price_id)
    return price


async def delete_price(session: AsyncSession, plan_id: str, price_id: str) -> None:
    price = await _price_on_plan(session, plan_id, price_id)
    await session.delete(price)
    await session.flush()
    log.info("plan.price_deleted", plan_id=plan_id, price_id=price_id)
