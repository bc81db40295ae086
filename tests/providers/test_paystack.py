"""Paystack-specific behaviour beyond the shared contract suite."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from novabilling.payments.providers.base import (
    Credentials,
    EventKind,
    Outcome,
    ProviderError,
    RefundRequest,
)
from novabilling.payments.providers.paystack import (
    PaystackProvider,
    from_paystack_amount,
    to_paystack_amount,
)
from novabilling.simulators import create_simulator_app
from novabilling.simulators import paystack as sim_module
from tests.providers.harness_paystack import BASE_URL, WORKED_SECRET, make_harness

SAMPLES = Path(__file__).resolve().parent / "samples"


def test_amounts_are_integer_subunits() -> None:
    assert to_paystack_amount(500000, "NGN") == 500000
    assert to_paystack_amount(300, "kes") == 300
    assert to_paystack_amount(1500, "XOF") == 150000  # XOF has no minor unit; Paystack x100
    assert from_paystack_amount("150000", "XOF") == 1500
    assert from_paystack_amount("200000", "NGN") == 200000
    with pytest.raises(ProviderError):
        to_paystack_amount(100, "EUR")


async def test_duplicate_reference_on_initialize_is_a_400() -> None:
    h = make_harness()
    await h.provider.create_checkout(h.checkout_request("NB-DUP-1", 5000))
    with pytest.raises(ProviderError) as caught:
        await h.provider.create_checkout(h.checkout_request("NB-DUP-1", 5000))
    assert caught.value.code == "duplicate_reference"
    assert caught.value.status == 400


async def test_recharging_a_reference_is_unknown_not_a_second_charge() -> None:
    h = make_harness()
    first = await h.provider.charge(h.charge_success("NB-RECHARGE-1", 5000))
    again = await h.provider.charge(h.charge_success("NB-RECHARGE-1", 5000))
    assert first.outcome is Outcome.SUCCEEDED
    assert again.outcome is Outcome.UNKNOWN
    assert h.simulator.charges_for("NB-RECHARGE-1") == 1
    verified = await h.provider.verify_transaction("NB-RECHARGE-1")
    assert verified.outcome is Outcome.SUCCEEDED


async def test_decline_is_http_200_with_failed_status() -> None:
    h = make_harness()
    tx = await h.provider.charge(h.charge_decline("NB-DECL-X", 5000))
    assert tx.outcome is Outcome.FAILED
    assert tx.message == "Insufficient Funds"
    assert tx.raw["status"] == "failed"
    assert not h.simulator.sent_webhooks  # Paystack sends no webhook for failures


async def test_authorization_is_bound_to_its_email() -> None:
    h = make_harness()
    request = h.charge_success("NB-EMAIL-1", 5000)
    other = type(request)(**{**request.__dict__, "email": "someone@else.example"})
    tx = await h.provider.charge(other)
    assert tx.outcome is Outcome.FAILED


async def test_checkout_yields_a_reusable_authorization_for_renewals() -> None:
    h = make_harness()
    checkout = await h.provider.create_checkout(h.checkout_request("NB-FIRST-1", 5000))
    assert checkout.url and checkout.url.startswith(f"{BASE_URL}/checkout/")
    await h.complete_checkout(checkout, True)
    first = await h.provider.verify_transaction("NB-FIRST-1")
    assert first.authorization and first.authorization.startswith("AUTH_")
    renewal = h.charge_success("NB-RENEW-1", 5000)
    renewal = type(renewal)(**{**renewal.__dict__, "authorization": first.authorization})
    assert (await h.provider.charge(renewal)).outcome is Outcome.SUCCEEDED


async def test_bad_key_is_401_invalid_key() -> None:
    h = make_harness()
    transport = httpx.ASGITransport(app=h.simulator.app)
    bad = PaystackProvider(
        Credentials(secret_key="sk_test_wrong", base_url=BASE_URL), transport=transport
    )
    assert await bad.verify_credentials() is False
    assert await h.provider.verify_credentials() is True
    with pytest.raises(ProviderError) as caught:
        await bad.create_checkout(h.checkout_request("NB-BADKEY-1", 5000))
    assert caught.value.status == 401
    assert caught.value.message == "Invalid key"


async def test_unknown_reference_verifies_as_unknown() -> None:
    h = make_harness()
    tx = await h.provider.verify_transaction("NB-NEVER-SEEN")
    assert tx.outcome is Outcome.UNKNOWN


async def test_refund_over_remaining_is_rejected_and_events_are_distinct() -> None:
    h = make_harness()
    tx = await h.provider.charge(h.charge_success("NB-REF-1", 10000))

    def refund(ref: str, amount: int) -> RefundRequest:
        return RefundRequest(ref, "NB-REF-1", tx.provider_reference, amount, "NGN")

    await h.provider.refund(refund("NB-REF-1-a", 4000))
    await h.provider.refund(refund("NB-REF-1-b", 6000))
    with pytest.raises(ProviderError):
        await h.provider.refund(refund("NB-REF-1-c", 1))
    await h.simulator.drain()
    events = [h.provider.parse_webhook(w.body, w.headers) for w in h.simulator.sent_webhooks]
    refund_events = [e for e in events if e.kind is EventKind.REFUND_UPDATED]
    assert len({e.event_id for e in refund_events}) == 4  # 2 pending + 2 processed
    assert {e.amount_minor for e in refund_events} == {4000, 6000}
    assert (await h.provider.verify_transaction("NB-REF-1")).raw["status"] == "reversed"


@pytest.mark.parametrize(
    ("name", "event_id", "kind", "outcome"),
    [
        (
            "paystack.charge.success.webhook.json",
            None,
            EventKind.PAYMENT_SUCCEEDED,
            Outcome.SUCCEEDED,
        ),
        (
            "paystack.refund.processed.webhook.json",
            None,
            EventKind.REFUND_UPDATED,
            Outcome.SUCCEEDED,
        ),
        ("paystack.refund.failed.webhook.json", None, EventKind.REFUND_UPDATED, Outcome.FAILED),
    ],
)
def test_sample_files_verify_over_their_exact_bytes(
    name: str, event_id: str | None, kind: EventKind, outcome: Outcome
) -> None:
    signatures = json.loads((SAMPLES / "signatures.json").read_text())
    assert signatures["secrets"]["paystack_secret_key"] == WORKED_SECRET
    body = (SAMPLES / name).read_bytes()
    provider = PaystackProvider(Credentials(secret_key=WORKED_SECRET))
    event = provider.parse_webhook(body, signatures["files"][name]["headers"])
    assert event.kind is kind
    assert event.outcome is outcome
    assert event.reference == "NB-INV-2025-0001"
    # a re-serialised body no longer matches (the raw bytes are what is signed)
    reserialised = json.dumps(json.loads(body)).encode()
    with pytest.raises(Exception, match="signature"):
        provider.parse_webhook(reserialised, signatures["files"][name]["headers"])


async def test_webhooks_are_delivered_into_an_asgi_app_and_redelivered() -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def inbox(request: Request) -> Response:
        received.append((await request.body(), dict(request.headers)))
        return Response(status_code=200)

    receiver = Starlette(routes=[Route("/webhooks/paystack/t1", inbox, methods=["POST"])])
    sim = sim_module.PaystackSimulator(
        secret_key=WORKED_SECRET,
        webhook_url="http://us.test/webhooks/paystack/t1",
        webhook_transport=httpx.ASGITransport(app=receiver),
    )
    provider = PaystackProvider(
        Credentials(secret_key=WORKED_SECRET, base_url=BASE_URL),
        transport=httpx.ASGITransport(app=sim.app),
    )
    await provider.charge(make_harness().charge_success("NB-HOOK-1", 5000))
    await sim.drain()
    await sim.sender.redeliver()
    assert len(received) == 2 and all(w.status_code == 200 for w in sim.sent_webhooks)
    ids = {provider.parse_webhook(body, headers).event_id for body, headers in received}
    assert len(ids) == 1


async def test_registry_builds_the_simulator_app() -> None:
    app = create_simulator_app("PayStack")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        response = await c.get("/bank", headers={"Authorization": f"Bearer {WORKED_SECRET}"})
    assert response.status_code == 200
    with pytest.raises(KeyError, match="unknown simulator"):
        create_simulator_app("paypal")
