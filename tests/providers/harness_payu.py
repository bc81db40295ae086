"""PayU adapter wired to the in-process PayU simulator (see harness.py)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from novabilling.payments.providers.base import (
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    Credentials,
)
from novabilling.payments.providers.payu import PayuProvider
from novabilling.simulators import payu as sim_module
from tests.providers.harness import Harness, SignedSample

BASE_URL = "http://payu.sim"
EMAIL = "thandi@example.com"
# The IPN example of PayU's documentation (docs/providers/payu.md), straight quotes.
IPN_SAMPLE = (
    b"<PaymentNotification><MerchantReference>MREF026</MerchantReference>"
    b"<TransactionType>PAYMENT</TransactionType><TransactionState>SUCCESSFUL</TransactionState>"
    b"<ResultCode>00</ResultCode><ResultMessage>Successful</ResultMessage>"
    b"<PayUReference>80a0c8eb-fa63-40d3-94f0-8bdabc324932</PayUReference>"
    b"<Basket><Description>ADS026</Description><AmountInCents>2100</AmountInCents>"
    b"<CurrencyCode>ZAR</CurrencyCode></Basket><PaymentMethodsUsed>"
    b'<CreditCard Information="Visa" NameOnCard="Mr Soap" CardNumber="522112xxxxxx1234" '
    b'AmountInCents="10000" /></PaymentMethodsUsed><IpnExtraInfo>'
    b"<ResponseHash>7a06fe382948e97ad9207b8528d8c1f6847ac10d6230118ff9b3fb90eeaa4743"
    b"</ResponseHash></IpnExtraInfo></PaymentNotification>"
)


def credentials(password: str = sim_module.DEFAULT_SECRET_KEY) -> Credentials:
    return Credentials(
        secret_key=sim_module.DEFAULT_SAFE_KEY,
        public_key=password,
        extra={"apiUsername": sim_module.DEFAULT_USERNAME, "environment": "staging"},
        base_url=BASE_URL,
    )


def make_harness() -> Harness:
    sim = sim_module.PayuSimulator(hang_seconds=0.3)
    transport = httpx.ASGITransport(app=sim.app)

    def provider_with(password: str) -> PayuProvider:
        return PayuProvider(
            credentials(password), transport=transport, timeout=0.1, max_retries=2, backoff=0.01
        )

    def checkout_for(email: str) -> Callable[[str, int], CheckoutRequest]:
        def build(reference: str, amount_minor: int) -> CheckoutRequest:
            return CheckoutRequest(
                reference=reference,
                amount_minor=amount_minor,
                currency="ZAR",
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

    def charge_with(pm_id: str) -> Callable[[str, int], ChargeRequest]:
        def build(reference: str, amount_minor: int) -> ChargeRequest:
            return ChargeRequest(reference, amount_minor, "ZAR", EMAIL, authorization=pm_id)

        return build

    return Harness(
        name="PAYU",
        currency="ZAR",
        provider=provider_with(sim_module.DEFAULT_SECRET_KEY),
        simulator=sim,
        checkout_request=checkout_for(EMAIL),
        complete_checkout=complete_checkout,
        charge_success=charge_with(sim_module.PM_SUCCESS),
        charge_decline=charge_with(sim_module.PM_DECLINE),
        charge_timeout=charge_with(sim_module.PM_TIMEOUT),
        good_webhook=SignedSample(
            body=IPN_SAMPLE,
            headers={"content-type": "text/xml"},
            expected_event_id="7a06fe382948e97ad9207b8528d8c1f6847ac10d6230118ff9b3fb90eeaa4743",
        ),
        wrong_secret_provider=provider_with("not-the-soap-password"),
        signature_header=None,  # unsigned: confirmed with getTransaction
        extras={"checkout_timeout": checkout_for(sim_module.EMAIL_TIMEOUT)},
    )
