"""Tenant tables ``coupons`` and ``applied_coupons`` (contract coupons.md).

``discount_value_e4`` is the percent (PERCENTAGE) or the amount in ``currency``
(FIXED_AMOUNT), an exact decimal scaled by 10**4. One applied coupon per (coupon,
customer): the unique constraint makes "already applied" atomic.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import JSONType, TenantBase, id_column

__all__ = ["FIXED_AMOUNT", "PERCENTAGE", "AppliedCoupon", "Coupon"]

PERCENTAGE = "PERCENTAGE"
FIXED_AMOUNT = "FIXED_AMOUNT"


class Coupon(TenantBase):
    __tablename__ = "coupons"
    __table_args__ = (Index("ix_coupons_created_at_id", "created_at", "id"),)

    id: Mapped[str] = id_column()
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(1000), default=None)
    discount_type: Mapped[str] = mapped_column(String(16))
    discount_value_e4: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    max_redemptions: Mapped[int | None] = mapped_column(Integer, default=None)
    redemption_count: Mapped[int] = mapped_column(Integer, default=0)
    applies_to_plan_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class AppliedCoupon(TenantBase):
    __tablename__ = "applied_coupons"
    __table_args__ = (
        UniqueConstraint("coupon_id", "customer_id"),
        Index("ix_applied_coupons_customer_id_created_at", "customer_id", "created_at", "id"),
    )

    id: Mapped[str] = id_column()
    coupon_id: Mapped[str] = mapped_column(String(32), ForeignKey("coupons.id"), index=True)
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE")
    )
    subscription_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("subscriptions.id", ondelete="CASCADE"), default=None
    )
    uses_remaining: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column()
