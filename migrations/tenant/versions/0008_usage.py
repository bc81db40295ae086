"""usage-based billing: billable metrics, usage events, charges, plan overrides; invoice
lines with exact (fractional) quantities and the charge they bill

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from novabilling.kit.db import ExactDecimal, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    ]


def _fk(table: str, column: str, target: str, *, cascade: bool = True) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE" if cascade else None,
    )


def _metrics() -> None:
    op.create_table(
        "billable_metrics",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("aggregation_type", sa.String(length=16), nullable=False),
        sa.Column("field_name", sa.String(length=100), nullable=True),
        sa.Column("recurring", sa.Boolean(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billable_metrics")),
        sa.UniqueConstraint("code", name=op.f("uq_billable_metrics_code")),
    )
    op.create_index("ix_billable_metrics_created_at_id", "billable_metrics", ["created_at", "id"])
    op.create_table(
        "billable_metric_filters",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("billable_metric_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _fk("billable_metric_filters", "billable_metric_id", "billable_metrics"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billable_metric_filters")),
        sa.UniqueConstraint(
            "billable_metric_id",
            "key",
            name=op.f("uq_billable_metric_filters_billable_metric_id_key"),
        ),
    )


def _events() -> None:
    op.create_table(
        "usage_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("transaction_id", sa.String(length=255), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("timestamp", UTCDateTime(timezone=True), nullable=False),
        sa.Column("properties", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        _fk("usage_events", "subscription_id", "subscriptions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_usage_events_transaction_id")),
    )
    op.create_index(
        "ix_usage_events_subscription_id_code_timestamp",
        "usage_events",
        ["subscription_id", "code", "timestamp"],
    )


def _charges() -> None:
    op.create_table(
        "charges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("billable_metric_id", sa.String(length=32), nullable=False),
        sa.Column("charge_model", sa.String(length=16), nullable=False),
        sa.Column("billing_timing", sa.String(length=16), nullable=False),
        sa.Column("invoice_display_name", sa.String(length=200), nullable=True),
        sa.Column("min_amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("prorated", sa.Boolean(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        *_stamps(),
        _fk("charges", "plan_id", "plans"),
        _fk("charges", "billable_metric_id", "billable_metrics", cascade=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charges")),
        sa.UniqueConstraint(
            "plan_id", "billable_metric_id", name=op.f("uq_charges_plan_id_billable_metric_id")
        ),
    )
    op.create_index("ix_charges_created_at_id", "charges", ["created_at", "id"])
    op.create_index(op.f("ix_charges_billable_metric_id"), "charges", ["billable_metric_id"])
    op.create_table(
        "charge_ranges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("charge_id", sa.String(length=32), nullable=False),
        sa.Column("from_value", sa.BigInteger(), nullable=False),
        sa.Column("to_value", sa.BigInteger(), nullable=True),
        sa.Column("per_unit_amount", ExactDecimal(), nullable=False),
        sa.Column("flat_amount", ExactDecimal(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _fk("charge_ranges", "charge_id", "charges"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charge_ranges")),
        sa.UniqueConstraint(
            "charge_id", "position", name=op.f("uq_charge_ranges_charge_id_position")
        ),
    )
    op.create_table(
        "charge_filters",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("charge_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _fk("charge_filters", "charge_id", "charges"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charge_filters")),
        sa.UniqueConstraint("charge_id", "key", name=op.f("uq_charge_filters_charge_id_key")),
    )


def _overrides() -> None:
    op.create_table(
        "plan_overrides",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("overridden_prices", sa.JSON(), nullable=True),
        sa.Column("overridden_minimum_commitment_e4", sa.BigInteger(), nullable=True),
        sa.Column("overridden_charges", sa.JSON(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        *_stamps(),
        _fk("plan_overrides", "customer_id", "customers"),
        _fk("plan_overrides", "plan_id", "plans"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_overrides")),
        sa.UniqueConstraint(
            "customer_id", "plan_id", name=op.f("uq_plan_overrides_customer_id_plan_id")
        ),
    )
    op.create_index("ix_plan_overrides_created_at_id", "plan_overrides", ["created_at", "id"])
    op.create_index(op.f("ix_plan_overrides_plan_id"), "plan_overrides", ["plan_id"])


def upgrade() -> None:
    _metrics()
    _events()
    _charges()
    _overrides()
    with op.batch_alter_table("invoice_lines") as batch:
        batch.alter_column(
            "quantity",
            existing_type=sa.BigInteger(),
            type_=ExactDecimal(),
            existing_nullable=False,
            postgresql_using="quantity::numeric",
        )
        batch.add_column(sa.Column("charge_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("charge_bucket", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoice_lines") as batch:
        batch.drop_column("charge_bucket")
        batch.drop_column("charge_id")
        batch.alter_column(
            "quantity",
            existing_type=ExactDecimal(),
            type_=sa.BigInteger(),
            existing_nullable=False,
            postgresql_using="round(quantity)::bigint",
        )
    op.drop_table("plan_overrides")
    op.drop_table("charge_filters")
    op.drop_table("charge_ranges")
    op.drop_table("charges")
    op.drop_table("usage_events")
    op.drop_table("billable_metric_filters")
    op.drop_table("billable_metrics")
