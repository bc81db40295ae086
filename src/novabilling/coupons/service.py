"""Coupons (contract coupons.md): the catalogue, applying one to a customer (optionally
to one subscription) and removing it.

Applying checks the contract's order, then claims a redemption with one conditional
UPDATE (``redemption_count < max_redemptions``) and inserts the applied coupon, whose
unique (coupon, customer) pair refuses a second application, so concurrent requests
can neither exceed ``maxRedemptions`` nor apply a coupon twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Select, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.coupons.models import FIXED_AMOUNT, PERCENTAGE, AppliedCoupon, Coupon
from novabilling.coupons.schemas import CouponApply, CouponCreate, CouponPatch
from novabilling.customers import service as customers
from novabilling.customers.models import Customer
from novabilling.errors import BusinessRule, FieldRule, Invalid, NotFound
from novabilling.kit import money
from novabilling.kit.clock import Clock
from novabilling.kit.ids import new_id
from novabilling.kit.pagination import newest_first, paginate
from novabilling.subscriptions.models import Subscription

__all__ = [
    "apply_coupon",
    "coupon_detail",
    "create_coupon",
    "delete_coupon",
    "get_coupon",
    "list_coupons",
    "remove_applied",
    "update_coupon",
]

log = structlog.get_logger(__name__)

E4 = 10_000
DETAIL_APPLIED = 20
TAKEN = "A coupon with this code already exists"


async def get_coupon(session: AsyncSession, coupon_id: str) -> Coupon:
    coupon = await session.get(Coupon, coupon_id)
    if coupon is None:
        raise NotFound("Coupon not found")
    return coupon


def _value_e4(body: CouponCreate, currency: str | None) -> int:
    value = body.discount_value
    if value < 0:
        raise Invalid("discountValue", "discountValue must not be less than 0")
    if body.discount_type == PERCENTAGE:
        if value > 100:
            raise FieldRule("discountValue", "Percentage discount must be between 0 and 100")
        e4 = value * E4
        if e4 != e4.to_integral_value():
            raise Invalid("discountValue", "discountValue must have at most 4 decimal places")
        return int(e4)
    if currency is None:
        raise FieldRule("currency", "Currency is required for fixed amount discounts")
    minor = money.to_minor(value, currency, field="discountValue")
    return minor * 10 ** (4 - money.exponent(currency))


async def create_coupon(session: AsyncSession, *, body: CouponCreate, clock: Clock) -> Coupon:
    """validation -> code taken (400) -> percentage above 100 -> fixed amount without
    currency; a fixed amount with more decimals than its currency allows is 400."""
    code = body.code.upper()
    currency = money.normalize_code(body.currency) if body.currency else None
    if currency is not None and body.discount_type == FIXED_AMOUNT:
        money.exponent(currency)
    if await session.scalar(select(Coupon.id).where(Coupon.code == code)) is not None:
        raise FieldRule("code", TAKEN)
    value_e4 = _value_e4(body, currency)
    now = clock.now()
    coupon = Coupon(
        id=new_id(),
        code=code,
        name=body.name,
        description=body.description,
        discount_type=body.discount_type,
        discount_value_e4=value_e4,
        currency=currency,
        max_redemptions=body.max_redemptions,
        redemption_count=0,
        applies_to_plan_ids=list(body.applies_to_plan_ids),
        is_active=True,
        expires_at=body.expires_at,
        created_at=body.created_at or now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(coupon)
    except IntegrityError as exc:
        raise FieldRule("code", TAKEN) from exc
    log.info("coupon.created", coupon_id=coupon.id, code=code)
    return coupon


async def _counts(session: AsyncSession, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    stmt = (
        select(AppliedCoupon.coupon_id, func.count())
        .where(AppliedCoupon.coupon_id.in_(ids))
        .group_by(AppliedCoupon.coupon_id)
    )
    return {k: int(v) for k, v in (await session.execute(stmt)).all()}


async def list_coupons(
    session: AsyncSession, *, page: int, limit: int, is_active: str | None
) -> tuple[list[tuple[Coupon, int]], int]:
    """``isActive``: ``true`` -> active only, any other value -> inactive only."""
    stmt: Select[Any] = select(Coupon)
    if is_active is not None:
        stmt = stmt.where(Coupon.is_active.is_(is_active == "true"))
    rows, total = await paginate(session, stmt, page, limit, *newest_first(Coupon))
    counts = await _counts(session, [c.id for c in rows])
    return [(c, counts.get(c.id, 0)) for c in rows], total


async def coupon_detail(
    session: AsyncSession, coupon_id: str
) -> tuple[Coupon, int, list[tuple[AppliedCoupon, Customer]]]:
    coupon = await get_coupon(session, coupon_id)
    rows = await session.execute(
        select(AppliedCoupon, Customer)
        .join(Customer, Customer.id == AppliedCoupon.customer_id)
        .where(AppliedCoupon.coupon_id == coupon.id)
        .order_by(*newest_first(AppliedCoupon))
        .limit(DETAIL_APPLIED)
    )
    count = (await _counts(session, [coupon.id])).get(coupon.id, 0)
    return coupon, count, list(rows)


async def update_coupon(
    session: AsyncSession, coupon_id: str, *, body: CouponPatch, clock: Clock
) -> Coupon:
    """``name``, ``description``, ``isActive``, ``expiresAt`` (null clears it)."""
    for name in ("name", "is_active"):
        if name in body.model_fields_set and getattr(body, name) is None:
            wire = type(body).model_fields[name].alias or name
            raise Invalid(wire, f"{wire} should not be null")
    coupon = await get_coupon(session, coupon_id)
    for name in body.model_fields_set:
        setattr(coupon, name, getattr(body, name))
    coupon.updated_at = clock.now()
    await session.flush()
    log.info("coupon.updated", coupon_id=coupon.id, fields=sorted(body.model_fields_set))
    return coupon


async def delete_coupon(session: AsyncSession, coupon_id: str, *, clock: Clock) -> Coupon | None:
    """Deleted (None) when never applied, else deactivated (the Coupon)."""
    coupon = await get_coupon(session, coupon_id)
    used = await session.scalar(
        select(AppliedCoupon.id).where(AppliedCoupon.coupon_id == coupon.id).limit(1)
    )
    if used is None:
        try:
            async with session.begin_nested():
                await session.delete(coupon)
        except IntegrityError:  # applied meanwhile
            used = "raced"
        else:
            log.info("coupon.deleted", coupon_id=coupon_id)
            return None
    coupon.is_active = False
    coupon.updated_at = clock.now()
    await session.flush()
    log.info("coupon.deactivated", coupon_id=coupon_id)
    return coupon


async def _check_subscription(
    session: AsyncSession, coupon: Coupon, customer: Customer, subscription_id: str
) -> None:
    sub = await session.get(Subscription, subscription_id)
    if sub is None:
        raise NotFound("Subscription not found")
    if sub.customer_id != customer.id:
        raise BusinessRule("Subscription does not belong to this customer")
    if coupon.applies_to_plan_ids and sub.plan_id not in coupon.applies_to_plan_ids:
        raise BusinessRule("Coupon does not apply to this plan")


def _expired(coupon: Coupon, now: datetime) -> bool:
    return coupon.expires_at is not None and coupon.expires_at <= now


def _exhausted(coupon: Coupon) -> bool:
    limit = coupon.max_redemptions
    return bool(limit) and coupon.redemption_count >= (limit or 0)


async def apply_coupon(
    session: AsyncSession, *, body: CouponApply, clock: Clock
) -> tuple[AppliedCoupon, Coupon, Customer]:
    """The contract's checks in order; the redemption is claimed atomically."""
    now = clock.now()
    coupon = await get_coupon(session, body.coupon_id)
    if not coupon.is_active:
        raise BusinessRule("Coupon is no longer active")
    if _expired(coupon, now):
        raise BusinessRule("Coupon has expired")
    if _exhausted(coupon):
        raise BusinessRule("Coupon has reached maximum redemptions")
    customer = await customers.get_customer(session, body.customer_id)
    already = await session.scalar(
        select(AppliedCoupon.id).where(
            AppliedCoupon.coupon_id == coupon.id, AppliedCoupon.customer_id == customer.id
        )
    )
    if already is not None:
        raise BusinessRule("Coupon already applied to this customer")
    if body.subscription_id is not None:
        await _check_subscription(session, coupon, customer, body.subscription_id)
    claimed = await session.execute(
        update(Coupon)
        .where(
            Coupon.id == coupon.id,
            Coupon.is_active.is_(True),
            or_(
                Coupon.max_redemptions.is_(None),
                Coupon.max_redemptions == 0,
                Coupon.redemption_count < Coupon.max_redemptions,
            ),
        )
        .values(redemption_count=Coupon.redemption_count + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise BusinessRule("Coupon has reached maximum redemptions")
    applied = AppliedCoupon(
        id=new_id(),
        coupon_id=coupon.id,
        customer_id=customer.id,
        subscription_id=body.subscription_id,
        uses_remaining=body.uses_remaining,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(applied)
    except IntegrityError as exc:
        raise BusinessRule("Coupon already applied to this customer") from exc
    await session.refresh(coupon)
    log.info("coupon.applied", coupon_id=coupon.id, customer_id=customer.id)
    return applied, coupon, customer


async def remove_applied(session: AsyncSession, applied_id: str) -> None:
    result = await session.execute(
        delete(AppliedCoupon)
        .where(AppliedCoupon.id == applied_id)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise NotFound("Applied coupon not found")
    log.info("coupon.removed", applied_coupon_id=applied_id)
