"""Stripe simulator (reference: the shared provider reference, stripe.md §9).

Endpoints (form-encoded bodies, bracket keys, JSON answers, Bearer or Basic auth):
``GET /v1/balance``, ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/{id}``,
``POST /v1/payment_intents`` (off-session ``confirm=true``), ``GET /v1/payment_intents/{id}``,
``GET /v1/payment_intents/search?query=metadata['k']:'v'``, ``POST /v1/refunds``,
``GET /v1/refunds/{id}``, ``GET /v1/refunds``. Sim-only:
``POST /_sim/pay/{reference-or-session-id}?outcome=success|failed``, ``GET /_sim/state``.

``Idempotency-Key``: the first answer (including 402 and 500) is stored and replayed with
``Idempotent-Replayed: true``; the same key with other parameters -> 400
``idempotency_error``. Test payment methods: ``pm_card_visa`` / ``pm_card_mastercard``
succeed, ``pm_card_chargeDeclined`` / ``pm_card_chargeDeclinedInsufficientFunds`` -> 402
``card_declined``, ``pm_card_authenticationRequired`` -> 402 ``authentication_required``,
``PM_TIMEOUT`` (sim-only) creates the PaymentIntent, stalls ``hang_seconds`` and answers
500. Refunds stay ``pending`` until ``drain()`` (then ``succeeded`` + ``refund.updated``).
Webhooks: ``Stripe-Signature: t=<now>,v1=<hex>`` (one ``v1`` per secret in
``webhook_secret`` + ``extra_webhook_secrets``, as during a rotation).

Modules: ``state`` (stored objects and what Stripe does with them), ``api`` (HTTP),
``webhooks`` (event envelope and signature).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp

from novabilling.simulators.base import WebhookSender, app_from_env
from novabilling.simulators.stripe.api import StripeApi
from novabilling.simulators.stripe.state import (
    CUSTOMER,
    PM_AUTH_REQUIRED,
    PM_DECLINE,
    PM_SUCCESS,
    PM_TIMEOUT,
    StripeState,
)
from novabilling.simulators.stripe.webhooks import API_VERSION, sign, signature_header

DEFAULT_SECRET_KEY = "sk_test_novabilling_simulator"
DEFAULT_WEBHOOK_SECRET = "whsec_test_NovaBillingWorkedExample0123456789"  # signatures.json

__all__ = [
    "API_VERSION",
    "CUSTOMER",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_WEBHOOK_SECRET",
    "PM_AUTH_REQUIRED",
    "PM_DECLINE",
    "PM_SUCCESS",
    "PM_TIMEOUT",
    "StripeSimulator",
    "create_app",
    "sign",
    "sandbox_credentials",
]


class StripeSimulator(StripeState):
    def __init__(
        self,
        *,
        secret_key: str = DEFAULT_SECRET_KEY,
        webhook_secret: str | None = DEFAULT_WEBHOOK_SECRET,
        webhook_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        hang_seconds: float = 0.3,
        extra_webhook_secrets: tuple[str, ...] = (),
        now: Callable[[], int] | None = None,
        checkout_base: str | None = None,
    ) -> None:
        self.secret_key = secret_key
        if checkout_base:
            self.checkout_base = checkout_base.rstrip("/")
        self.webhook_secrets = tuple(s for s in (webhook_secret, *extra_webhook_secrets) if s)
        self.hang_seconds = hang_seconds
        super().__init__(
            sender=WebhookSender(sign=self._sign, url=webhook_url, transport=webhook_transport),
            now=now or (lambda: int(time.time())),
        )
        self.app: ASGIApp = Starlette(routes=StripeApi(self).routes())

    def _sign(self, body: bytes) -> dict[str, str]:
        return signature_header(self.webhook_secrets, self.now(), body)


def sandbox_credentials(base_url: str) -> dict[str, str]:
    """The payment-provider credentials that point a tenant at this simulator."""
    return {
        "secretKey": DEFAULT_SECRET_KEY,
        "webhookSecret": DEFAULT_WEBHOOK_SECRET,
        "baseUrl": base_url,
    }


def create_app() -> ASGIApp:
    return app_from_env(
        StripeSimulator,
        default_secret_key=DEFAULT_SECRET_KEY,
        default_webhook_secret=DEFAULT_WEBHOOK_SECRET,
        checkout=lambda public_url: {"checkout_base": f"{public_url}/c/pay"},
    )
