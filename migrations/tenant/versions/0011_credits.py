"""credits: wallets and their transactions, coupons and applied coupons, add-ons with
their prices and applied add-ons (contract wallets.md, coupons.md, add-ons.md)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from novabilling.kit.db import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "add_ons",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("invoice_display_name", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_add_ons")),
        sa.UniqueConstraint("code", name=op.f("uq_add_ons_code")),
    )
    op.create_index("ix_add_ons_created_at_id", "add_ons", ["created_at", "id"])

    op.create_table(
        "coupons",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("discount_type", sa.String(length=16), nullable=False),
        sa.Column("discount_value_e4", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("redemption_count", sa.Integer(), nullable=False),
        sa.Column("applies_to_plan_ids", sa.JSON(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_coupons_code")),
    )
    op.create_index("ix_coupons_created_at_id", "coupons", ["created_at", "id"])

    op.create_table(
        "add_on_prices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("add_on_id", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["add_on_id"],
            ["add_ons.id"],
            name=op.f("fk_add_on_prices_add_on_id_add_ons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_add_on_prices")),
        sa.UniqueConstraint(
            "add_on_id", "currency", name=op.f("uq_add_on_prices_add_on_id_currency")
        ),
    )
    op.create_table(
        "wallets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("rate_amount_e4", sa.BigInteger(), nullable=False),
        sa.Column("credits_balance_e4", sa.BigInteger(), nullable=False),
        sa.Column("consumed_credits_e4", sa.BigInteger(), nullable=False),
        sa.Column("consumed_amount_e4", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expiration_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("terminated_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_wallets_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallets")),
    )
    op.create_index("ix_wallets_created_at_id", "wallets", ["created_at", "id"])
    op.create_index("ix_wallets_customer_id_currency", "wallets", ["customer_id", "currency"])
    op.create_index(op.f("ix_wallets_expiration_at"), "wallets", ["expiration_at"])

    op.create_table(
        "applied_add_ons",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("add_on_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("invoice_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_applied_add_ons_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_applied_add_ons_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applied_add_ons")),
    )
    op.create_index("ix_applied_add_ons_created_at_id", "applied_add_ons", ["created_at", "id"])
    op.create_index(
        "ix_applied_add_ons_customer_id_invoice_id",
        "applied_add_ons",
        ["customer_id", "invoice_id"],
    )

    op.create_table(
        "applied_coupons",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("coupon_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=True),
        sa.Column("uses_remaining", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_id"], ["coupons.id"], name=op.f("fk_applied_coupons_coupon_id_coupons")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_applied_coupons_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_applied_coupons_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applied_coupons")),
        sa.UniqueConstraint(
            "coupon_id", "customer_id", name=op.f("uq_applied_coupons_coupon_id_customer_id")
        ),
    )
    op.create_index(op.f("ix_applied_coupons_coupon_id"), "applied_coupons", ["coupon_id"])
    op.create_index(
        "ix_applied_coupons_customer_id_created_at",
        "applied_coupons",
        ["customer_id", "created_at", "id"],
    )

    op.create_table(
        "wallet_transactions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("wallet_id", sa.String(length=32), nullable=False),
        sa.Column("transaction_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("transaction_status", sa.String(length=16), nullable=False),
        sa.Column("credit_amount_e4", sa.BigInteger(), nullable=False),
        sa.Column("amount_e4", sa.BigInteger(), nullable=False),
        sa.Column("invoice_id", sa.String(length=32), nullable=True),
        sa.Column("settled_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["wallet_id"],
            ["wallets.id"],
            name=op.f("fk_wallet_transactions_wallet_id_wallets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_transactions")),
    )
    op.create_index(
        op.f("ix_wallet_transactions_invoice_id"), "wallet_transactions", ["invoice_id"]
    )
    op.create_index(
        "ix_wallet_transactions_wallet_id_created_at",
        "wallet_transactions",
        ["wallet_id", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_wallet_transactions_wallet_id_created_at", table_name="wallet_transactions")
    op.drop_index(op.f("ix_wallet_transactions_invoice_id"), table_name="wallet_transactions")

    op.drop_table("wallet_transactions")
    op.drop_index("ix_applied_coupons_customer_id_created_at", table_name="applied_coupons")
    op.drop_index(op.f("ix_applied_coupons_coupon_id"), table_name="applied_coupons")

    op.drop_table("applied_coupons")
    op.drop_index("ix_applied_add_ons_customer_id_invoice_id", table_name="applied_add_ons")
    op.drop_index("ix_applied_add_ons_created_at_id", table_name="applied_add_ons")

    op.drop_table("applied_add_ons")
    op.drop_index(op.f("ix_wallets_expiration_at"), table_name="wallets")
    op.drop_index("ix_wallets_customer_id_currency", table_name="wallets")
    op.drop_index("ix_wallets_created_at_id", table_name="wallets")

    op.drop_table("wallets")
    op.drop_table("add_on_prices")
    op.drop_index("ix_coupons_created_at_id", table_name="coupons")

    op.drop_table("coupons")
    op.drop_index("ix_add_ons_created_at_id", table_name="add_ons")

    op.drop_table("add_ons")
