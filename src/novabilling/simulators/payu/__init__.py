"""PayU (South Africa) simulator (facts: docs/providers/payu.md).

SOAP ``POST /service/PayUAPI``: ``setTransaction`` (``PAYMENT``; amount in cents, supported
currency, unique ``merchantReference``, ``storePaymentMethod``), ``getTransaction`` (by
``payUReference`` or ``merchantReference``, not both), ``doTransaction`` (``PAYMENT`` with
``AuthenticationType=TOKEN`` and a stored ``pmId``; ``CREDIT`` against a paid payment,
``PROCESSING`` until ``drain()``). A reused ``merchantReference`` is refused. Auth: the
WS-Security username (``DEFAULT_USERNAME``) and password (the simulator's ``secret_key``),
then the ``Safekey`` (``DEFAULT_SAFE_KEY``). RPP page ``GET /rpp.do?PayUReference=...``.
Sim-only: ``POST /_sim/pay/{payUReference or merchantReference}?outcome=success|failed``
(the IPN is posted at once), ``GET /_sim/state``; ``fail_next`` injects SOAP server faults.
IPNs are unsigned ``PaymentNotification`` XML (``ResponseHash`` unique per notification).
"""

from __future__ import annotations

import functools
import os

import httpx
from starlette.applications import Starlette

from novabilling.simulators.base import ASGIApp, WebhookSender, app_from_env
from novabilling.simulators.payu.api import PayuApi
from novabilling.simulators.payu.state import (
    EMAIL_TIMEOUT,
    PM_DECLINE,
    PM_SUCCESS,
    PM_TIMEOUT,
    SUPPORTED_CURRENCIES,
    PayuState,
    PayuTransaction,
)

DEFAULT_SECRET_KEY = "nb-sim-payu-soap-password"  # the SOAP password (credentials apiKey)
DEFAULT_USERNAME = "Staging Integration Store 3"
DEFAULT_SAFE_KEY = "{45D5C765-16D2-45A4-8C41-8D6F84042F8C}"

__all__ = [
    "DEFAULT_SAFE_KEY",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_USERNAME",
    "EMAIL_TIMEOUT",
    "PM_DECLINE",
    "PM_SUCCESS",
    "PM_TIMEOUT",
    "SUPPORTED_CURRENCIES",
    "PayuSimulator",
    "PayuTransaction",
    "create_app",
    "sandbox_credentials",
]


def _xml_headers(body: bytes) -> dict[str, str]:
    return {"content-type": "text/xml; charset=utf-8"}  # IPNs are unsigned


class PayuSimulator(PayuState):
    def __init__(
        self,
        *,
        secret_key: str = DEFAULT_SECRET_KEY,
        webhook_secret: str | None = None,  # PayU does not sign IPNs
        webhook_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        hang_seconds: float = 0.3,
        username: str = DEFAULT_USERNAME,
        safe_key: str = DEFAULT_SAFE_KEY,
    ) -> None:
        self.secret_key = secret_key
        self.username = username
        self.safe_key = safe_key
        self.hang_seconds = hang_seconds
        self.fail_next = 0
        super().__init__(
            sender=WebhookSender(sign=_xml_headers, url=webhook_url, transport=webhook_transport)
        )
        self.app: ASGIApp = Starlette(routes=PayuApi(self).routes())


def sandbox_credentials(base_url: str) -> dict[str, str]:
    """The payment-provider credentials that point a tenant at this simulator (its IPNs
    go to the notificationUrl NovaBilling names in each request)."""
    return {
        "apiKey": DEFAULT_SECRET_KEY,
        "safeKey": os.environ.get("NB_SIM_PAYU_SAFE_KEY") or DEFAULT_SAFE_KEY,
        "apiUsername": os.environ.get("NB_SIM_PAYU_USERNAME") or DEFAULT_USERNAME,
        "environment": "staging",
        "baseUrl": base_url,
    }


def create_app() -> ASGIApp:
    """From ``NB_SIM_*`` (``NB_SIM_PAYU_USERNAME`` / ``NB_SIM_PAYU_SAFE_KEY`` too)."""
    simulator = functools.partial(
        PayuSimulator,
        username=os.environ.get("NB_SIM_PAYU_USERNAME") or DEFAULT_USERNAME,
        safe_key=os.environ.get("NB_SIM_PAYU_SAFE_KEY") or DEFAULT_SAFE_KEY,
    )
    return app_from_env(simulator, default_secret_key=DEFAULT_SECRET_KEY)
