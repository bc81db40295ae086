"""DPO Pay simulator (facts: docs/providers/dpo.md).

``POST /API/v6/`` with an ``<API3G>`` document: ``createToken`` (amount with at most two
decimals, three-letter currency, one ``<Service>`` of ``SERVICE_TYPE``, ``CompanyRefUnique``
honoured), ``verifyToken`` by ``TransactionToken`` or ``CompanyRef`` (``000`` paid, ``900``
not paid yet, ``901`` declined, ``904`` cancelled, ``902`` unknown), ``refundToken``
(synchronous, ``000`` or ``999``). Payment page ``GET /payv2.php?ID=<TransToken>``.
Sim-only: ``POST /_sim/pay/{TransToken or CompanyRef}?outcome=success|failed`` (a paid
transaction's ``pushPayments`` XML goes to the webhook URL at once), ``GET /_sim/state``.

The company token is the simulator's ``secret_key`` (``NB_SIM_SECRET_KEY``); pushes are
unsigned, like DPO's.
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from novabilling.simulators.base import ASGIApp, WebhookSender, app_from_env
from novabilling.simulators.dpo.api import DpoApi
from novabilling.simulators.dpo.state import (
    CUSTOMER_NAME,
    EMAIL_TIMEOUT,
    SERVICE_TYPE,
    DpoState,
    DpoTransaction,
)

DEFAULT_SECRET_KEY = "9D3DA73D-7D7F-4F1E-8E6A-0C1B2D3E4F50"  # a fake company token

__all__ = [
    "CUSTOMER_NAME",
    "DEFAULT_SECRET_KEY",
    "EMAIL_TIMEOUT",
    "SERVICE_TYPE",
    "DpoSimulator",
    "DpoTransaction",
    "create_app",
    "sandbox_credentials",
]


def _xml_headers(body: bytes) -> dict[str, str]:
    return {"content-type": "application/xml"}  # pushes are unsigned


class DpoSimulator(DpoState):
    def __init__(
        self,
        *,
        secret_key: str = DEFAULT_SECRET_KEY,
        webhook_secret: str | None = None,  # DPO does not sign its pushes
        webhook_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        hang_seconds: float = 0.3,
    ) -> None:
        self.secret_key = secret_key
        self.hang_seconds = hang_seconds
        super().__init__(
            sender=WebhookSender(sign=_xml_headers, url=webhook_url, transport=webhook_transport)
        )
        self.app: ASGIApp = Starlette(routes=DpoApi(self).routes())


def sandbox_credentials(base_url: str) -> dict[str, str]:
    """The payment-provider credentials that point a tenant at this simulator."""
    return {
        "companyToken": DEFAULT_SECRET_KEY,
        "serviceType": SERVICE_TYPE,
        "environment": "test",
        "baseUrl": base_url,
    }


def create_app() -> ASGIApp:
    return app_from_env(DpoSimulator, default_secret_key=DEFAULT_SECRET_KEY)
