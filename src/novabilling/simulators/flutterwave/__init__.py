"""Flutterwave v3 simulator (reference: the shared provider reference, flutterwave.md §9).

Endpoints (all need ``Authorization: Bearer <secret_key>``, else 401 in Flutterwave's
``{"status": "error", "message": ..., "data": null}`` shape):

* ``GET  /v3/banks/{country}``                        harmless call for credential checks
* ``POST /v3/payments``                               hosted link (``tx_ref`` is the key)
* ``GET  /v3/transactions/{id}/verify``               by Flutterwave id
* ``GET  /v3/transactions/verify_by_reference?tx_ref=``
* ``POST /v3/tokenized-charges``                      test tokens below
* ``POST /v3/transactions/{id}/refund``, ``GET /v3/refunds/{id}``  (refunds complete at once)

Sim-only: ``POST /_sim/pay/{tx_ref}?outcome=success|failed|cancelled`` completes a hosted
payment as the customer would; success and failure create a transaction and queue a
``charge.completed`` webhook (failures too, as Flutterwave does); cancelled only redirects.
``GET /_sim/state`` dumps the state.

Webhooks: v3 envelope by default, ``webhook_format="legacy"`` for the flat camelCase body;
headers ``verif-hash`` (the secret hash) and/or ``flutterwave-signature`` (base64
HMAC-SHA256 keyed by the secret hash) per ``signature_mode`` ("both", "verif-hash",
"signature"). ``fail_next(n)`` makes the next n API calls answer the sample 503.
Amounts are MAJOR units, kept as ``Decimal``.

Modules: ``records`` (payment link, transaction), ``state`` (stores and what Flutterwave
does with them), ``api`` (HTTP), ``webhooks`` (bodies and signature headers).
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from novabilling.simulators.base import ASGIApp, WebhookSender, app_from_env
from novabilling.simulators.flutterwave import webhooks
from novabilling.simulators.flutterwave.api import FlutterwaveApi
from novabilling.simulators.flutterwave.state import (
    TOKEN_DECLINE,
    TOKEN_SUCCESS,
    TOKEN_TIMEOUT,
    TOKEN_TIMEOUT_CHARGED,
    TOKEN_UNAVAILABLE,
    FlutterwaveState,
)

DEFAULT_SECRET_KEY = "FLWSECK_TEST-nbsim0000000000000000000000000000-X"
DEFAULT_WEBHOOK_SECRET = "nb-flw-secret-hash-example-9f2c"


class FlutterwaveSimulator(FlutterwaveState):
    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str | None = DEFAULT_WEBHOOK_SECRET,
        webhook_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        hang_seconds: float = 0.0,
        webhook_format: str = "envelope",
        signature_mode: str = "both",
        checkout_base: str = "https://checkout.flutterwave.com/v3/hosted/pay",
    ) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.hang_seconds = hang_seconds
        self.signature_mode = signature_mode
        super().__init__(
            sender=WebhookSender(sign=self._sign, url=webhook_url, transport=webhook_transport),
            checkout_base=checkout_base,
            webhook_format=webhook_format,
        )
        self.app: ASGIApp = Starlette(routes=FlutterwaveApi(self).routes())

    def _sign(self, body: bytes) -> dict[str, str]:
        return webhooks.signature_headers(self.webhook_secret, self.signature_mode, body)


def sandbox_credentials(base_url: str) -> dict[str, str]:
    """The payment-provider credentials that point a tenant at this simulator."""
    return {
        "secretKey": DEFAULT_SECRET_KEY,
        "secretHash": DEFAULT_WEBHOOK_SECRET,
        "baseUrl": base_url,
    }


def create_app() -> ASGIApp:
    return app_from_env(
        FlutterwaveSimulator,
        default_secret_key=DEFAULT_SECRET_KEY,
        default_webhook_secret=DEFAULT_WEBHOOK_SECRET,
        checkout=lambda public_url: {"checkout_base": f"{public_url}/v3/hosted/pay"},
    )


__all__ = [
    "DEFAULT_SECRET_KEY",
    "DEFAULT_WEBHOOK_SECRET",
    "TOKEN_DECLINE",
    "TOKEN_SUCCESS",
    "TOKEN_TIMEOUT",
    "TOKEN_TIMEOUT_CHARGED",
    "TOKEN_UNAVAILABLE",
    "FlutterwaveSimulator",
    "create_app",
    "sandbox_credentials",
]
