"""Pesapal API 3.0 simulator (facts: docs/providers/pesapal.md).

``POST /api/Auth/RequestToken`` (consumer key + secret -> a 5-minute bearer token; wrong
ones answer HTTP 200 with ``invalid_consumer_key_or_secret_provided``),
``POST /api/URLSetup/RegisterIPN``, ``GET /api/URLSetup/GetIpnList``,
``POST /api/Transactions/SubmitOrderRequest`` (id <= 50 chars and unique, supported
currency, registered ``notification_id``), ``GET /api/Transactions/GetTransactionStatus``,
``POST /api/Transactions/RefundRequest`` (one per payment; approved on ``drain()``, then the
order reads REVERSED). Payment page ``GET /pesapaliframe/PesapalIframe3/Index``.
Sim-only: ``POST /_sim/pay/{OrderTrackingId or merchant reference}?outcome=success|failed``
(the IPN is posted at once to the order's registered IPN URL), ``GET /_sim/state``.

The consumer secret is the simulator's ``secret_key``; the consumer key is
``DEFAULT_CONSUMER_KEY`` (``NB_SIM_PESAPAL_CONSUMER_KEY``). IPNs are unsigned.
"""

from __future__ import annotations

import functools
import os

import httpx
from starlette.applications import Starlette

from novabilling.simulators.base import ASGIApp, WebhookSender, app_from_env
from novabilling.simulators.pesapal.api import PAGE, PesapalApi
from novabilling.simulators.pesapal.state import (
    EMAIL_TIMEOUT,
    SUPPORTED_CURRENCIES,
    PesapalOrder,
    PesapalState,
)
from novabilling.simulators.webhooks import unsigned

DEFAULT_SECRET_KEY = "nb-sim-pesapal-consumer-secret"
DEFAULT_CONSUMER_KEY = "nb-sim-pesapal-consumer-key"

__all__ = [
    "DEFAULT_CONSUMER_KEY",
    "DEFAULT_SECRET_KEY",
    "EMAIL_TIMEOUT",
    "PAGE",
    "SUPPORTED_CURRENCIES",
    "PesapalOrder",
    "PesapalSimulator",
    "create_app",
    "sandbox_credentials",
]


class PesapalSimulator(PesapalState):
    def __init__(
        self,
        *,
        secret_key: str = DEFAULT_SECRET_KEY,
        webhook_secret: str | None = None,  # Pesapal does not sign IPNs
        webhook_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        hang_seconds: float = 0.3,
        consumer_key: str = DEFAULT_CONSUMER_KEY,
    ) -> None:
        self.secret_key = secret_key
        self.consumer_key = consumer_key
        self.hang_seconds = hang_seconds
        super().__init__(
            sender=WebhookSender(sign=unsigned, url=webhook_url, transport=webhook_transport)
        )
        self.app: ASGIApp = Starlette(routes=PesapalApi(self).routes())


def sandbox_credentials(base_url: str) -> dict[str, str]:
    """The payment-provider credentials that point a tenant at this simulator (NovaBilling
    registers its own IPN URL with it)."""
    return {
        "consumerKey": os.environ.get("NB_SIM_PESAPAL_CONSUMER_KEY") or DEFAULT_CONSUMER_KEY,
        "consumerSecret": DEFAULT_SECRET_KEY,
        "environment": "sandbox",
        "baseUrl": base_url,
    }


def create_app() -> ASGIApp:
    """From ``NB_SIM_*`` (and ``NB_SIM_PESAPAL_CONSUMER_KEY``)."""
    consumer_key = os.environ.get("NB_SIM_PESAPAL_CONSUMER_KEY") or DEFAULT_CONSUMER_KEY
    simulator = functools.partial(PesapalSimulator, consumer_key=consumer_key)
    return app_from_env(simulator, default_secret_key=DEFAULT_SECRET_KEY)
