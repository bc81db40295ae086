"""Tenant tables ``invoices``, ``invoice_lines`` and ``invoice_counters``.

- ``invoices.status`` holds the contract values (``DRAFT``, ``PENDING``, ``PAID``,
  ``FAILED``, ``CANCELED``); ``total_minor`` + ``currency`` are what
  ``/api/tenants/me/usage`` sums.
- One invoice per (subscription, period start) is a UNIQUE constraint (DESIGN rule 3): a
  renewal racing another gets an ``IntegrityError`` and stops. Manual invoices have NULL
  ``period_start`` and never collide (NULLs are distinct on SQLite and PostgreSQL).
- ``invoice_counters`` holds the per-tenant number sequence, updated in the same
  transaction as the invoice it numbers (``numbering.py``).
- ``next_retry_at`` / ``collection_attempts`` carry the dunning state of automatic
  collection (``billing/dunning.py``); the scheduler finds retries due from them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import ExactDecimal, JSONType, TenantBase, id_column

DRAFT = "DRAFT"
PENDING = "PENDING"
PAID = "PAID"
FAILED = "FAILED"
CANCELED = "CANCELED"
STATUSES = (DRAFT, PENDING, PAID, FAILED, CANCELED)


class Invoice(TenantBase):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("subscription_id", "period_start"),
        Index("ix_invoices_created_at_id", "created_at", "id"),
        Index("ix_invoices_status_next_retry_at", "status", "next_retry_at"),
        Index("ix_invoices_status_grace_ends_at", "status", "grace_ends_at"),
        # analytics (revenue by paid date, LTV; net revenue by creation): index-only scans on
        # PostgreSQL
        Index(
            "ix_invoices_status_paid_at",
            "status",
            "paid_at",
            postgresql_include=["currency", "total_minor", "subscription_id"],
        ),
        Index(
            "ix_invoices_status_created_at",
            "status",
            "created_at",
            postgresql_include=["currency", "total_minor"],
        ),
    )

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.id", ondelete="RESTRICT"), index=True
    )
    # No foreign key: the subscriptions table belongs to another domain's migration.
    subscription_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    invoice_number: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=DRAFT)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    total_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    due_date: Mapped[datetime] = mapped_column()
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    finalized_at: Mapped[datetime | None] = mapped_column(default=None)
    voided_at: Mapped[datetime | None] = mapped_column(default=None)
    period_start: Mapped[datetime | None] = mapped_column(default=None)
    period_end: Mapped[datetime | None] = mapped_column(default=None)
    pdf_url: Mapped[str | None] = mapped_column(String(300), default=None)
    collection_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_retry_at: Mapped[datetime | None] = mapped_column(default=None)
    # Subscription invoices with a grace period stay DRAFT until then (finalized by the tick).
    grace_ends_at: Mapped[datetime | None] = mapped_column(default=None)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType, default=None)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class InvoiceLine(TenantBase):
    """One line: ``amount_minor = quantity * unit_amount_minor`` (negative for credits)."""

    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "position"),)

    id: Mapped[str] = id_column()
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32), default="manual")
    description: Mapped[str] = mapped_column(String(500))
    # Exact decimal: usage lines bill fractional units (a SUM of decimals).
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal(), default=Decimal(1))
    unit_amount_minor: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[datetime | None] = mapped_column(default=None)
    period_end: Mapped[datetime | None] = mapped_column(default=None)
    # ``usage`` lines: the charge billed and its bucket ("" the charge's own events, a
    # filter id, "minimum"), so a later invoice of the period bills only what is not yet
    # billed (contract charges.md).
    charge_id: Mapped[str | None] = mapped_column(String(32), default=None)
    charge_bucket: Mapped[str | None] = mapped_column(String(40), default=None)


class InvoiceCounter(TenantBase):
    """Per-tenant sequences (one database per tenant, so ``name`` alone is the key)."""

    __tablename__ = "invoice_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


CREDIT_NOTE_REASONS = ("DUPLICATE", "PRODUCT_UNSATISFACTORY", "ORDER_CHANGE", "OTHER")
CREDIT_NOTE_STATUSES = ("DRAFT", "FINALIZED", "VOIDED")


class CreditNote(TenantBase):
    """An amount credited against one invoice (contract credit-notes.md)."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        Index("ix_credit_notes_created_at_id", "created_at", "id"),
        Index("ix_credit_notes_status_created_at", "status", "created_at"),  # net revenue
        CheckConstraint("amount_minor >= 0", name="amount_minor_non_negative"),
    )

    id: Mapped[str] = id_column()
    invoice_id: Mapped[str] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    # Outcome of a note on a PAID invoice: the part refunded to the provider (payments.md
    # refunds of the invoice's payment) and when.
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    refunded_at: Mapped[datetime | None] = mapped_column(default=None)
    # ... or credited to one of the customer's wallets (billing.credit_notes)
    credited_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    credited_at: Mapped[datetime | None] = mapped_column(default=None)
    credited_wallet_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
