"""M-Pesa adapter wired to the in-process Daraja simulator (see harness.py).

Daraja posts callbacks to the CallBackURL of each push; here that URL is served by a tiny
ASGI app standing in for our webhook endpoint: it hands every callback to the adapter's
``parse_webhook`` and, as the real intake does once a callback is confirmed (here: it
comes from the simulator), to ``accept_callback`` (so the adapter learns receipts and
reversal results), and records the events in ``extras["events"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from novabilling.payments.providers.base import (
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    Credentials,
    WebhookEvent,
)
from novabilling.payments.providers.mpesa import MpesaProvider
from novabilling.simulators import mpesa as sim_module
from tests.providers.harness import Harness, SignedSample

BASE_URL = "http://mpesa.sim"
CALLBACK_URL = "https://billing.example.com/webhooks/mpesa/t_01/9f2c1a7e"
RESULT_URL = "https://billing.example.com/webhooks/mpesa/t_01/9f2c1a7e/reversal"
SAMPLE = Path(__file__).resolve().parent / "samples" / "mpesa.stk_callback.success.webhook.json"
CREDENTIALS = Credentials(
    secret_key=sim_module.DEFAULT_SECRET_KEY,
    extra={
        "consumer_key": sim_module.DEFAULT_CONSUMER_KEY,
        "shortcode": sim_module.SHORTCODE,
        "passkey": sim_module.PASSKEY,
        "callback_url": CALLBACK_URL,
        "initiator": "testapi",
        "security_credential": "c2ltdWxhdGVkLWNyZWRlbnRpYWw=",
        "result_url": RESULT_URL,
    },
    base_url=BASE_URL,
)


def receiver(provider: MpesaProvider, events: list[WebhookEvent]) -> httpx.ASGITransport:
    """Our webhook endpoint, in-process: parse and answer 200 like Daraja expects."""

    async def endpoint(request: Request) -> JSONResponse:
        event = provider.parse_webhook(await request.body(), dict(request.headers))
        provider.accept_callback(event)
        events.append(event)
        return JSONResponse({"ResultCode": 0, "ResultDesc": "Accepted"})

    paths = ["/webhooks/mpesa/t_01/9f2c1a7e", "/webhooks/mpesa/t_01/9f2c1a7e/reversal"]
    app = Starlette(routes=[Route(p, endpoint, methods=["POST"]) for p in paths])
    return httpx.ASGITransport(app=app)


def make_harness() -> Harness:
    sim = sim_module.MpesaSimulator(secret_key=sim_module.DEFAULT_SECRET_KEY, hang_seconds=0.3)
    transport = httpx.ASGITransport(app=sim.app)
    provider = MpesaProvider(
        CREDENTIALS, transport=transport, timeout=0.1, max_retries=2, backoff=0.01
    )
    events: list[WebhookEvent] = []
    sim.webhook_transport = receiver(provider, events)

    def checkout_request(reference: str, amount_minor: int) -> CheckoutRequest:
        return CheckoutRequest(
            reference=reference,
            amount_minor=amount_minor,
            currency="KES",
            email="wanjiku@example.com",
            phone=sim_module.PHONE_SUCCESS,
            description="Invoice",
        )

    async def complete_checkout(checkout: Checkout, success: bool) -> None:
        outcome = "success" if success else "failed"
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            response = await client.post(
                f"/_sim/pay/{checkout.provider_reference}?outcome={outcome}"
            )
            response.raise_for_status()

    def charge_to(phone: str) -> Callable[[str, int], ChargeRequest]:
        def build(reference: str, amount_minor: int) -> ChargeRequest:
            return ChargeRequest(
                reference=reference,
                amount_minor=amount_minor,
                currency="KES",
                email="wanjiku@example.com",
                phone=phone,
                description="Renewal",
            )

        return build

    return Harness(
        name="MPESA",
        currency="KES",
        provider=provider,
        simulator=sim,
        checkout_request=checkout_request,
        complete_checkout=complete_checkout,
        charge_success=charge_to(sim_module.PHONE_SUCCESS),
        charge_decline=charge_to(sim_module.PHONE_DECLINE),
        charge_timeout=charge_to(sim_module.PHONE_TIMEOUT),
        good_webhook=SignedSample(
            body=SAMPLE.read_bytes(),
            headers={"content-type": "application/json"},
            expected_event_id="ws_CO_01012025120000123708374149:0",
        ),
        wrong_secret_provider=MpesaProvider(CREDENTIALS, transport=transport),  # unsigned
        signature_header=None,
        extras={
            "amount_minor": 150000,  # KES 1,500: whole shillings
            "events": events,
            "transport": transport,
            "base_url": BASE_URL,
        },
    )
