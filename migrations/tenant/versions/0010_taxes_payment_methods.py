"""taxes and their assignments (customers, plans, charges); payment methods with the
contract's fields (type, card details, masked token, provider customer, metadata); the
refunded part of a credit note

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from novabilling.kit.db import ExactDecimal, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _assignments(table: str, owner: str, target: str) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column(owner, sa.String(length=32), nullable=False),
        sa.Column("tax_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            [owner], [f"{target}.id"], name=op.f(f"fk_{table}_{owner}_{target}"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tax_id"], ["taxes.id"], name=op.f(f"fk_{table}_tax_id_taxes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint(owner, "tax_id", name=op.f(f"uq_{table}_{owner}")),
    )
    op.create_index(f"ix_{table}_tax_id", table, ["tax_id"])


def upgrade() -> None:
    op.create_table(
        "taxes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("rate", ExactDecimal(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("applied_by_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_taxes")),
        sa.UniqueConstraint("code", name=op.f("uq_taxes_code")),
    )
    op.create_index("ix_taxes_created_at_id", "taxes", ["created_at", "id"])
    op.create_index("ix_taxes_applied_by_default", "taxes", ["applied_by_default"])
    _assignments("customer_taxes", "customer_id", "customers")
    _assignments("plan_taxes", "plan_id", "plans")
    _assignments("charge_taxes", "charge_id", "charges")
    with op.batch_alter_table("payment_methods") as batch:
        batch.add_column(sa.Column("token_hint", sa.String(length=40), nullable=True))
        batch.add_column(
            sa.Column("type", sa.String(length=16), server_default="CARD", nullable=False)
        )
        batch.add_column(sa.Column("cardholder_name", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("country", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("exp_month", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("exp_year", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("provider_customer_ref", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("metadata", sa.JSON(), nullable=True))
    op.create_index(
        "ix_payment_methods_customer_id_created_at",
        "payment_methods",
        ["customer_id", "created_at"],
    )
    with op.batch_alter_table("credit_notes") as batch:
        batch.add_column(
            sa.Column("refunded_minor", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("refunded_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credit_notes") as batch:
        batch.drop_column("refunded_at")
        batch.drop_column("refunded_minor")
    op.drop_index("ix_payment_methods_customer_id_created_at", table_name="payment_methods")
    with op.batch_alter_table("payment_methods") as batch:
        for column in (
            "metadata",
            "provider_customer_ref",
            "exp_year",
            "exp_month",
            "country",
            "cardholder_name",
            "type",
            "token_hint",
        ):
            batch.drop_column(column)
    op.drop_table("charge_taxes")
    op.drop_table("plan_taxes")
    op.drop_table("customer_taxes")
    op.drop_table("taxes")
