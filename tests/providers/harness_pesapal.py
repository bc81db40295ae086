"""Pesapal adapter wired to the in-process Pesapal simulator (see harness.py).

Pesapal has no merchant-initiated charge (``extras["charges"]`` False) and verifies by its
own order tracking id; its IPN names the order only (``notification_outcome`` False)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from novabilling.payments.providers.base import (
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    Credentials,
)
from novabilling.payments.providers.pesapal import PesapalProvider
from novabilling.simulators import pesapal as sim_module
from tests.providers.harness import Harness, SignedSample

BASE_URL = "http://pesapal.sim/pesapalv3"
EMAIL = "achieng@example.com"
IPN_URL = "https://billing.example.com/webhooks/pesapal/t_01"
# The IPN of Pesapal's API 3.0 documentation (docs/providers/pesapal.md).
IPN_SAMPLE = (
    b'{"OrderTrackingId":"b945e4af-80a5-4ec1-8706-e03f8332fb04",'
    b'"OrderNotificationType":"IPNCHANGE","OrderMerchantReference":"NB-INV-2025-0001"}'
)


def credentials(secret: str = sim_module.DEFAULT_SECRET_KEY) -> Credentials:
    return Credentials(
        secret_key=secret,
        public_key=sim_module.DEFAULT_CONSUMER_KEY,
        extra={"environment": "sandbox", "notifyUrl": IPN_URL},
        base_url=BASE_URL,
    )


def make_harness() -> Harness:
    sim = sim_module.PesapalSimulator(hang_seconds=0.3)
    transport = httpx.ASGITransport(app=sim.app)
    mounted = _Mounted(transport)

    def provider_with(secret: str) -> PesapalProvider:
        return PesapalProvider(credentials(secret), transport=mounted, timeout=0.1, backoff=0.01)

    def checkout_for(email: str) -> Callable[[str, int], CheckoutRequest]:
        def build(reference: str, amount_minor: int) -> CheckoutRequest:
            return CheckoutRequest(
                reference=reference,
                amount_minor=amount_minor,
                currency="KES",
                email=email,
                callback_url="https://billing.example.com/pay/return",
                description="Invoice",
            )

        return build

    async def complete_checkout(checkout: Checkout, success: bool) -> None:
        outcome = "success" if success else "failed"
        async with httpx.AsyncClient(transport=mounted, base_url=BASE_URL) as client:
            response = await client.post(
                f"/_sim/pay/{checkout.provider_reference}?outcome={outcome}"
            )
            response.raise_for_status()

    def charge(reference: str, amount_minor: int) -> ChargeRequest:
        return ChargeRequest(reference, amount_minor, "KES", EMAIL, authorization="none")

    return Harness(
        name="PESAPAL",
        currency="KES",
        provider=provider_with(sim_module.DEFAULT_SECRET_KEY),
        simulator=sim,
        checkout_request=checkout_for(EMAIL),
        complete_checkout=complete_checkout,
        charge_success=charge,
        charge_decline=charge,
        charge_timeout=charge,
        good_webhook=SignedSample(
            body=IPN_SAMPLE,
            headers={"content-type": "application/json"},
            expected_event_id="b945e4af-80a5-4ec1-8706-e03f8332fb04:IPNCHANGE",
        ),
        wrong_secret_provider=provider_with("not-the-consumer-secret"),
        signature_header=None,  # unsigned: confirmed with GetTransactionStatus
        extras={
            "charges": False,
            "checkout_timeout": checkout_for(sim_module.EMAIL_TIMEOUT),
            "verify_reference": lambda checkout: checkout.provider_reference,
            "notification_outcome": False,
            "amount_minor": 250000,
        },
    )


class _Mounted(httpx.AsyncBaseTransport):
    """The simulator serves ``/api/...``; the sandbox base URL has a ``/pesapalv3`` prefix:
    strip it, as the real host's routing does."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.removeprefix(b"/pesapalv3")
        request.url = request.url.copy_with(raw_path=path)
        return await self.inner.handle_async_request(request)
