"""Tenant tables ``plans`` and ``plan_prices``.

Plan-level decimals without a currency (``minimumCommitment``,
``progressiveBillingThreshold``) are stored as integers scaled by 10**4 (``*_e4``): the
contract keeps 4 fractional digits for them. Prices are minor units of their currency.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import JSONType, TenantBase, id_column

BILLING_INTERVALS = ("HOURLY", "DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY")
BILLING_TIMINGS = ("IN_ADVANCE", "IN_ARREARS")


class Plan(TenantBase):
    __tablename__ = "plans"
    __table_args__ = (Index("ix_plans_created_at_id", "created_at", "id"),)

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(String(500), default=None)
    billing_interval: Mapped[str] = mapped_column(String(16))
    billing_timing: Mapped[str] = mapped_column(String(16), default="IN_ARREARS")
    features: Mapped[list[str]] = mapped_column(JSONType, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    minimum_commitment_e4: Mapped[int | None] = mapped_column(BigInteger, default=None)
    net_payment_terms: Mapped[int | None] = mapped_column(Integer, default=None)
    invoice_grace_period_days: Mapped[int] = mapped_column(Integer, default=0)
    progressive_billing_threshold_e4: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class PlanPrice(TenantBase):
    """One price per currency per plan; ``currency`` upper-cased, ``amount_minor`` exact."""

    __tablename__ = "plan_prices"
    __table_args__ = (UniqueConstraint("plan_id", "currency"),)

    id: Mapped[str] = id_column()
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
