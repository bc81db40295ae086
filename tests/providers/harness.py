"""What the shared provider contract suite (tests/providers/test_contract.py) needs from
each provider. Each ``tests/providers/harness_<name>.py`` exports ``make_harness()``
returning a :class:`Harness` whose adapter talks to that provider's simulator in-process
(httpx ``ASGITransport``), so the suite never opens a socket or calls a real provider.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from novabilling.payments.providers.base import (
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    PaymentProvider,
)


@dataclass(frozen=True)
class SignedSample:
    """A webhook body with the headers the real provider would send, plus the secret the
    adapter must be configured with to accept it (from reference/providers/samples)."""

    body: bytes
    headers: Mapping[str, str]
    expected_event_id: str


@dataclass
class Harness:
    name: str  # provider type as the contract names it, e.g. "PAYSTACK"
    currency: str  # a currency this provider supports (KES for M-Pesa)
    provider: PaymentProvider  # adapter wired to the simulator
    simulator: Any  # the simulator object (has .app, .sent_webhooks, async drain())
    checkout_request: Callable[[str, int], CheckoutRequest]  # (reference, amount_minor)
    complete_checkout: Callable[[Checkout, bool], Awaitable[None]]  # pay (True) / fail (False)
    charge_success: Callable[[str, int], ChargeRequest]
    charge_decline: Callable[[str, int], ChargeRequest]
    charge_timeout: Callable[[str, int], ChargeRequest]  # simulator times out / 5xx
    good_webhook: SignedSample  # worked example from the reference: must verify
    wrong_secret_provider: PaymentProvider  # same adapter configured with a wrong secret
    signature_header: str | None  # header to drop for the "missing header" case (None: unsigned)
    extras: dict[str, Any] = field(default_factory=dict)
