"""Tenant tables ``payment_providers``, ``payments``, ``refunds`` and ``payment_methods``.

- ``payment_providers.credentials_encrypted``: the credentials object as JSON, sealed with
  AES-256-GCM (``runtime.encryptor``, aad = tenant id). Never returned by the API.
- ``payments``: one attempt to collect an invoice. ``reference`` is what the provider sees
  (idempotency key / tx_ref / metadata): ``"<payment id>-<tenant id>"`` so an inbound
  webhook on the bare path can be routed to its tenant. ``refunded_minor`` tracks partial
  refunds (the wire status becomes ``REFUNDED`` after the first one, per contract).
- ``refunds``: provider refunds are asynchronous; status moves PENDING -> SUCCEEDED/FAILED
  from webhooks or the reconcile job.
- ``payment_methods``: reusable authorizations (Paystack ``authorization_code``,
  Flutterwave card token, Stripe ``pm_...``) saved from successful payments, sealed like the
  credentials (aad = tenant id).

No foreign key to ``invoices``/``customers`` on purpose: those tables belong to other
domains' migrations. Deleting a customer deletes its payments, refunds and payment
methods explicitly (``service.delete_for_customer``, customers.md); deleting a provider
configuration leaves payments untouched (payment-providers.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import JSONType, TenantBase, id_column

PENDING = "PENDING"
PROCESSING = "PROCESSING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
REFUNDED = "REFUNDED"
STATUSES = (PENDING, PROCESSING, SUCCEEDED, FAILED, REFUNDED)

KIND_CHECKOUT = "CHECKOUT"
KIND_CHARGE = "CHARGE"
KIND_MANUAL = "MANUAL"


class PaymentProviderConfig(TenantBase):
    __tablename__ = "payment_providers"
    __table_args__ = (Index("ix_payment_providers_priority_created_at", "priority", "created_at"),)

    id: Mapped[str] = id_column()
    provider_name: Mapped[str] = mapped_column(String(32), unique=True)
    credentials_encrypted: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class Payment(TenantBase):
    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_created_at_id", "created_at", "id"),
        Index("ix_payments_status_next_check_at", "status", "next_check_at"),
        # analytics: refunds by creation (net revenue), index-only on PostgreSQL
        Index(
            "ix_payments_status_created_at",
            "status",
            "created_at",
            postgresql_include=["currency", "amount_minor"],
        ),
    )

    id: Mapped[str] = id_column()
    invoice_id: Mapped[str] = mapped_column(String(32), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    provider: Mapped[str] = mapped_column(String(50), index=True)
    kind: Mapped[str] = mapped_column(String(16), default=KIND_MANUAL)
    reference: Mapped[str | None] = mapped_column(String(100), default=None, unique=True)
    provider_transaction_id: Mapped[str | None] = mapped_column(
        String(255), default=None, index=True
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=PROCESSING)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    checkout_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    callback_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # Reconcile: when to ask the provider again about a PROCESSING attempt.
    next_check_at: Mapped[datetime | None] = mapped_column(default=None)
    check_attempts: Mapped[int] = mapped_column(Integer, default=0)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType, default=None)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class Refund(TenantBase):
    __tablename__ = "refunds"

    id: Mapped[str] = id_column()
    payment_id: Mapped[str] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    provider_refund_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class PaymentMethod(TenantBase):
    __tablename__ = "payment_methods"
    __table_args__ = (
        Index("ix_payment_methods_customer_id_provider", "customer_id", "provider"),
        Index("ix_payment_methods_customer_id_created_at", "customer_id", "created_at"),
    )

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32))
    token_encrypted: Mapped[str] = mapped_column(Text)
    # SHA-256 of the token: finds an already saved authorization without decrypting.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token as shown on the wire (``tokenId`` is masked: it is a reusable charge key).
    token_hint: Mapped[str | None] = mapped_column(String(40), default=None)
    type: Mapped[str] = mapped_column(String(16), default="CARD", server_default="CARD")
    brand: Mapped[str | None] = mapped_column(String(50), default=None)
    last4: Mapped[str | None] = mapped_column(String(4), default=None)
    cardholder_name: Mapped[str | None] = mapped_column(String(255), default=None)
    country: Mapped[str | None] = mapped_column(String(64), default=None)
    exp_month: Mapped[int | None] = mapped_column(Integer, default=None)
    exp_year: Mapped[int | None] = mapped_column(Integer, default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    # Provider-side customer the token belongs to (Stripe ``cus_...``: an off-session
    # PaymentIntent names both).
    provider_customer_ref: Mapped[str | None] = mapped_column(String(255), default=None)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType, default=None)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
