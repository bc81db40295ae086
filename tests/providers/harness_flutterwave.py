"""Flutterwave adapter wired to the in-process Flutterwave simulator (see harness.py)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from novabilling.payments.providers.base import (
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    Credentials,
)
from novabilling.payments.providers.flutterwave import FlutterwaveProvider
from novabilling.simulators import flutterwave as sim_module
from tests.providers.harness import Harness, SignedSample

BASE_URL = "http://flutterwave.sim"
SECRET_KEY = sim_module.DEFAULT_SECRET_KEY
# Worked example of reference/providers/flutterwave.md §4.2 (163 bytes, no newline).
SECRET_HASH = "nb-flw-secret-hash-example-9f2c"
WORKED_BODY = (
    b'{"event":"charge.completed","data":{"id":8415006,"tx_ref":"NB-INV-2025-0001",'
    b'"amount":5000,"currency":"NGN","status":"successful"},"event.type":"CARD_TRANSACTION"}'
)
WORKED_SIGNATURE = "16kB7+aUn9r8cRIY2QXMUmqLAhz1NWvD0NWFvUpeC2Y="
EMAIL = "amina@example.com"


def make_harness() -> Harness:
    sim = sim_module.FlutterwaveSimulator(
        secret_key=SECRET_KEY, webhook_secret=SECRET_HASH, hang_seconds=0.3
    )
    transport = httpx.ASGITransport(app=sim.app)

    def provider_with(secret_hash: str) -> FlutterwaveProvider:
        credentials = Credentials(
            secret_key=SECRET_KEY,
            public_key="FLWPUBK_TEST-sim-X",
            webhook_secret=secret_hash,
            base_url=BASE_URL,
        )
        return FlutterwaveProvider(
            credentials, transport=transport, timeout=0.1, max_retries=2, backoff=0.01
        )

    def checkout_request(reference: str, amount_minor: int) -> CheckoutRequest:
        return CheckoutRequest(
            reference=reference,
            amount_minor=amount_minor,
            currency="NGN",
            email=EMAIL,
            callback_url="https://billing.example.com/pay/return",
        )

    async def complete_checkout(checkout: Checkout, success: bool) -> None:
        outcome = "success" if success else "failed"
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            response = await client.post(f"/_sim/pay/{checkout.reference}?outcome={outcome}")
            response.raise_for_status()

    def charge_with(token: str) -> Callable[[str, int], ChargeRequest]:
        def build(reference: str, amount_minor: int) -> ChargeRequest:
            return ChargeRequest(
                reference=reference,
                amount_minor=amount_minor,
                currency="NGN",
                email=EMAIL,
                authorization=token,
            )

        return build

    return Harness(
        name="FLUTTERWAVE",
        currency="NGN",
        provider=provider_with(SECRET_HASH),
        simulator=sim,
        checkout_request=checkout_request,
        complete_checkout=complete_checkout,
        charge_success=charge_with(sim_module.TOKEN_SUCCESS),
        charge_decline=charge_with(sim_module.TOKEN_DECLINE),
        charge_timeout=charge_with(sim_module.TOKEN_TIMEOUT),
        # Only the body MAC: verif-hash does not cover the body, so a tampered body would
        # still pass with it (tested separately in test_flutterwave.py).
        good_webhook=SignedSample(
            body=WORKED_BODY,
            headers={"flutterwave-signature": WORKED_SIGNATURE, "content-type": "application/json"},
            expected_event_id="8415006:successful",
        ),
        wrong_secret_provider=provider_with("nb-flw-not-the-right-hash"),
        signature_header="flutterwave-signature",
        extras={"transport": transport, "base_url": BASE_URL, "secret_hash": SECRET_HASH},
    )
