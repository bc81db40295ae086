"""M-Pesa Daraja simulator (reference: the shared provider reference, mpesa.md §13).

* ``GET /oauth/v1/generate?grant_type=client_credentials`` — Basic(consumer_key:secret_key)
  -> ``{"access_token", "expires_in": "3599"}`` (a string, as observed). With
  ``single_token`` (default) a new token invalidates the previous one (Daraja FAQ).
* ``POST /mpesa/stkpush/v1/processrequest`` — Bearer; validates shortcode, timestamp,
  password = base64(shortcode+passkey+timestamp) (else 500 ``500.001.1001`` Wrong
  credentials), TransactionType, whole Amount, MSISDNs, https CallBackURL (or http on
  a loopback host: a server on the developer's machine),
  AccountReference <= 12, TransactionDesc <= 13. A second push to a phone whose prompt is
  still open answers 500 ``500.001.1001`` "Unable to lock subscriber".
* ``POST /mpesa/stkpushquery/v1/query`` — HTTP 500 ``500.001.1001`` "The transaction is
  being processed" until the customer answered, then the final answer (string ResultCode).
* ``POST /mpesa/reversal/v1/request`` — ack now, ``Result`` callback to ResultURL on
  ``drain()`` (0, ``R000001`` when already reversed, ``R000002`` unknown receipt).
* Errors: invalid token 404 ``404.001.03``; ``fail_next(n, code)`` injects 500 errors
  (``500.003.02`` spike arrest by default).

The customer answers on ``drain()`` (the phone's scripted outcome, below) or through the
sim-only ``POST /_sim/pay/{CheckoutRequestID or our reference}?outcome=success|failed|<code>``.
Callbacks are unsigned and posted to each push's CallBackURL with the sample shapes.

Modules: ``state`` (tokens, pushes and what happens to them), ``api`` (HTTP),
``callbacks`` (callback bodies).
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from novabilling.simulators.base import ASGIApp, WebhookSender, app_from_env
from novabilling.simulators.mpesa.api import MpesaApi
from novabilling.simulators.mpesa.callbacks import RESULT_DESC
from novabilling.simulators.mpesa.state import (
    PASSKEY,
    PHONE_CANCELLED,
    PHONE_DECLINE,
    PHONE_EXPIRED,
    PHONE_INSUFFICIENT,
    PHONE_NO_CALLBACK,
    PHONE_OUTCOMES,
    PHONE_SUCCESS,
    PHONE_TIMEOUT,
    PHONE_TIMEOUT_USER,
    PHONE_WRONG_PIN,
    SHORTCODE,
    MpesaState,
    account_reference,
)
from novabilling.simulators.webhooks import unsigned

DEFAULT_SECRET_KEY = "nb-sim-consumer-secret"
DEFAULT_CONSUMER_KEY = "nb-sim-consumer-key"

__all__ = [
    "DEFAULT_CONSUMER_KEY",
    "DEFAULT_SECRET_KEY",
    "PASSKEY",
    "PHONE_CANCELLED",
    "PHONE_DECLINE",
    "PHONE_EXPIRED",
    "PHONE_INSUFFICIENT",
    "PHONE_NO_CALLBACK",
    "PHONE_OUTCOMES",
    "PHONE_SUCCESS",
    "PHONE_TIMEOUT",
    "PHONE_TIMEOUT_USER",
    "PHONE_WRONG_PIN",
    "RESULT_DESC",
    "SHORTCODE",
    "MpesaSimulator",
    "account_reference",
    "create_app",
    "sandbox_credentials",
]


class MpesaSimulator(MpesaState):
    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str | None = None,  # unused: Daraja callbacks are unsigned
        webhook_url: str | None = None,  # unused: callbacks go to each request's CallBackURL
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        hang_seconds: float = 0.0,
        consumer_key: str = DEFAULT_CONSUMER_KEY,
        shortcode: str = SHORTCODE,
        passkey: str = PASSKEY,
        single_token: bool = True,
        duplicate_callbacks: bool = False,  # deliver every STK callback twice
    ) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.hang_seconds = hang_seconds
        self.consumer_key = consumer_key
        self.shortcode = shortcode
        self.passkey = passkey
        self.single_token = single_token
        super().__init__(
            sender=WebhookSender(sign=unsigned, transport=webhook_transport),
            duplicate_callbacks=duplicate_callbacks,
        )
        self.app: ASGIApp = Starlette(routes=MpesaApi(self).routes())

    @property
    def webhook_transport(self) -> httpx.AsyncBaseTransport | None:
        """Where callbacks are posted through (may be swapped after construction)."""
        return self.sender.transport

    @webhook_transport.setter
    def webhook_transport(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self.sender.transport = transport


def sandbox_credentials(base_url: str) -> dict[str, str]:
    """The payment-provider credentials that point a tenant at this simulator (the STK
    callback URL is the server's own ``NB_PUBLIC_URL``/webhooks/mpesa/<tenant id>)."""
    return {
        "consumerKey": DEFAULT_CONSUMER_KEY,
        "consumerSecret": DEFAULT_SECRET_KEY,
        "shortcode": SHORTCODE,
        "passkey": PASSKEY,
        "environment": "sandbox",
        "baseUrl": base_url,
    }


def create_app() -> ASGIApp:
    return app_from_env(MpesaSimulator, default_secret_key=DEFAULT_SECRET_KEY)
