"""Subscription tables: subscriptions, their transition log, and proration lines waiting
for the next invoice. Money is ``BigInteger`` minor units plus ``currency``.

No domain imports here (plans and customers import this module to count subscriptions);
foreign keys name the tables by string.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import TenantBase, id_column

__all__ = ["PendingInvoiceItem", "Subscription", "SubscriptionEvent"]

_STATUSES = "('ACTIVE', 'TRIALING', 'PAUSED', 'PAST_DUE', 'CANCELED')"


class Subscription(TenantBase):
    __tablename__ = "subscriptions"
    __table_args__ = (
        # The billing engine's due-work scan (renewals, trial ends).
        Index("ix_subscriptions_status_current_period_end", "status", "current_period_end"),
        Index("ix_subscriptions_cancel_at", "cancel_at"),
        Index("ix_subscriptions_created_at_id", "created_at", "id"),
        CheckConstraint(f"status IN {_STATUSES}", name="status"),
        CheckConstraint("amount_minor >= 0", name="amount_minor_non_negative"),
    )

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    # RESTRICT: a plan referenced by any subscription cannot be deleted (plans.md).
    plan_id: Mapped[str] = mapped_column(String(32), ForeignKey("plans.id"), index=True)
    previous_plan_id: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_method_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    # Snapshots taken at creation / plan change: later plan edits do not move them.
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    billing_interval: Mapped[str] = mapped_column(String(16))
    billing_timing: Mapped[str] = mapped_column(String(16))
    # Every paid period boundary is billing.periods.period_end(billing_anchor, interval, k).
    billing_anchor: Mapped[datetime]
    current_period_start: Mapped[datetime]
    current_period_end: Mapped[datetime]
    trial_start: Mapped[datetime | None]
    trial_end: Mapped[datetime | None]
    cancel_at: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    canceled_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    next_retry_at: Mapped[datetime | None]
    # A downgrade waiting for the period end (also shown as metadata.pendingPlanChange).
    scheduled_plan_id: Mapped[str | None] = mapped_column(String(32))
    scheduled_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    scheduled_interval: Mapped[str | None] = mapped_column(String(16))
    last_progressive_billing_at: Mapped[datetime | None]
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    started_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SubscriptionEvent(TenantBase):
    """One row per transition or lifecycle change (append-only)."""

    __tablename__ = "subscription_events"
    __table_args__ = (Index("ix_subscription_events_subscription_id_at", "subscription_id", "at"),)

    id: Mapped[str] = id_column()
    subscription_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any] | None]


class PendingInvoiceItem(TenantBase):
    """A line for the subscription's next invoice (proration credits are negative).

    The invoices engine consumes a line by setting ``invoice_id`` in the transaction that
    creates the invoice; lines with ``invoice_id IS NULL`` are still pending.
    """

    __tablename__ = "pending_invoice_items"
    __table_args__ = (
        Index(
            "ix_pending_invoice_items_subscription_id_invoice_id", "subscription_id", "invoice_id"
        ),
    )

    id: Mapped[str] = id_column()
    subscription_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(500))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    invoice_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
