"""Tenant table ``customers``. One tenant per database, so ``external_id`` is unique."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import JSONType, TenantBase, id_column


class Customer(TenantBase):
    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_created_at_id", "created_at", "id"),)

    id: Mapped[str] = id_column()
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    # Additive wire field ``phone`` (not in the original contract): M-Pesa STK pushes.
    phone: Mapped[str | None] = mapped_column(String(50), default=None)
    country: Mapped[str | None] = mapped_column(String(3), default=None)
    # Stored exactly as sent (contract: not upper-cased).
    currency: Mapped[str] = mapped_column(String(3))
    net_payment_terms: Mapped[int | None] = mapped_column(Integer, default=None)
    # ``metadata`` is reserved on declarative classes; the column keeps the wire name.
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType, default=None)
    # Additive wire field ``testClockId``: the test clock the customer lives on (its time
    # comes from that clock; the scheduler's tick leaves it alone). Set at creation only.
    test_clock_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
