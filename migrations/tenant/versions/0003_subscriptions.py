"""subscriptions, subscription events, pending invoice items

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from novabilling.kit.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_STATUSES = "('ACTIVE', 'TRIALING', 'PAUSED', 'PAST_DUE', 'CANCELED')"


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("previous_plan_id", sa.String(length=32), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("payment_method_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("billing_interval", sa.String(length=16), nullable=False),
        sa.Column("billing_timing", sa.String(length=16), nullable=False),
        _at("billing_anchor"),
        _at("current_period_start"),
        _at("current_period_end"),
        _at("trial_start", nullable=True),
        _at("trial_end", nullable=True),
        _at("cancel_at", nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), server_default=sa.false(), nullable=False),
        _at("canceled_at", nullable=True),
        _at("ended_at", nullable=True),
        _at("paused_at", nullable=True),
        _at("next_retry_at", nullable=True),
        sa.Column("scheduled_plan_id", sa.String(length=32), nullable=True),
        sa.Column("scheduled_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("scheduled_interval", sa.String(length=16), nullable=True),
        _at("last_progressive_billing_at", nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        _at("started_at"),
        _at("created_at"),
        _at("updated_at"),
        sa.CheckConstraint(f"status IN {_STATUSES}", name=op.f("ck_subscriptions_status")),
        sa.CheckConstraint(
            "amount_minor >= 0", name=op.f("ck_subscriptions_amount_minor_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_subscriptions_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_subscriptions_plan_id_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("external_id", name=op.f("uq_subscriptions_external_id")),
    )
    op.create_index("ix_subscriptions_cancel_at", "subscriptions", ["cancel_at"])
    op.create_index("ix_subscriptions_created_at_id", "subscriptions", ["created_at", "id"])
    op.create_index(op.f("ix_subscriptions_customer_id"), "subscriptions", ["customer_id"])
    op.create_index(op.f("ix_subscriptions_plan_id"), "subscriptions", ["plan_id"])
    op.create_index(
        "ix_subscriptions_status_current_period_end",
        "subscriptions",
        ["status", "current_period_end"],
    )

    op.create_table(
        "subscription_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        _at("at"),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_events_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_events")),
    )
    op.create_index(
        "ix_subscription_events_subscription_id_at",
        "subscription_events",
        ["subscription_id", "at"],
    )

    op.create_table(
        "pending_invoice_items",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        _at("period_start"),
        _at("period_end"),
        sa.Column("invoice_id", sa.String(length=32), nullable=True),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_pending_invoice_items_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_pending_invoice_items_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_invoice_items")),
    )
    op.create_index(
        op.f("ix_pending_invoice_items_customer_id"), "pending_invoice_items", ["customer_id"]
    )
    op.create_index(
        "ix_pending_invoice_items_subscription_id_invoice_id",
        "pending_invoice_items",
        ["subscription_id", "invoice_id"],
    )


def downgrade() -> None:
    op.drop_table("pending_invoice_items")
    op.drop_table("subscription_events")
    op.drop_table("subscriptions")
