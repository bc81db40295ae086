"""Stripe adapter wired to the in-process Stripe simulator (see harness.py).

The clock is frozen just after the worked example's timestamp (reference/providers/
stripe.md §4.1) for both the adapter and the simulator, so the independently computed
worked-example signature and the simulator's own webhooks are both inside the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from novabilling.payments.providers.base import (
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    Credentials,
)
from novabilling.payments.providers.stripe import StripeProvider
from novabilling.simulators import stripe as sim_module
from tests.providers.harness import Harness, SignedSample

BASE_URL = "http://stripe.sim"
SECRET_KEY = "sk_test_nb_harness"
WORKED_SECRET = "whsec_test_NovaBillingWorkedExample0123456789"
WORKED_T = 1735689600
WORKED_BODY = (
    b'{"id":"evt_test_worked_example","object":"event","type":"payment_intent.succeeded",'
    b'"data":{"object":{"id":"pi_test_123","object":"payment_intent","amount":2500,'
    b'"currency":"usd","status":"succeeded"}}}'
)
WORKED_HEADER = "t=1735689600,v1=d50953e53f5759bee3dfdd8dfd5f9057a325e0bcfe83ecfd29e6a702aff1ba23"
FROZEN_NOW = WORKED_T + 60


def make_harness(*, currency: str = "USD") -> Harness:
    sim = sim_module.StripeSimulator(
        secret_key=SECRET_KEY,
        webhook_secret=WORKED_SECRET,
        hang_seconds=0.3,
        now=lambda: FROZEN_NOW,
    )
    transport = httpx.ASGITransport(app=sim.app)

    def provider_with(webhook_secret: str) -> StripeProvider:
        credentials = Credentials(
            secret_key=SECRET_KEY, webhook_secret=webhook_secret, base_url=BASE_URL
        )
        return StripeProvider(
            credentials,
            transport=transport,
            timeout=0.1,
            max_retries=2,
            backoff=0.01,
            now=lambda: FROZEN_NOW,
        )

    def checkout_request(reference: str, amount_minor: int) -> CheckoutRequest:
        return CheckoutRequest(
            reference=reference,
            amount_minor=amount_minor,
            currency=currency,
            email="amina@example.com",
            callback_url="https://billing.example.com/pay/success?session_id={CHECKOUT_SESSION_ID}",
        )

    async def complete_checkout(checkout: Checkout, success: bool) -> None:
        outcome = "success" if success else "failed"
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            response = await client.post(
                f"/_sim/pay/{checkout.provider_reference}?outcome={outcome}"
            )
            response.raise_for_status()

    def charge_with(payment_method: str) -> Callable[[str, int], ChargeRequest]:
        def build(reference: str, amount_minor: int) -> ChargeRequest:
            return ChargeRequest(
                reference=reference,
                amount_minor=amount_minor,
                currency=currency,
                email="amina@example.com",
                authorization=payment_method,
                customer_ref=sim_module.CUSTOMER,
                description=f"Renewal {reference}",
            )

        return build

    return Harness(
        name="STRIPE",
        currency=currency,
        provider=provider_with(WORKED_SECRET),
        simulator=sim,
        checkout_request=checkout_request,
        complete_checkout=complete_checkout,
        charge_success=charge_with(sim_module.PM_SUCCESS),
        charge_decline=charge_with(sim_module.PM_DECLINE),
        charge_timeout=charge_with(sim_module.PM_TIMEOUT),
        good_webhook=SignedSample(
            body=WORKED_BODY,
            headers={"Stripe-Signature": WORKED_HEADER, "Content-Type": "application/json"},
            expected_event_id="evt_test_worked_example",
        ),
        wrong_secret_provider=provider_with("whsec_test_wrong_secret"),
        signature_header="Stripe-Signature",
        extras={"amount_minor": 2500},
    )
