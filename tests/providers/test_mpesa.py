"""M-Pesa-specific behaviour: STK password, whole-KES amounts, AccountReference mapping,
the "still processing" HTTP 500, every ResultCode, unsigned callbacks, reversals."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from novabilling.payments.providers import mpesa
from novabilling.payments.providers.base import (
    ChargeRequest,
    EventKind,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    Refund,
    RefundRequest,
    SignatureError,
)
from novabilling.simulators import mpesa as sim_module
from tests.providers import harness_mpesa as hm
from tests.providers.harness import Harness

SAMPLES = Path(__file__).resolve().parent / "samples"
PASSKEY = sim_module.PASSKEY
PREFIX = "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4"


@pytest.fixture
def h() -> Harness:
    return hm.make_harness()


def adapter(h: Harness, **extra: str) -> mpesa.MpesaProvider:
    credentials = replace(hm.CREDENTIALS, extra={**hm.CREDENTIALS.extra, **extra})
    transport = httpx.ASGITransport(app=h.simulator.app)
    return mpesa.MpesaProvider(credentials, transport=transport, backoff=0)


def push(reference: str, phone: str = sim_module.PHONE_SUCCESS, amount: int = 150000) -> Any:
    return ChargeRequest(reference, amount, "KES", "w@example.com", phone=phone)


@pytest.mark.parametrize(
    ("timestamp", "password"),
    [
        ("20250101120000", PREFIX + "ZTZiNzJhZGExZWQyYzkxOTIwMjUwMTAxMTIwMDAw"),
        ("20210628092408", PREFIX + "ZTZiNzJhZGExZWQyYzkxOTIwMjEwNjI4MDkyNDA4"),
    ],
)  # fmt: skip
def test_stk_password_worked_examples(timestamp: str, password: str) -> None:
    assert mpesa.stk_password("174379", PASSKEY, timestamp) == password
    sample = json.loads((SAMPLES / "mpesa.stkpush.request.json").read_text())
    assert mpesa.stk_password("174379", PASSKEY, sample["Timestamp"]) == sample["Password"]


def test_account_reference_fits_twelve_chars() -> None:
    assert mpesa.account_reference("INV0001") == "INV0001"
    long = mpesa.account_reference("NB-INV-2025-0001")
    assert len(long) == 12 and long.startswith("250001")
    assert long == mpesa.account_reference("NB-INV-2025-0001")  # deterministic
    assert long != mpesa.account_reference("XB-INV-2025-0001")
    assert sim_module.account_reference("NB-INV-2025-0001") == long


def test_amounts_and_phones() -> None:
    assert mpesa.whole_kes(150000, "KES") == 1500
    for minor, currency in ((150050, "KES"), (150000, "NGN"), (0, "KES")):
        with pytest.raises(ProviderError):
            mpesa.whole_kes(minor, currency)
    assert mpesa.msisdn("+254 708 374 149") == mpesa.msisdn("0708374149") == "254708374149"
    with pytest.raises(ProviderError):
        mpesa.msisdn("+1 555 0100")


async def test_cents_are_refused_before_calling_daraja(h: Harness) -> None:
    with pytest.raises(ProviderError, match="whole shillings"):
        await h.provider.charge(push("NB-C", amount=150050))
    assert h.simulator.pushes == {}


async def test_wrong_passkey_is_wrong_credentials(h: Harness) -> None:
    with pytest.raises(ProviderError) as info:
        await adapter(h, passkey="0" * 64).charge(push("NB-W"))
    assert (info.value.code, info.value.message) == ("500.001.1001", "Wrong credentials")


async def test_plain_http_callback_url_is_refused(h: Harness) -> None:
    with pytest.raises(ProviderError, match="CallBackURL"):
        await adapter(h, callback_url="http://billing.example.com/cb").charge(push("NB-H"))


async def test_pending_500_then_success(h: Harness) -> None:
    checkout = await h.provider.create_checkout(h.checkout_request("NB-INV-2025-0001", 150000))
    assert checkout.url is None and checkout.provider_reference.startswith("ws_CO_")  # type: ignore[union-attr]
    pushed = h.simulator.pushes[checkout.provider_reference]
    assert (pushed.account_reference, pushed.amount) == (
        mpesa.account_reference("NB-INV-2025-0001"), 1500)  # fmt: skip
    first = await h.provider.verify_transaction("NB-INV-2025-0001")
    assert first.outcome is Outcome.PENDING and "being processed" in (first.message or "")
    await h.complete_checkout(checkout, True)
    by_id = await adapter(h).verify_transaction(checkout.provider_reference or "")  # any instance
    assert by_id.outcome is Outcome.SUCCEEDED and by_id.reference == checkout.provider_reference
    tx = await h.provider.verify_transaction("NB-INV-2025-0001")  # our reference, same instance
    assert (tx.outcome, tx.amount_minor, tx.currency) == (Outcome.SUCCEEDED, 150000, "KES")


@pytest.mark.parametrize(
    ("phone", "code"),
    [(sim_module.PHONE_SUCCESS, 0), (sim_module.PHONE_INSUFFICIENT, 1),
     (sim_module.PHONE_CANCELLED, 1032), (sim_module.PHONE_TIMEOUT_USER, 1037),
     (sim_module.PHONE_EXPIRED, 1019), (sim_module.PHONE_WRONG_PIN, 2001)],
)  # fmt: skip
async def test_each_result_code(h: Harness, phone: str, code: int) -> None:
    pending = await h.provider.charge(push("NB-RC", phone))
    assert pending.outcome is Outcome.PENDING
    (sent,) = await h.simulator.drain()
    assert sent.json()["Body"]["stkCallback"]["ResultCode"] == code  # a number here
    event = h.provider.parse_webhook(sent.body, sent.headers)
    expected = Outcome.SUCCEEDED if code == 0 else Outcome.FAILED
    assert (event.event_id, event.outcome, event.reference) == (
        f"{pending.provider_reference}:{code}", expected, "NB-RC")  # fmt: skip
    assert event.kind is (EventKind.PAYMENT_SUCCEEDED if code == 0 else EventKind.PAYMENT_FAILED)
    assert event.raw["needs_confirmation"] is True
    tx = await h.provider.verify_transaction(pending.provider_reference or "")
    assert tx.outcome is expected and tx.raw["ResultCode"] == str(code)  # a string there


@pytest.mark.parametrize(
    ("name", "code"),
    [("success", 0), ("insufficient_funds_1", 1), ("cancelled_1032", 1032),
     ("timeout_1037", 1037), ("wrong_pin_2001", 2001), ("expired_1019", 1019)],
)  # fmt: skip
def test_reference_callback_samples(h: Harness, name: str, code: int) -> None:
    body = (SAMPLES / f"mpesa.stk_callback.{name}.webhook.json").read_bytes()
    event = h.provider.parse_webhook(body, {})
    assert event.event_id == f"ws_CO_01012025120000123708374149:{code}"
    assert event.outcome is (Outcome.SUCCEEDED if code == 0 else Outcome.FAILED)
    if code == 0:
        assert (event.amount_minor, event.raw["receipt"]) == (100, "TA1XYZ23AB")


def test_malformed_callbacks_are_rejected(h: Harness) -> None:
    bad = [
        b"not json",
        b"[]",
        b'{"Body": {}}',
        b'{"Body": {"stkCallback": {"ResultCode": 0}}}',
        b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": "x"}}}',
    ]
    for body in bad:
        with pytest.raises(SignatureError):
            h.provider.parse_webhook(body, {})


async def test_duplicate_callback_same_event_id(h: Harness) -> None:
    h.simulator.duplicate_callbacks = True
    await h.provider.charge(push("NB-DUP"))
    first, second = await h.simulator.drain()
    assert first.body == second.body
    ids = {h.provider.parse_webhook(w.body, w.headers).event_id for w in (first, second)}
    assert len(ids) == 1


async def test_lost_callback_is_found_by_query(h: Harness) -> None:
    pending = await h.provider.charge(push("NB-LOST", sim_module.PHONE_NO_CALLBACK))
    assert await h.simulator.drain() == []
    tx = await h.provider.verify_transaction("NB-LOST")
    assert tx.outcome is Outcome.SUCCEEDED and tx.provider_reference == pending.provider_reference


async def test_timed_out_push_is_not_repeated(h: Harness) -> None:
    with pytest.raises(ProviderUnavailable):
        await h.provider.charge(push("NB-TO", sim_module.PHONE_TIMEOUT))
    assert h.simulator.charges_for("NB-TO") == 1  # the retry hit "Unable to lock subscriber"
    assert h.simulator.attempts_for("NB-TO") == 2


async def test_spike_arrest_is_retried_then_unavailable(h: Harness) -> None:
    h.simulator.fail_next(2)
    assert (await h.provider.charge(push("NB-SA"))).outcome is Outcome.PENDING
    h.simulator.fail_next(3, "500.003.03")
    with pytest.raises(ProviderUnavailable):
        await h.provider.verify_transaction("NB-SA")


async def test_oauth_token_rotation_and_credentials(h: Harness) -> None:
    one, two = adapter(h), adapter(h)
    await one.charge(push("NB-T1"))
    await two.charge(push("NB-T2", "254711111111"))  # invalidates one's token
    assert (await one.verify_transaction("NB-T1")).outcome is Outcome.PENDING  # refreshed once
    assert await one.verify_credentials() is True
    wrong = mpesa.MpesaProvider(
        replace(hm.CREDENTIALS, secret_key="nope"),
        transport=httpx.ASGITransport(app=h.simulator.app),
    )
    assert await wrong.verify_credentials() is False


async def test_reversal_result(h: Harness) -> None:
    tx = await h.provider.charge(push("NB-REV"))
    await h.simulator.drain()  # the callback reaches our endpoint: the receipt is known
    request = RefundRequest("RF-1", "NB-REV", tx.provider_reference, 150000, "KES")
    refund = await h.provider.refund(request)
    assert refund.outcome is Outcome.PENDING and refund.provider_refund_id
    assert (await h.provider.refund_status(refund)).outcome is Outcome.PENDING
    (result,) = await h.simulator.drain()
    assert result.url == hm.RESULT_URL
    event = h.extras["events"][-1]
    assert (event.kind, event.outcome, event.provider_reference) == (
        EventKind.REFUND_UPDATED, Outcome.SUCCEEDED, refund.provider_refund_id)  # fmt: skip
    assert (await h.provider.refund_status(refund)).outcome is Outcome.SUCCEEDED
    again = await h.provider.refund(replace(request, reference="RF-2"))
    await h.simulator.drain()
    assert h.extras["events"][-1].raw["result"]["ResultCode"] == "R000001"
    assert (await h.provider.refund_status(again)).outcome is Outcome.SUCCEEDED


async def test_reversal_needs_the_receipt(h: Harness) -> None:
    with pytest.raises(ProviderError, match="MpesaReceiptNumber"):
        await h.provider.refund(RefundRequest("RF", "NB-X", "ws_CO_unknown", 100, "KES"))


@pytest.mark.parametrize(("name", "outcome"), [("success", Outcome.SUCCEEDED),
                                               ("failed", Outcome.FAILED)])  # fmt: skip
def test_reversal_result_samples(h: Harness, name: str, outcome: Outcome) -> None:
    body = (SAMPLES / f"mpesa.reversal.result.{name}.webhook.json").read_bytes()
    event = h.provider.parse_webhook(body, {})
    assert (event.kind, event.outcome) == (EventKind.REFUND_UPDATED, outcome)


def _forged_stk(checkout_request_id: str, code: int, receipt: str) -> bytes:
    items = [{"Name": "Amount", "Value": 1500}, {"Name": "MpesaReceiptNumber", "Value": receipt}]
    callback = {
        "MerchantRequestID": "forged",
        "CheckoutRequestID": checkout_request_id,
        "ResultCode": code,
        "ResultDesc": "forged",
        "CallbackMetadata": {"Item": items},
    }
    return json.dumps({"Body": {"stkCallback": callback}}).encode()


def _forged_reversal(conversation_id: str, code: str) -> bytes:
    result = {"ResultType": 0, "ResultCode": code, "ResultDesc": "forged",
              "ConversationID": conversation_id, "TransactionID": "TAFORGED00"}  # fmt: skip
    return json.dumps({"Result": result}).encode()


async def test_parsing_an_unsigned_callback_changes_nothing(h: Harness) -> None:
    """Regression (issue 14 item 16): parsing used to write the forged receipt and the
    forged reversal result into the adapter's ledger before anyone had confirmed them."""
    tx = await h.provider.charge(push("NB-FORGE"))
    assert tx.provider_reference
    event = h.provider.parse_webhook(_forged_stk(tx.provider_reference, 0, "FAKE000001"), {})
    assert event.raw["receipt"] == "FAKE000001" and event.raw["needs_confirmation"] is True
    reversal = h.provider.parse_webhook(_forged_reversal("AG_forged", "0"), {})
    assert reversal.kind is EventKind.REFUND_UPDATED
    assert isinstance(h.provider, mpesa.MpesaProvider)
    assert h.provider.ledger.receipts == {} and h.provider.ledger.reversals == {}
    # so a refund cannot be aimed at the forged receipt ...
    with pytest.raises(ProviderError, match="MpesaReceiptNumber"):
        await h.provider.refund(
            RefundRequest("RF-F", "NB-FORGE", tx.provider_reference, 150000, "KES")
        )
    # ... and a pending reversal is not settled by a forged result
    pending = Refund("RF-P", Outcome.PENDING, provider_refund_id="AG_forged")
    assert (await h.provider.refund_status(pending)).outcome is Outcome.PENDING


async def test_a_confirmed_callback_is_remembered(h: Harness) -> None:
    tx = await h.provider.charge(push("NB-KEEP"))
    assert tx.provider_reference
    event = h.provider.parse_webhook(_forged_stk(tx.provider_reference, 0, "TAKEEP0001"), {})
    assert isinstance(h.provider, mpesa.MpesaProvider)
    h.provider.accept_callback(event)  # what the intake does once the STK query agrees
    assert h.provider.ledger.receipts == {tx.provider_reference: "TAKEEP0001"}
