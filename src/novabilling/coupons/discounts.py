"""Coupons on subscription invoices (contract coupons.md "Billing rule",
invoice-composition.md step 4).

``for_invoice`` loads the builder's ``Inputs.discounts``: the customer's applied coupons
for this subscription or for any (oldest applied first), skipping inactive or expired
coupons, used-up applications and fixed amounts in another currency; the rows stay locked
(PostgreSQL) until the invoice commits. ``consume`` takes one use from each application
that gave a discount line and deletes the ones that reach 0, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.coupons.models import FIXED_AMOUNT, AppliedCoupon, Coupon
from novabilling.invoices import builder
from novabilling.kit.money import decimals_of

__all__ = ["consume", "customers_with_coupons", "for_invoice"]


async def for_invoice(
    session: AsyncSession,
    *,
    customer_id: str,
    subscription_id: str,
    currency: str,
    now: datetime,
) -> tuple[builder.Discount, ...]:
    rows = await session.execute(
        select(AppliedCoupon, Coupon)
        .join(Coupon, Coupon.id == AppliedCoupon.coupon_id)
        .where(
            AppliedCoupon.customer_id == customer_id,
            or_(
                AppliedCoupon.subscription_id.is_(None),
                AppliedCoupon.subscription_id == subscription_id,
            ),
        )
        .order_by(AppliedCoupon.created_at, AppliedCoupon.id)
        .with_for_update(of=AppliedCoupon)
    )
    out = []
    for applied, coupon in rows:
        if not coupon.is_active or (coupon.expires_at is not None and coupon.expires_at <= now):
            continue
        if applied.uses_remaining is not None and applied.uses_remaining <= 0:
            continue
        value = Decimal(coupon.discount_value_e4).scaleb(-4)
        if coupon.discount_type == FIXED_AMOUNT:
            if coupon.currency is not None and coupon.currency != currency:
                continue  # d = 0: no line, no use consumed
            value = value.scaleb(decimals_of(currency))  # minor units
        out.append(
            builder.Discount(
                code=coupon.code, kind=coupon.discount_type, value=value, applied_id=applied.id
            )
        )
    return tuple(out)


async def consume(session: AsyncSession, applied_ids: Iterable[str]) -> None:
    ids = [i for i in applied_ids if i]
    if not ids:
        return
    await session.execute(
        update(AppliedCoupon)
        .where(AppliedCoupon.id.in_(ids), AppliedCoupon.uses_remaining.is_not(None))
        .values(uses_remaining=AppliedCoupon.uses_remaining - 1)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(AppliedCoupon)
        .where(AppliedCoupon.id.in_(ids), AppliedCoupon.uses_remaining <= 0)
        .execution_options(synchronize_session=False)
    )


async def customers_with_coupons(session: AsyncSession, customer_ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(customer_ids))
    if not wanted:
        return set()
    rows = await session.scalars(
        select(AppliedCoupon.customer_id).where(AppliedCoupon.customer_id.in_(wanted)).distinct()
    )
    return set(rows)
