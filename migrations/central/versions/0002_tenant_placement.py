"""tenant placement: the server each tenant database lives on

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("database_connections") as batch:
        batch.add_column(sa.Column("server", sa.String(length=255), nullable=True))
        batch.create_index(batch.f("ix_database_connections_server"), ["server"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("database_connections") as batch:
        batch.drop_index(batch.f("ix_database_connections_server"))
        batch.drop_column("server")
