"""Stripe-specific behaviour beyond the shared contract suite."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from novabilling.payments.providers.base import (
    Credentials,
    EventKind,
    Outcome,
    ProviderError,
    RefundRequest,
    SignatureError,
)
from novabilling.payments.providers.stripe import (
    StripeProvider,
    from_stripe_amount,
    to_stripe_amount,
)
from novabilling.simulators import stripe as sim_module
from tests.providers.harness_stripe import (
    BASE_URL,
    SECRET_KEY,
    WORKED_BODY,
    WORKED_HEADER,
    WORKED_SECRET,
    WORKED_T,
    make_harness,
)

SAMPLES = Path(__file__).resolve().parent / "samples"


def _verifier(now: float, secret: str = WORKED_SECRET) -> StripeProvider:
    return StripeProvider(
        Credentials(secret_key=SECRET_KEY, webhook_secret=secret), now=lambda: now
    )


@pytest.mark.parametrize(
    ("minor", "currency", "wire"),
    [
        (2500, "USD", 2500),
        (5000, "UGX", 5000),
        (5000, "RWF", 5000),
        (1000, "XOF", 1000),
        (1000, "XAF", 1000),
        (1500, "JPY", 1500),
        (500000, "NGN", 500000),
    ],
)
def test_zero_decimal_currencies_are_whole_units(minor: int, currency: str, wire: int) -> None:
    assert to_stripe_amount(minor, currency) == wire
    assert from_stripe_amount(wire, currency.lower()) == minor


async def test_zero_decimal_charge_round_trip_in_ugx() -> None:
    h = make_harness(currency="UGX")
    tx = await h.provider.charge(h.charge_success("NB-UGX-1", 37000))
    assert tx.outcome is Outcome.SUCCEEDED
    assert (tx.amount_minor, tx.currency) == (37000, "UGX")
    intent = h.simulator.intents[tx.provider_reference]
    assert (intent["amount"], intent["currency"]) == (37000, "ugx")  # lower case, not x100


def test_tolerance_is_300_seconds_both_ways() -> None:
    assert _verifier(WORKED_T + 300).parse_webhook(WORKED_BODY, {"Stripe-Signature": WORKED_HEADER})
    for now in (WORKED_T + 301, WORKED_T - 301):
        with pytest.raises(SignatureError, match="tolerance"):
            _verifier(now).parse_webhook(WORKED_BODY, {"stripe-signature": WORKED_HEADER})


@pytest.mark.parametrize(
    "header",
    ["", "v1=abc", "t=1735689600", "t=notanumber,v1=abc", "t=1735689600,v0=" + "0" * 64],
)
def test_malformed_signature_headers_are_rejected(header: str) -> None:
    with pytest.raises(SignatureError):
        _verifier(WORKED_T).parse_webhook(WORKED_BODY, {"Stripe-Signature": header})


async def test_rotation_any_v1_entry_may_match() -> None:
    sim = sim_module.StripeSimulator(
        secret_key=SECRET_KEY,
        webhook_secret="whsec_new",
        extra_webhook_secrets=("whsec_old",),
        now=lambda: WORKED_T,
    )
    provider = StripeProvider(
        Credentials(secret_key=SECRET_KEY, base_url=BASE_URL),
        transport=httpx.ASGITransport(app=sim.app),
    )
    tx = await provider.charge(make_harness().charge_success("NB-ROT-1", 2500))
    await sim.drain()
    sent = sim.sent_webhooks[-1]
    assert sent.headers["Stripe-Signature"].count("v1=") == 2
    for secret in ("whsec_new", "whsec_old"):
        event = _verifier(WORKED_T, secret).parse_webhook(sent.body, sent.headers)
        assert event.reference == "NB-ROT-1" and event.provider_reference == tx.provider_reference
    with pytest.raises(SignatureError):
        _verifier(WORKED_T, "whsec_other").parse_webhook(sent.body, sent.headers)


async def test_idempotent_replay_returns_the_first_payment_intent() -> None:
    h = make_harness()
    first = await h.provider.charge(h.charge_success("NB-IDEM-1", 2500))
    again = await h.provider.charge(h.charge_success("NB-IDEM-1", 2500))
    assert first.provider_reference == again.provider_reference
    assert h.simulator.charges_for("NB-IDEM-1") == 1
    with pytest.raises(ProviderError) as caught:
        await h.provider.charge(h.charge_success("NB-IDEM-1", 9900))
    assert caught.value.code == "idempotency_error" and caught.value.status == 400


async def test_replay_header_and_form_encoding_on_the_wire() -> None:
    h = make_harness()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=h.simulator.app), base_url=BASE_URL, auth=(SECRET_KEY, "")
    ) as client:  # Basic auth with the key as user name also works
        form = {
            "amount": "2500",
            "currency": "usd",
            "customer": sim_module.CUSTOMER,
            "payment_method": "pm_card_visa",
            "confirm": "true",
            "off_session": "true",
        }
        one = await client.post("/v1/payment_intents", data=form, headers={"Idempotency-Key": "k1"})
        two = await client.post("/v1/payment_intents", data=form, headers={"Idempotency-Key": "k1"})
    assert one.status_code == two.status_code == 200
    assert two.headers["Idempotent-Replayed"] == "true"
    assert one.json()["id"] == two.json()["id"]


async def test_authentication_required_is_failed_with_message() -> None:
    h = make_harness()
    request = h.charge_success("NB-SCA-1", 2500)
    request = type(request)(**{**request.__dict__, "authorization": sim_module.PM_AUTH_REQUIRED})
    tx = await h.provider.charge(request)
    assert tx.outcome is Outcome.FAILED
    assert tx.message and tx.message.startswith("authentication_required")
    assert tx.provider_reference and tx.provider_reference.startswith("pi_")


async def test_bad_key_is_401() -> None:
    h = make_harness()
    bad = StripeProvider(
        Credentials(secret_key="sk_test_wrong", base_url=BASE_URL),
        transport=httpx.ASGITransport(app=h.simulator.app),
    )
    assert await bad.verify_credentials() is False
    assert await h.provider.verify_credentials() is True
    with pytest.raises(ProviderError) as caught:
        await bad.create_checkout(h.checkout_request("NB-BAD-1", 2500))
    assert caught.value.status == 401


async def test_refund_lifecycle_and_over_refund() -> None:
    h = make_harness()
    tx = await h.provider.charge(h.charge_success("NB-SREF-1", 2500))

    def refund(ref: str, amount: int) -> RefundRequest:
        return RefundRequest(ref, "NB-SREF-1", None, amount, "USD", "requested_by_customer")

    pending = await h.provider.refund(refund("NB-SREF-1-a", 1000))  # looks the PI up itself
    assert pending.outcome is Outcome.PENDING
    with pytest.raises(ProviderError):
        await h.provider.refund(refund("NB-SREF-1-b", 2000))
    await h.simulator.drain()
    assert (await h.provider.refund_status(pending)).outcome is Outcome.SUCCEEDED
    events = [h.provider.parse_webhook(w.body, w.headers) for w in h.simulator.sent_webhooks]
    updated = [e for e in events if e.raw["type"] == "refund.updated"]
    assert updated and updated[0].reference == "NB-SREF-1-a"
    assert updated[0].outcome is Outcome.SUCCEEDED and tx.provider_reference


@pytest.mark.parametrize(
    ("name", "kind", "outcome"),
    [
        (
            "stripe.checkout.session.completed.webhook.json",
            EventKind.PAYMENT_SUCCEEDED,
            Outcome.SUCCEEDED,
        ),
        (
            "stripe.payment_intent.succeeded.webhook.json",
            EventKind.PAYMENT_SUCCEEDED,
            Outcome.SUCCEEDED,
        ),
        (
            "stripe.payment_intent.payment_failed.webhook.json",
            EventKind.PAYMENT_FAILED,
            Outcome.FAILED,
        ),
        ("stripe.refund.updated.webhook.json", EventKind.REFUND_UPDATED, Outcome.SUCCEEDED),
        ("stripe.refund.failed.webhook.json", EventKind.REFUND_UPDATED, Outcome.FAILED),
    ],
)
def test_sample_files_verify_over_their_exact_bytes(
    name: str, kind: EventKind, outcome: Outcome
) -> None:
    signatures = json.loads((SAMPLES / "signatures.json").read_text())
    entry = signatures["files"][name]
    body = (SAMPLES / name).read_bytes()
    event = _verifier(entry["timestamp_used"]).parse_webhook(body, entry["headers"])
    assert event.event_id == json.loads(body)["id"]
    assert (event.kind, event.outcome) == (kind, outcome)
    with pytest.raises(SignatureError):  # the real clock is far past the sample's timestamp
        StripeProvider(
            Credentials(secret_key=SECRET_KEY, webhook_secret=WORKED_SECRET)
        ).parse_webhook(body, entry["headers"])
