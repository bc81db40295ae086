"""The one interface every payment provider adapter implements.

Adapters import only ``novabilling.kit``; they never touch the database. Amounts cross
this interface as integer minor units plus an ISO currency code; each adapter converts to
whatever its provider expects (Paystack subunits, Flutterwave major units, M-Pesa whole
KES, Stripe minor units with zero-decimal currencies).

Outcomes are a closed set: ``SUCCEEDED``, ``PENDING``, ``FAILED``, ``UNKNOWN``. Unknown is
not failed (a timeout leaves the payment pending and a reconcile job asks again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class Outcome(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    PENDING = "PENDING"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"


class ProviderError(Exception):
    """A provider call that failed in a way the caller should report (bad credentials,
    4xx answer). Transport failures after retries raise ``ProviderUnavailable``."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class ProviderUnavailable(ProviderError):
    """Timeouts / 5xx after retries: the result is UNKNOWN, not FAILED."""


class SignatureError(Exception):
    """A webhook whose signature is missing, malformed or wrong."""


@dataclass(frozen=True)
class Credentials:
    """Decrypted per-tenant provider credentials. ``extra`` holds provider-specific
    fields (M-Pesa shortcode/passkey/initiator, Flutterwave secret hash, Stripe whsec)."""

    secret_key: str
    public_key: str | None = None
    webhook_secret: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    base_url: str | None = None  # override (simulators, sandbox)


@dataclass(frozen=True)
class CheckoutRequest:
    reference: str  # our payment id: the provider's idempotency key / tx_ref
    amount_minor: int
    currency: str
    email: str
    callback_url: str | None = None
    phone: str | None = None
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkout:
    reference: str
    url: str | None  # hosted payment link (None for M-Pesa STK: the prompt is on the phone)
    provider_reference: str | None = None  # session id / CheckoutRequestID
    outcome: Outcome = Outcome.PENDING


@dataclass(frozen=True)
class ChargeRequest:
    """Charge a saved authorization (card token / pm_...) or, for M-Pesa, the phone."""

    reference: str
    amount_minor: int
    currency: str
    email: str
    authorization: str | None = None  # authorization_code / card token / payment method id
    customer_ref: str | None = None  # Stripe customer id
    phone: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Transaction:
    """What the provider says about one payment, normalised."""

    reference: str
    outcome: Outcome
    amount_minor: int | None = None
    currency: str | None = None
    provider_reference: str | None = None  # provider's own transaction id
    authorization: str | None = None  # reusable token to save for recurring charges
    message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundRequest:
    reference: str  # our refund id (idempotency)
    transaction_reference: str  # our payment reference
    provider_transaction_id: str | None
    amount_minor: int
    currency: str
    reason: str | None = None


@dataclass(frozen=True)
class Refund:
    reference: str
    outcome: Outcome  # SUCCEEDED = processed; PENDING while the provider works
    provider_refund_id: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    message: str | None = None


class EventKind(StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    REFUND_UPDATED = "refund.updated"
    OTHER = "other"


@dataclass(frozen=True)
class WebhookEvent:
    """A verified inbound webhook, normalised. ``event_id`` is unique per provider and is
    the inbox de-duplication key."""

    provider: str
    event_id: str
    kind: EventKind
    reference: str | None  # our payment/refund reference when the provider echoes it
    outcome: Outcome | None = None
    amount_minor: int | None = None
    currency: str | None = None
    provider_reference: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ExpiresCheckouts(Protocol):
    """A provider whose hosted payment pages can be closed before they are paid (Stripe
    Checkout Sessions): a superseded checkout is expired there too."""

    async def expire_checkout(self, provider_reference: str) -> None: ...


class PaymentProvider(Protocol):
    """Async interface implemented by every adapter (one instance per credentials)."""

    name: str

    async def verify_credentials(self) -> bool: ...

    async def create_checkout(self, request: CheckoutRequest) -> Checkout: ...

    async def verify_transaction(self, reference: str) -> Transaction: ...

    async def charge(self, request: ChargeRequest) -> Transaction: ...

    async def refund(self, request: RefundRequest) -> Refund: ...

    async def refund_status(self, refund: Refund) -> Refund: ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify the signature over the raw bytes and normalise; raise SignatureError."""
        ...


@runtime_checkable
class RemembersCallbacks(Protocol):
    """An adapter of unsigned notifications (M-Pesa) that keeps what a callback says
    (receipt, reversal result). ``parse_webhook`` changes nothing; the caller confirms the
    event with the provider first and only then calls ``accept_callback``."""

    def accept_callback(self, event: WebhookEvent) -> None: ...
