"""Flutterwave-specific behaviour: major units, both webhook bodies and headers, failed
``charge.completed``, tokenized charges incl. 503s, refunds (adapter <-> simulator)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from novabilling.kit import money
from novabilling.payments.providers import flutterwave as fw
from novabilling.payments.providers.base import (
    ChargeRequest,
    Credentials,
    EventKind,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    RefundRequest,
    SignatureError,
)
from novabilling.simulators import flutterwave as sim_module
from tests.providers import harness_flutterwave as hf
from tests.providers.harness import Harness

SAMPLES = Path(__file__).resolve().parent / "samples"


@pytest.fixture
def h() -> Harness:
    return hf.make_harness()


def provider(harness: Harness, **changes: Any) -> fw.FlutterwaveProvider:
    base = Credentials(
        secret_key=hf.SECRET_KEY, webhook_secret=hf.SECRET_HASH, base_url=hf.BASE_URL
    )
    transport = httpx.ASGITransport(app=harness.simulator.app)
    return fw.FlutterwaveProvider(replace(base, **changes), transport=transport, backoff=0)


async def paid(h: Harness, reference: str, amount_minor: int, currency: str = "NGN") -> None:
    p = provider(h)
    req = replace(h.checkout_request(reference, amount_minor), currency=currency)
    checkout = await p.create_checkout(req)
    await h.complete_checkout(checkout, True)


# ---- money --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "wire"),
    [(505025, "NGN", "5050.25"), (1, "USD", "0.01"), (25000, "UGX", "25000"),
     (150000, "XOF", "150000"), (10, "KES", "0.1"), (1234567, "TND", "1234.567")],
)  # fmt: skip
def test_major_units_are_exact(minor: int, currency: str, wire: str) -> None:
    assert json.dumps(fw.to_major(minor, currency)) == wire
    assert fw.to_minor(Decimal(wire), currency) == minor


@given(
    minor=st.integers(min_value=1, max_value=10**13),
    currency=st.sampled_from(sorted(money.CURRENCIES)),
)
def test_major_round_trip_property(minor: int, currency: str) -> None:
    text = json.dumps(fw.to_major(minor, currency))
    exp = money.exponent(currency)
    assert Decimal(text) == Decimal(minor).scaleb(-exp)
    assert fw.to_minor(json.loads(text, parse_float=Decimal), currency) == minor


def test_inexact_amounts_are_refused_not_rounded() -> None:
    assert fw.to_minor(Decimal("100.5"), "UGX") is None
    assert fw.to_minor(Decimal("1.005"), "NGN") is None
    with pytest.raises(ProviderError):
        fw.to_major(0, "NGN")
    with pytest.raises(ProviderError):
        fw.to_major(100, "ZZZ")


@pytest.mark.parametrize(("currency", "minor", "major"), [("NGN", 505025, "5050.25"),
                                                           ("UGX", 25000, "25000")])  # fmt: skip
async def test_checkout_sends_major_units(
    h: Harness, currency: str, minor: int, major: str
) -> None:
    await paid(h, "NB-MAJ-1", minor, currency)
    assert h.simulator.payments["NB-MAJ-1"].amount == Decimal(major)
    tx = await provider(h).verify_transaction("NB-MAJ-1")
    assert (tx.outcome, tx.amount_minor, tx.currency) == (Outcome.SUCCEEDED, minor, currency)


# ---- checkout, verify, webhooks -------------------------------------------------------


async def test_unpaid_checkout_verifies_pending(h: Harness) -> None:
    p = provider(h)
    checkout = await p.create_checkout(h.checkout_request("NB-P-1", 5000))
    assert checkout.url and checkout.url.startswith("https://checkout.flutterwave.com/")
    again = await p.create_checkout(h.checkout_request("NB-P-1", 5000))
    assert again.url == checkout.url  # same tx_ref, same link
    assert (await p.verify_transaction("NB-P-1")).outcome is Outcome.PENDING


async def test_success_gives_token_and_signed_envelope_webhook(h: Harness) -> None:
    await paid(h, "NB-S-1", 500000)
    tx = await provider(h).verify_transaction("NB-S-1")
    assert tx.outcome is Outcome.SUCCEEDED and tx.authorization and tx.provider_reference
    sent = await h.simulator.drain()
    assert len(sent) == 1 and set(sent[0].headers) >= {"verif-hash", "flutterwave-signature"}
    event = provider(h).parse_webhook(sent[0].body, sent[0].headers)
    assert (event.kind, event.reference, event.amount_minor) == (
        EventKind.PAYMENT_SUCCEEDED, "NB-S-1", 500000)  # fmt: skip
    # the token is reusable with the same email only
    charge = ChargeRequest("NB-S-2", 100, "NGN", hf.EMAIL, authorization=tx.authorization)
    assert (await provider(h).charge(charge)).outcome is Outcome.SUCCEEDED
    with pytest.raises(ProviderError):
        await provider(h).charge(ChargeRequest(
            "NB-S-3", 100, "NGN", "other@example.com", authorization=tx.authorization))  # fmt: skip


async def test_failed_payment_sends_charge_completed_with_failed_status(h: Harness) -> None:
    p = provider(h)
    checkout = await p.create_checkout(h.checkout_request("NB-F-1", 5000))
    await h.complete_checkout(checkout, False)
    assert (await p.verify_transaction("NB-F-1")).outcome is Outcome.FAILED
    (sent,) = await h.simulator.drain()
    assert sent.json()["event"] == "charge.completed"
    event = p.parse_webhook(sent.body, sent.headers)
    assert (event.kind, event.outcome) == (EventKind.PAYMENT_FAILED, Outcome.FAILED)
    assert event.event_id.endswith(":failed")


async def test_legacy_flat_webhook_from_simulator(h: Harness) -> None:
    h.simulator.webhook_format = "legacy"
    await paid(h, "NB-L-1", 5000)
    (sent,) = await h.simulator.drain()
    assert "txRef" in sent.json() and "data" not in sent.json()
    event = provider(h).parse_webhook(sent.body, sent.headers)
    assert (event.reference, event.outcome, event.amount_minor) == (
        "NB-L-1",
        Outcome.SUCCEEDED,
        5000,
    )


SAMPLE_EVENTS = {
    "flutterwave.charge.completed.success.webhook.json": (
        "8415006:successful", EventKind.PAYMENT_SUCCEEDED, "NB-INV-2025-0001", 500000),
    "flutterwave.charge.completed.failed.webhook.json": (
        "8415099:failed", EventKind.PAYMENT_FAILED, "NB-INV-2025-0002", 500000),
    "flutterwave.charge.completed.legacy_flat.webhook.json": (
        "8415006:successful", EventKind.PAYMENT_SUCCEEDED, "NB-INV-2025-0001", 500000),
    "flutterwave.charge.completed.mpesa.webhook.json": (
        "4193428:successful", EventKind.PAYMENT_SUCCEEDED, "NB-INV-2025-0300", 150000),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SAMPLE_EVENTS))
@pytest.mark.parametrize("header", ["verif-hash", "flutterwave-signature"])
def test_reference_samples_verify_with_either_header(h: Harness, name: str, header: str) -> None:
    signatures = json.loads((SAMPLES / "signatures.json").read_text())
    body = (SAMPLES / name).read_bytes()
    headers = {header: signatures["files"][name]["headers"][header]}
    event = provider(h).parse_webhook(body, headers)
    assert (event.event_id, event.kind, event.reference, event.amount_minor) == SAMPLE_EVENTS[name]


def test_signature_rules(h: Harness) -> None:
    p, body = provider(h), hf.WORKED_BODY
    assert p.parse_webhook(body, {"Verif-Hash": hf.SECRET_HASH}).event_id == "8415006:successful"
    assert p.parse_webhook(body, {"flutterwave-signature": hf.SECRET_HASH}).reference  # doc variant
    for bad in ({}, {"verif-hash": "nope"}, {"flutterwave-signature": hf.WORKED_SIGNATURE[:-2]}):
        with pytest.raises(SignatureError):
            p.parse_webhook(body, bad)
    with pytest.raises(SignatureError):  # the MAC covers the body
        p.parse_webhook(
            body.replace(b"5000", b"9000"), {"flutterwave-signature": hf.WORKED_SIGNATURE}
        )
    with pytest.raises(SignatureError):  # no secret hash configured: nothing verifies
        provider(h, webhook_secret=None).parse_webhook(body, {"verif-hash": hf.SECRET_HASH})
    with pytest.raises(SignatureError):
        p.parse_webhook(b"not json", {"verif-hash": hf.SECRET_HASH})


# ---- tokenized charges ----------------------------------------------------------------


def charge(token: str, reference: str = "NB-C-1") -> ChargeRequest:
    return ChargeRequest(reference, 500000, "NGN", hf.EMAIL, authorization=token)


async def test_tokenized_charge_outcomes(h: Harness) -> None:
    ok = await provider(h).charge(charge(sim_module.TOKEN_SUCCESS, "NB-C-OK"))
    assert (ok.outcome, ok.amount_minor, ok.currency) == (Outcome.SUCCEEDED, 500000, "NGN")
    declined = await provider(h).charge(charge(sim_module.TOKEN_DECLINE, "NB-C-NO"))
    assert declined.outcome is Outcome.FAILED and declined.message == "Insufficient Funds"
    with pytest.raises(ProviderError):
        await provider(h).charge(charge("flw-t1nf-unknown-m03k", "NB-C-UNK"))


async def test_timeout_in_flight_is_unknown_then_settles(h: Harness) -> None:
    tx = await provider(h).charge(charge(sim_module.TOKEN_TIMEOUT, "NB-C-TO"))
    assert tx.outcome is Outcome.UNKNOWN and tx.provider_reference
    assert h.simulator.charges_for("NB-C-TO") == 1
    await h.simulator.drain()
    assert (await provider(h).verify_transaction("NB-C-TO")).outcome is Outcome.SUCCEEDED


async def test_unavailable_is_retried_only_when_nothing_was_recorded(h: Harness) -> None:
    with pytest.raises(ProviderUnavailable):
        await provider(h).charge(charge(sim_module.TOKEN_UNAVAILABLE, "NB-C-UN"))
    assert h.simulator.charges_for("NB-C-UN") == 0
    assert h.simulator.attempts_for("NB-C-UN") == 6  # 3 POSTs, each followed by a lookup


async def test_503_after_debit_is_found_by_reference(h: Harness) -> None:
    tx = await provider(h).charge(charge(sim_module.TOKEN_TIMEOUT_CHARGED, "NB-C-TC"))
    assert tx.outcome is Outcome.SUCCEEDED and tx.amount_minor == 500000
    assert h.simulator.charges_for("NB-C-TC") == 1


async def test_5xx_is_retried_then_unavailable(h: Harness) -> None:
    h.simulator.fail_next(2)
    assert (await provider(h).verify_transaction("NB-X")).outcome is Outcome.PENDING
    h.simulator.fail_next(3)
    with pytest.raises(ProviderUnavailable):
        await provider(h).verify_transaction("NB-X")


async def test_credentials(h: Harness) -> None:
    assert await provider(h).verify_credentials() is True
    assert await provider(h, secret_key="FLWSECK_TEST-wrong-X").verify_credentials() is False
    with pytest.raises(ProviderError) as info:
        await provider(h, secret_key="FLWSECK_TEST-wrong-X").create_checkout(
            h.checkout_request("NB-A", 100))  # fmt: skip
    assert info.value.status == 401


# ---- refunds --------------------------------------------------------------------------


async def test_partial_then_full_refund_and_status(h: Harness) -> None:
    await paid(h, "NB-R-1", 500000)
    p = provider(h)
    tx = await p.verify_transaction("NB-R-1")
    first = await p.refund(RefundRequest("RF-1", "NB-R-1", tx.provider_reference, 200050, "NGN"))
    assert (first.outcome, first.amount_minor) == (Outcome.SUCCEEDED, 200050)
    assert h.simulator.refunds[int(first.provider_refund_id or 0)]["amount_refunded"] == 2000.5
    again = await p.refund_status(first)
    assert (
        again.outcome is Outcome.SUCCEEDED and again.provider_refund_id == first.provider_refund_id
    )
    second = await p.refund(RefundRequest("RF-2", "NB-R-1", None, 299950, "NGN"))  # id looked up
    assert second.outcome is Outcome.SUCCEEDED
    with pytest.raises(ProviderError):  # nothing left to refund
        await p.refund(RefundRequest("RF-3", "NB-R-1", tx.provider_reference, 1, "NGN"))
