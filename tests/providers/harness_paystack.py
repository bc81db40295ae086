"""Paystack adapter wired to the in-process Paystack simulator (see harness.py)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from novabilling.payments.providers.base import (
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    Credentials,
)
from novabilling.payments.providers.paystack import PaystackProvider
from novabilling.simulators import paystack as sim_module
from tests.providers.harness import Harness, SignedSample

BASE_URL = "http://paystack.sim"
# Worked example of reference/providers/paystack.md §4.1 (independently computed signature).
WORKED_SECRET = "sk_test_6b0f3c2e8a9d4f1b7c5e2a0d9f8b7c6a5e4d3c2b"
WORKED_BODY = (
    b'{"event":"charge.success","data":{"id":4099260516,"reference":"NB-INV-2025-0001",'
    b'"amount":500000,"currency":"NGN","status":"success"}}'
)
WORKED_SIGNATURE = (
    "e09256dd01a8824c4f5cfb238f08dd32be4ab607548484021f2a170fcb1b52ed"
    "1dc42e7fe79ed3006d6c192c6e8034894847915c494695cea81cfc398b4e516d"
)
EMAIL = sim_module.TEST_EMAIL


def make_harness() -> Harness:
    sim = sim_module.PaystackSimulator(secret_key=WORKED_SECRET, hang_seconds=0.3)
    transport = httpx.ASGITransport(app=sim.app)

    def provider_with(secret: str) -> PaystackProvider:
        credentials = Credentials(secret_key=secret, public_key="pk_test_sim", base_url=BASE_URL)
        return PaystackProvider(
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

    def charge_with(authorization: str) -> Callable[[str, int], ChargeRequest]:
        def build(reference: str, amount_minor: int) -> ChargeRequest:
            return ChargeRequest(
                reference=reference,
                amount_minor=amount_minor,
                currency="NGN",
                email=EMAIL,
                authorization=authorization,
            )

        return build

    return Harness(
        name="PAYSTACK",
        currency="NGN",
        provider=provider_with(WORKED_SECRET),
        simulator=sim,
        checkout_request=checkout_request,
        complete_checkout=complete_checkout,
        charge_success=charge_with(sim_module.AUTH_SUCCESS),
        charge_decline=charge_with(sim_module.AUTH_DECLINE),
        charge_timeout=charge_with(sim_module.AUTH_TIMEOUT),
        good_webhook=SignedSample(
            body=WORKED_BODY,
            headers={"x-paystack-signature": WORKED_SIGNATURE, "content-type": "application/json"},
            expected_event_id="charge.success:4099260516",
        ),
        wrong_secret_provider=provider_with("sk_test_not_the_right_secret"),
        signature_header="x-paystack-signature",
    )
