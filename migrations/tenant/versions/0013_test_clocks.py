"""test clocks: the clocks and the customers attached to one (issue 14)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from novabilling.kit.db import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "test_clocks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("frozen_time", UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_clocks")),
    )
    op.create_index("ix_test_clocks_created_at_id", "test_clocks", ["created_at", "id"])
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("test_clock_id", sa.String(length=32), nullable=True))
        batch.create_index("ix_customers_test_clock_id", ["test_clock_id"])


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_test_clock_id")
        batch.drop_column("test_clock_id")
    op.drop_index("ix_test_clocks_created_at_id", table_name="test_clocks")
    op.drop_table("test_clocks")
