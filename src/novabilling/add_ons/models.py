"""Tenant tables ``add_ons``, ``add_on_prices`` and ``applied_add_ons`` (contract
add-ons.md). Amounts are minor units of their currency. An applied add-on keeps its
``add_on_id`` after the add-on is deleted (no foreign key); ``invoice_id`` is set in the
transaction that creates the invoice billing it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import TenantBase, id_column

__all__ = ["AddOn", "AddOnPrice", "AppliedAddOn"]


class AddOn(TenantBase):
    __tablename__ = "add_ons"
    __table_args__ = (Index("ix_add_ons_created_at_id", "created_at", "id"),)

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(String(1000), default=None)
    invoice_display_name: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class AddOnPrice(TenantBase):
    __tablename__ = "add_on_prices"
    __table_args__ = (UniqueConstraint("add_on_id", "currency"),)

    id: Mapped[str] = id_column()
    add_on_id: Mapped[str] = mapped_column(String(32), ForeignKey("add_ons.id", ondelete="CASCADE"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)


class AppliedAddOn(TenantBase):
    __tablename__ = "applied_add_ons"
    __table_args__ = (
        Index("ix_applied_add_ons_created_at_id", "created_at", "id"),
        Index("ix_applied_add_ons_customer_id_invoice_id", "customer_id", "invoice_id"),
    )

    id: Mapped[str] = id_column()
    add_on_id: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE")
    )
    subscription_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("subscriptions.id", ondelete="CASCADE"), default=None
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    invoice_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column()
