"""DPO adapter wired to the in-process DPO simulator (see harness.py).

DPO has no merchant-initiated charge, so ``extras["charges"]`` is False: the contract's
charge tests check that the adapter refuses clearly, and a timed-out *checkout* stands in
for the timed-out charge (``extras["checkout_timeout"]``)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from novabilling.payments.providers.base import (
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    Credentials,
)
from novabilling.payments.providers.dpo import DpoProvider
from novabilling.simulators import dpo as sim_module
from tests.providers.harness import Harness, SignedSample

BASE_URL = "http://dpo.sim"
COMPANY_TOKEN = sim_module.DEFAULT_SECRET_KEY
EMAIL = "wanjiku@example.com"
# The pushPayments example of docs/providers/dpo.md (a paid transaction).
PUSH_SAMPLE = (
    b'<?xml version="1.0" encoding="utf-8"?><API3G><Result>000</Result>'
    b"<ResultExplanation>Transaction paid</ResultExplanation>"
    b"<TransactionToken>68B90B5E-25F6-4146-8AB1-G5B3A0C41N9E</TransactionToken>"
    b"<TransactionRef>NB-INV-2025-0001</TransactionRef><CustomerName>John Doe</CustomerName>"
    b"<TransactionCurrency>USD</TransactionCurrency><TransactionAmount>500.00</TransactionAmount>"
    b"</API3G>"
)


def credentials(company_token: str = COMPANY_TOKEN) -> Credentials:
    return Credentials(
        secret_key=company_token,
        extra={"serviceType": sim_module.SERVICE_TYPE, "environment": "test"},
        base_url=BASE_URL,
    )


def make_harness() -> Harness:
    sim = sim_module.DpoSimulator(secret_key=COMPANY_TOKEN, hang_seconds=0.3)
    transport = httpx.ASGITransport(app=sim.app)

    def provider_with(company_token: str) -> DpoProvider:
        return DpoProvider(
            credentials(company_token), transport=transport, timeout=0.1, backoff=0.01
        )

    def checkout_for(email: str) -> Callable[[str, int], CheckoutRequest]:
        def build(reference: str, amount_minor: int) -> CheckoutRequest:
            return CheckoutRequest(
                reference=reference,
                amount_minor=amount_minor,
                currency="USD",
                email=email,
                callback_url="https://billing.example.com/pay/return",
                description="Invoice",
            )

        return build

    async def complete_checkout(checkout: Checkout, success: bool) -> None:
        outcome = "success" if success else "failed"
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            response = await client.post(
                f"/_sim/pay/{checkout.provider_reference}?outcome={outcome}"
            )
            response.raise_for_status()

    def charge(reference: str, amount_minor: int) -> ChargeRequest:
        return ChargeRequest(reference, amount_minor, "USD", EMAIL, authorization="none")

    return Harness(
        name="DPO",
        currency="USD",
        provider=provider_with(COMPANY_TOKEN),
        simulator=sim,
        checkout_request=checkout_for(EMAIL),
        complete_checkout=complete_checkout,
        charge_success=charge,
        charge_decline=charge,
        charge_timeout=charge,
        good_webhook=SignedSample(
            body=PUSH_SAMPLE,
            headers={"content-type": "application/xml"},
            expected_event_id="68B90B5E-25F6-4146-8AB1-G5B3A0C41N9E:000",
        ),
        wrong_secret_provider=provider_with("00000000-0000-0000-0000-00000000DEAD"),
        signature_header=None,  # unsigned: confirmed with verifyToken
        extras={"charges": False, "checkout_timeout": checkout_for(sim_module.EMAIL_TIMEOUT)},
    )
