"""indexes of the analytics reports (issue 12; docs/benchmarks.md, "Analytics")

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # INCLUDE (PostgreSQL 11+) makes the per-currency sums index-only scans; SQLite
    # ignores the option and gets the plain two-column indexes.
    op.create_index(
        "ix_invoices_status_paid_at",
        "invoices",
        ["status", "paid_at"],
        postgresql_include=["currency", "total_minor", "subscription_id"],
    )
    op.create_index(
        "ix_invoices_status_created_at",
        "invoices",
        ["status", "created_at"],
        postgresql_include=["currency", "total_minor"],
    )
    op.create_index(
        "ix_payments_status_created_at",
        "payments",
        ["status", "created_at"],
        postgresql_include=["currency", "amount_minor"],
    )
    op.create_index("ix_credit_notes_status_created_at", "credit_notes", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_credit_notes_status_created_at", table_name="credit_notes")
    op.drop_index("ix_payments_status_created_at", table_name="payments")
    op.drop_index("ix_invoices_status_created_at", table_name="invoices")
    op.drop_index("ix_invoices_status_paid_at", table_name="invoices")
