"""Paystack simulator (reference: the shared provider reference, paystack.md §9).

Endpoints: ``POST /transaction/initialize``, ``GET /transaction/verify/{reference}``,
``GET /transaction/{id}``, ``POST /transaction/charge_authorization``, ``POST /refund``,
``GET /refund/{id}``, ``GET /refund``, ``GET /bank`` (credentials check), hosted page
``GET /checkout/{access_code}``. Sim-only: ``POST /_sim/pay/{reference}?outcome=success|failed``,
``GET /_sim/state``.

Quirks kept: HTTP 200 with ``data.status: "failed"`` for declined charges; no webhook for
failed payments; duplicate ``reference`` -> 400 ``duplicate_reference``; bad key -> 401
``Invalid key``; ``amount`` accepted as int or string; refunds are async (``pending`` until
``drain()``, then ``processed`` + ``refund.processed`` webhook); webhooks signed with
``x-paystack-signature`` = hex HMAC-SHA512(secret key, raw body).

Seeded reusable authorizations (bound to ``TEST_EMAIL``): ``AUTH_SUCCESS`` charges succeed,
``AUTH_DECLINE`` answers ``failed`` / "Insufficient Funds", ``AUTH_TIMEOUT`` records the
charge, stalls ``hang_seconds`` and answers 504 (the answer is lost, the money moved).

Modules: ``state`` (stored objects and what Paystack does with them), ``api`` (HTTP),
``webhooks`` (bodies and signature).
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp

from novabilling.simulators.base import WebhookSender, app_from_env
from novabilling.simulators.paystack.api import PaystackApi
from novabilling.simulators.paystack.state import (
    AUTH_DECLINE,
    AUTH_SUCCESS,
    AUTH_TIMEOUT,
    TEST_EMAIL,
    PaystackState,
)
from novabilling.simulators.paystack.webhooks import SIGNATURE_HEADER, sign

DEFAULT_SECRET_KEY = "sk_test_6b0f3c2e8a9d4f1b7c5e2a0d9f8b7c6a5e4d3c2b"  # samples/signatures.json

__all__ = [
    "AUTH_DECLINE",
    "AUTH_SUCCESS",
    "AUTH_TIMEOUT",
    "DEFAULT_SECRET_KEY",
    "SIGNATURE_HEADER",
    "TEST_EMAIL",
    "PaystackSimulator",
    "create_app",
    "sign",
    "sandbox_credentials",
]


class PaystackSimulator(PaystackState):
    def __init__(
        self,
        *,
        secret_key: str = DEFAULT_SECRET_KEY,
        webhook_secret: str | None = None,  # Paystack signs with the secret key
        webhook_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        hang_seconds: float = 0.3,
    ) -> None:
        self.secret_key = secret_key
        self.hang_seconds = hang_seconds
        super().__init__(
            sender=WebhookSender(
                sign=lambda body: {SIGNATURE_HEADER: sign(self.secret_key, body)},
                url=webhook_url,
                transport=webhook_transport,
            )
        )
        self.app: ASGIApp = Starlette(routes=PaystackApi(self).routes())


def sandbox_credentials(base_url: str) -> dict[str, str]:
    """The payment-provider credentials that point a tenant at this simulator."""
    return {"secretKey": DEFAULT_SECRET_KEY, "baseUrl": base_url}


def create_app() -> ASGIApp:
    return app_from_env(PaystackSimulator, default_secret_key=DEFAULT_SECRET_KEY)
