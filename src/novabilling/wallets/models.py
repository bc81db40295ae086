"""Tenant tables ``wallets`` and ``wallet_transactions`` (contract wallets.md).

Credits, rates and amounts are exact decimals kept to 4 places (contract README §5),
stored as integers scaled by 10**4 (``*_e4``) so that SQL compares and subtracts them
exactly on SQLite too. A wallet's ``credits_balance_e4`` only changes through
``wallets.service.move``, with the wallet row locked (PostgreSQL) and a conditional
UPDATE, so two writers never take the same credits twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import JSONType, TenantBase, id_column

__all__ = [
    "ACTIVE",
    "FAILED",
    "GRANTED",
    "INBOUND",
    "INVOICED",
    "OUTBOUND",
    "PENDING",
    "PURCHASED",
    "SETTLED",
    "TERMINATED",
    "VOIDED",
    "Wallet",
    "WalletTransaction",
]

ACTIVE = "ACTIVE"
TERMINATED = "TERMINATED"
INBOUND = "INBOUND"
OUTBOUND = "OUTBOUND"
PENDING = "PENDING"
SETTLED = "SETTLED"
FAILED = "FAILED"
PURCHASED = "PURCHASED"
GRANTED = "GRANTED"
VOIDED = "VOIDED"
INVOICED = "INVOICED"


class Wallet(TenantBase):
    __tablename__ = "wallets"
    __table_args__ = (
        Index("ix_wallets_created_at_id", "created_at", "id"),
        Index("ix_wallets_customer_id_currency", "customer_id", "currency"),
    )

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("customers.id", ondelete="CASCADE")
    )
    name: Mapped[str | None] = mapped_column(String(255), default=None)
    currency: Mapped[str] = mapped_column(String(3))
    rate_amount_e4: Mapped[int] = mapped_column(BigInteger)
    credits_balance_e4: Mapped[int] = mapped_column(BigInteger)
    consumed_credits_e4: Mapped[int] = mapped_column(BigInteger)
    consumed_amount_e4: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    expiration_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    terminated_at: Mapped[datetime | None] = mapped_column(default=None)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType, default=None)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class WalletTransaction(TenantBase):
    __tablename__ = "wallet_transactions"
    __table_args__ = (
        Index("ix_wallet_transactions_wallet_id_created_at", "wallet_id", "created_at", "id"),
    )

    id: Mapped[str] = id_column()
    wallet_id: Mapped[str] = mapped_column(String(32), ForeignKey("wallets.id", ondelete="CASCADE"))
    transaction_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    transaction_status: Mapped[str] = mapped_column(String(16))
    credit_amount_e4: Mapped[int] = mapped_column(BigInteger)
    amount_e4: Mapped[int] = mapped_column(BigInteger)
    # the invoice that used the credits (INVOICED) or bills purchased ones (PURCHASED)
    invoice_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    settled_at: Mapped[datetime | None] = mapped_column(default=None)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType, default=None)
    created_at: Mapped[datetime] = mapped_column()
