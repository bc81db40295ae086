"""credit notes credited to a wallet: the amount, when, and the wallet

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from novabilling.kit.db import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credit_notes") as batch:
        batch.add_column(
            sa.Column("credited_minor", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("credited_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("credited_wallet_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credit_notes") as batch:
        batch.drop_column("credited_wallet_id")
        batch.drop_column("credited_at")
        batch.drop_column("credited_minor")
