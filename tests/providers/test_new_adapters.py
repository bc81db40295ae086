"""DPO, PayU and Pesapal specifics beyond the shared contract: XML safety, result-code
mapping, what is retried and what is not, Pesapal's 50-character id and token reuse."""

from __future__ import annotations

import httpx
import pytest

from novabilling.payments.providers import dpo, pesapal, xmlwire
from novabilling.payments.providers.base import (
    CheckoutRequest,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    SignatureError,
)
from novabilling.payments.providers.payu import soap
from tests.providers import harness_dpo, harness_payu, harness_pesapal


def test_xml_with_a_doctype_or_entities_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;">]><API3G><Result>&lol2;</Result></API3G>'
    )
    assert xmlwire.parse(bomb) is None
    assert xmlwire.parse(b"<API3G><Result>000</Result>") is None  # not well-formed
    assert xmlwire.parse(b"") is None
    root = xmlwire.parse(b"<a xmlns='urn:x'><b>1</b><b>2</b><c k='v'/></a>")
    assert root is not None
    assert xmlwire.fields(root) == {"b": ["1", "2"], "c": {"@k": "v"}}


def test_dpo_notifications_with_entities_are_not_read() -> None:
    h = harness_dpo.make_harness()
    with pytest.raises(SignatureError):
        h.provider.parse_webhook(b'<!DOCTYPE x [<!ENTITY e "e">]><API3G/>', {})


@pytest.mark.parametrize(
    ("code", "outcome"),
    [("000", Outcome.SUCCEEDED), ("901", Outcome.FAILED), ("903", Outcome.FAILED),
     ("904", Outcome.FAILED), ("900", Outcome.PENDING), ("003", Outcome.PENDING),
     ("002", Outcome.UNKNOWN), ("123", Outcome.UNKNOWN)],
)  # fmt: skip
def test_dpo_result_codes(code: str, outcome: Outcome) -> None:
    assert dpo.verify_outcome(code) is outcome


async def test_dpo_unknown_reference_is_unknown_and_bad_token_is_rejected() -> None:
    h = harness_dpo.make_harness()
    missing = await h.provider.verify_transaction("NB-never-created")
    assert missing.outcome is Outcome.UNKNOWN and missing.message
    assert await h.provider.verify_credentials() is True
    assert await h.wrong_secret_provider.verify_credentials() is False
    with pytest.raises(ProviderError) as refused:
        await h.wrong_secret_provider.verify_transaction("NB-x")
    assert refused.value.code == "802"


async def test_dpo_amounts_in_the_currency_own_decimals() -> None:
    h = harness_dpo.make_harness()
    request = CheckoutRequest("NB-UGX-1", 25000, "UGX", "a@example.com")
    checkout = await h.provider.create_checkout(request)
    await h.complete_checkout(checkout, True)
    tx = await h.provider.verify_transaction("NB-UGX-1")
    assert (tx.outcome, tx.amount_minor, tx.currency) == (Outcome.SUCCEEDED, 25000, "UGX")
    assert h.simulator.find("NB-UGX-1").amount == "25000"


def test_payu_faults_client_versus_server() -> None:
    client = soap.read(
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
        b"<faultcode>soap:Client</faultcode><faultstring>Authentication failed</faultstring>"
        b"</s:Fault></s:Body></s:Envelope>"
    )
    assert client is not None and client.client_fault and client.fault == "Authentication failed"
    assert soap.server_fault(b"<html>502 Bad Gateway</html>")  # not SOAP: retry


async def test_payu_server_faults_are_retried_client_faults_are_not() -> None:
    h = harness_payu.make_harness()
    h.simulator.fail_next = 1  # one soap:Server fault, then the real answer
    missing = await h.provider.verify_transaction("NB-nothing")
    assert missing.outcome is Outcome.UNKNOWN
    assert await h.wrong_secret_provider.verify_credentials() is False
    h.simulator.fail_next = 5  # more than the adapter's retries
    with pytest.raises(ProviderUnavailable):
        await h.provider.verify_transaction("NB-nothing")


async def test_payu_needs_the_soap_username() -> None:
    from dataclasses import replace

    from novabilling.payments.providers.payu import PayuProvider

    credentials = harness_payu.credentials()
    bare = PayuProvider(replace(credentials, extra={"environment": "staging"}))
    assert await bare.verify_credentials() is False
    with pytest.raises(ProviderError, match="apiUsername"):
        await bare.verify_transaction("NB-x")


async def test_payu_refusal_after_an_earlier_attempt_is_unknown_not_failed() -> None:
    """A charge job redone after a crash sends the same reference: PayU refuses the
    duplicate, and the adapter must not report the (successful) first charge as failed."""
    h = harness_payu.make_harness()
    first = await h.provider.charge(h.charge_success("NB-PAYU-REDO", 10000))
    assert first.outcome is Outcome.SUCCEEDED
    redo = await h.provider.charge(h.charge_success("NB-PAYU-REDO", 10000))
    assert redo.outcome is Outcome.UNKNOWN
    assert h.simulator.charges_for("NB-PAYU-REDO") == 1


def test_pesapal_merchant_id_fits_fifty_characters() -> None:
    ours = "c" + "a" * 24 + "-" + "c" + "b" * 24
    assert len(ours) == 51
    sent = pesapal.merchant_id(ours)
    assert len(sent) == 50 and sent == pesapal.merchant_id(ours) and sent.startswith(ours[:35])
    assert pesapal.merchant_id(ours.replace("b", "d")) != sent
    assert pesapal.merchant_id("NB-short") == "NB-short"


async def test_pesapal_reuses_its_token_and_registers_the_ipn_once() -> None:
    h = harness_pesapal.make_harness()
    for n in range(3):
        await h.provider.create_checkout(h.checkout_request(f"NB-PES-{n}", 100000))
    assert len(h.simulator.tokens) == 1
    assert [i["url"] for i in h.simulator.ipns.values()] == [harness_pesapal.IPN_URL]
    assert await h.wrong_secret_provider.verify_credentials() is False


async def test_pesapal_refuses_a_second_refund() -> None:
    from novabilling.payments.providers.base import RefundRequest

    h = harness_pesapal.make_harness()
    checkout = await h.provider.create_checkout(h.checkout_request("NB-PES-R", 100000))
    await h.complete_checkout(checkout, True)
    tracking = checkout.provider_reference
    assert tracking
    first = await h.provider.refund(RefundRequest("RF-1", "NB-PES-R", tracking, 1000, "KES"))
    assert first.outcome is Outcome.PENDING
    with pytest.raises(ProviderError, match="already"):
        await h.provider.refund(RefundRequest("RF-2", "NB-PES-R", tracking, 1000, "KES"))


async def test_unreachable_pesapal_is_unavailable() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    adapter = pesapal.PesapalProvider(
        harness_pesapal.credentials(), transport=httpx.MockTransport(down), backoff=0
    )
    with pytest.raises(ProviderUnavailable):
        await adapter.verify_credentials()
