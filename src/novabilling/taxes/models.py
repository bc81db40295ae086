"""Tenant tables ``taxes``, ``customer_taxes``, ``plan_taxes`` and ``charge_taxes``.

- ``taxes.rate`` is the percentage as an exact decimal (``7.5`` = 7.5 %), 0-100, at most
  4 decimals; ``code`` is unique within the tenant and immutable.
- An assignment is one row per (owner, tax) pair, unique (a second one is a 409); it goes
  with either side (``ON DELETE CASCADE``). ``position`` keeps the assignment order.

No domain imports: foreign keys name the tables by string.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import ExactDecimal, TenantBase, id_column

__all__ = ["ChargeTax", "CustomerTax", "PlanTax", "Tax"]


class Tax(TenantBase):
    __tablename__ = "taxes"
    __table_args__ = (
        Index("ix_taxes_created_at_id", "created_at", "id"),
        Index("ix_taxes_applied_by_default", "applied_by_default"),
    )

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(100), unique=True)
    rate: Mapped[Decimal] = mapped_column(ExactDecimal())
    description: Mapped[str | None] = mapped_column(Text, default=None)
    applied_by_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class CustomerTax(TenantBase):
    __tablename__ = "customer_taxes"
    __table_args__ = (UniqueConstraint("customer_id", "tax_id"),)

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE")
    )
    tax_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("taxes.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column()


class PlanTax(TenantBase):
    __tablename__ = "plan_taxes"
    __table_args__ = (UniqueConstraint("plan_id", "tax_id"),)

    id: Mapped[str] = id_column()
    plan_id: Mapped[str] = mapped_column(String(32), ForeignKey("plans.id", ondelete="CASCADE"))
    tax_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("taxes.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column()


class ChargeTax(TenantBase):
    __tablename__ = "charge_taxes"
    __table_args__ = (UniqueConstraint("charge_id", "tax_id"),)

    id: Mapped[str] = id_column()
    charge_id: Mapped[str] = mapped_column(String(32), ForeignKey("charges.id", ondelete="CASCADE"))
    tax_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("taxes.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column()
