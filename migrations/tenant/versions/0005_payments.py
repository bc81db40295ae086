"""payment providers, payments, refunds, payment methods

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from novabilling.kit.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "payment_providers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("provider_name", sa.String(length=32), nullable=False),
        sa.Column("credentials_encrypted", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_providers")),
        sa.UniqueConstraint("provider_name", name=op.f("uq_payment_providers_provider_name")),
    )
    op.create_index(
        "ix_payment_providers_priority_created_at",
        "payment_providers",
        ["priority", "created_at"],
    )

    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("invoice_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=True),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("provider_transaction_id", sa.String(length=255), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("checkout_url", sa.String(length=2048), nullable=True),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_check_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("check_attempts", sa.Integer(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("paid_at", UTCDateTime(timezone=True), nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("reference", name=op.f("uq_payments_reference")),
    )
    op.create_index("ix_payments_created_at_id", "payments", ["created_at", "id"])
    op.create_index("ix_payments_status_next_check_at", "payments", ["status", "next_check_at"])
    op.create_index(op.f("ix_payments_invoice_id"), "payments", ["invoice_id"])
    op.create_index(op.f("ix_payments_customer_id"), "payments", ["customer_id"])
    op.create_index(op.f("ix_payments_provider"), "payments", ["provider"])
    op.create_index(
        op.f("ix_payments_provider_transaction_id"), "payments", ["provider_transaction_id"]
    )

    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("payment_id", sa.String(length=32), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("provider_refund_id", sa.String(length=255), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_refunds_payment_id_payments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    op.create_index(op.f("ix_refunds_payment_id"), "refunds", ["payment_id"])
    op.create_index(op.f("ix_refunds_provider_refund_id"), "refunds", ["provider_refund_id"])

    op.create_table(
        "payment_methods",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("token_encrypted", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("brand", sa.String(length=50), nullable=True),
        sa.Column("last4", sa.String(length=4), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_methods")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_payment_methods_token_hash")),
    )
    op.create_index(
        "ix_payment_methods_customer_id_provider",
        "payment_methods",
        ["customer_id", "provider"],
    )


def downgrade() -> None:
    op.drop_index("ix_payment_methods_customer_id_provider", table_name="payment_methods")
    op.drop_table("payment_methods")
    op.drop_index(op.f("ix_refunds_provider_refund_id"), table_name="refunds")
    op.drop_index(op.f("ix_refunds_payment_id"), table_name="refunds")
    op.drop_table("refunds")
    for name in (
        "ix_payments_provider_transaction_id",
        "ix_payments_provider",
        "ix_payments_customer_id",
        "ix_payments_invoice_id",
    ):
        op.drop_index(op.f(name), table_name="payments")
    op.drop_index("ix_payments_status_next_check_at", table_name="payments")
    op.drop_index("ix_payments_created_at_id", table_name="payments")
    op.drop_table("payments")
    op.drop_index("ix_payment_providers_priority_created_at", table_name="payment_providers")
    op.drop_table("payment_providers")
