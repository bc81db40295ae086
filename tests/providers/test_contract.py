"""The one contract every payment adapter passes against its simulator (STYLE §3.9/3.10).

Parametrized over all providers; each ``tests/providers/harness_<name>.py`` provides a
:class:`~tests.providers.harness.Harness`. A provider whose harness module does not exist
yet is skipped. Optional ``harness.extras``:

* ``verify_reference``: ``Callable[[Checkout], str]`` — what to pass to
  ``verify_transaction`` after a checkout (default: ``checkout.reference``).
* ``amount_minor``: an amount the provider accepts (default 500000; M-Pesa whole KES).
* ``charges``: False for providers without a merchant-initiated charge (DPO, Pesapal):
  ``charge`` must refuse with ``code="unsupported"`` and create nothing; paid payments
  for the refund tests come from a completed checkout instead.
* ``checkout_timeout``: ``Callable[[str, int], CheckoutRequest]`` whose create answer is
  lost (the order exists): the adapter reports it unavailable and never creates a second
  order for the reference (used instead of the charge timeout when ``charges`` is False).
* ``notification_outcome``: False when the provider's notification names no status
  (Pesapal's IPN): the duplicate-delivery test then checks the reference only.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from dataclasses import replace

import pytest

from novabilling.payments.providers.base import (
    Checkout,
    CheckoutRequest,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    RefundRequest,
    SignatureError,
    Transaction,
)
from tests.providers.harness import Harness

PROVIDERS = ["paystack", "stripe", "flutterwave", "mpesa", "dpo", "payu", "pesapal"]
_counter = itertools.count(1)


def _load(name: str) -> Harness:
    module_name = f"tests.providers.harness_{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            pytest.skip(f"harness_{name} not written yet")
        raise
    harness: Harness = module.make_harness()
    return harness


@pytest.fixture(params=PROVIDERS)
def harness(request: pytest.FixtureRequest) -> Harness:
    return _load(request.param)


def _reference(h: Harness, what: str) -> str:
    return f"NB-{h.name[:3]}-{what}-{next(_counter):04d}"


def _amount(h: Harness) -> int:
    return int(h.extras.get("amount_minor", 500000))


def _verify_key(h: Harness, checkout: Checkout) -> str:
    pick: Callable[[Checkout], str] = h.extras.get("verify_reference", lambda c: c.reference)
    return pick(checkout)


def _charges(h: Harness) -> bool:
    return bool(h.extras.get("charges", True))


async def _paid(h: Harness) -> Transaction:
    """A succeeded payment: a recurring charge, or a paid checkout where there is none."""
    if _charges(h):
        return await _paid_charge(h)
    reference = _reference(h, "PAID")
    checkout = await h.provider.create_checkout(h.checkout_request(reference, _amount(h)))
    await h.complete_checkout(checkout, True)
    await h.simulator.drain()
    tx = await h.provider.verify_transaction(_verify_key(h, checkout))
    assert tx.outcome is Outcome.SUCCEEDED, tx
    # as the payments service does: the checkout's id stays when verify does not echo one
    return replace(tx, provider_reference=tx.provider_reference or checkout.provider_reference)


async def _paid_charge(h: Harness) -> Transaction:
    reference = _reference(h, "PAID")
    tx = await h.provider.charge(h.charge_success(reference, _amount(h)))
    await h.simulator.drain()
    if tx.outcome is Outcome.PENDING:  # STK-style providers settle on drain
        tx = await h.provider.verify_transaction(tx.provider_reference or reference)
    assert tx.outcome is Outcome.SUCCEEDED, tx
    return tx


async def test_checkout_created(harness: Harness) -> None:
    reference = _reference(harness, "CO")
    checkout = await harness.provider.create_checkout(
        harness.checkout_request(reference, _amount(harness))
    )
    assert checkout.reference == reference
    assert checkout.url or checkout.provider_reference
    assert checkout.outcome in (Outcome.PENDING, Outcome.UNKNOWN)


async def test_checkout_completed_verifies_amount_and_currency(harness: Harness) -> None:
    reference = _reference(harness, "COPAID")
    amount = _amount(harness)
    checkout = await harness.provider.create_checkout(harness.checkout_request(reference, amount))
    await harness.complete_checkout(checkout, True)
    await harness.simulator.drain()
    tx = await harness.provider.verify_transaction(_verify_key(harness, checkout))
    assert tx.outcome is Outcome.SUCCEEDED
    assert tx.amount_minor == amount
    assert tx.currency == harness.currency


async def test_checkout_failed_is_not_succeeded(harness: Harness) -> None:
    reference = _reference(harness, "COFAIL")
    checkout = await harness.provider.create_checkout(
        harness.checkout_request(reference, _amount(harness))
    )
    await harness.complete_checkout(checkout, False)
    await harness.simulator.drain()
    tx = await harness.provider.verify_transaction(_verify_key(harness, checkout))
    assert tx.outcome is Outcome.FAILED


async def test_recurring_charge_succeeds_once(harness: Harness) -> None:
    if not _charges(harness):
        reference = _reference(harness, "NOCHG")
        with pytest.raises(ProviderError) as refused:
            await harness.provider.charge(harness.charge_success(reference, _amount(harness)))
        assert refused.value.code == "unsupported" and harness.name.lower() in str(refused.value)
        assert harness.simulator.charges_for(reference) == 0
        return
    tx = await _paid_charge(harness)
    assert tx.amount_minor == _amount(harness)
    assert tx.currency == harness.currency
    assert harness.simulator.charges_for(tx.reference) == 1


async def test_declined_charge_is_failed(harness: Harness) -> None:
    if not _charges(harness):
        pytest.skip(
            f"{harness.name} has no merchant-initiated charge to decline; declines are "
            "covered by test_checkout_failed_is_not_succeeded"
        )
    reference = _reference(harness, "DECL")
    tx = await harness.provider.charge(harness.charge_decline(reference, _amount(harness)))
    await harness.simulator.drain()
    if tx.outcome is Outcome.PENDING:
        tx = await harness.provider.verify_transaction(tx.provider_reference or reference)
    assert tx.outcome is Outcome.FAILED
    assert tx.message
    assert harness.simulator.charges_for(reference) <= 1


async def test_timeout_is_unknown_and_never_double_charges(harness: Harness) -> None:
    reference = _reference(harness, "TIME")
    if not _charges(harness):
        build: Callable[[str, int], CheckoutRequest] = harness.extras["checkout_timeout"]
        with pytest.raises(ProviderUnavailable):
            await harness.provider.create_checkout(build(reference, _amount(harness)))
        # not re-sent blindly: the order may exist, and a second one would be payable too
        assert harness.simulator.attempts_for(reference) == 1
        assert harness.simulator.charges_for(reference) == 1
        return
    try:
        tx = await harness.provider.charge(harness.charge_timeout(reference, _amount(harness)))
    except ProviderUnavailable:
        pass
    else:
        assert tx.outcome is Outcome.UNKNOWN, tx
    assert harness.simulator.attempts_for(reference) >= 2  # the adapter retried
    assert harness.simulator.charges_for(reference) == 1  # ...with the same reference


@pytest.mark.parametrize("fraction", [1, 4], ids=["full", "partial"])
async def test_refund_is_pending_then_succeeds(harness: Harness, fraction: int) -> None:
    tx = await _paid(harness)
    amount = _amount(harness) // fraction
    refund = await harness.provider.refund(
        RefundRequest(
            reference=f"{tx.reference}-R",
            transaction_reference=tx.reference,
            provider_transaction_id=tx.provider_reference,
            amount_minor=amount,
            currency=harness.currency,
            reason="requested_by_customer",
        )
    )
    assert refund.outcome in (Outcome.PENDING, Outcome.SUCCEEDED)
    assert refund.amount_minor in (None, amount)
    await harness.simulator.drain()
    settled = await harness.provider.refund_status(refund)
    assert settled.outcome is Outcome.SUCCEEDED
    assert settled.amount_minor in (None, amount)


async def test_good_webhook_is_accepted(harness: Harness) -> None:
    sample = harness.good_webhook
    event = harness.provider.parse_webhook(sample.body, sample.headers)
    assert event.event_id == sample.expected_event_id


def _signed_or_skip(harness: Harness) -> str:
    if harness.signature_header is None:
        pytest.skip(f"{harness.name} webhooks are unsigned")
    return harness.signature_header


async def test_tampered_webhook_is_rejected(harness: Harness) -> None:
    _signed_or_skip(harness)
    sample = harness.good_webhook
    tampered = sample.body.replace(b"500", b"900", 1)
    assert tampered != sample.body
    with pytest.raises(SignatureError):
        harness.provider.parse_webhook(tampered, sample.headers)


async def test_webhook_with_wrong_secret_is_rejected(harness: Harness) -> None:
    _signed_or_skip(harness)
    sample = harness.good_webhook
    with pytest.raises(SignatureError):
        harness.wrong_secret_provider.parse_webhook(sample.body, sample.headers)


async def test_webhook_without_signature_header_is_rejected(harness: Harness) -> None:
    header = _signed_or_skip(harness)
    sample = harness.good_webhook
    headers = {k: v for k, v in sample.headers.items() if k.lower() != header.lower()}
    with pytest.raises(SignatureError):
        harness.provider.parse_webhook(sample.body, headers)


async def test_duplicate_delivery_gives_same_event_id(harness: Harness) -> None:
    reference = _reference(harness, "DUP")
    checkout = await harness.provider.create_checkout(
        harness.checkout_request(reference, _amount(harness))
    )
    await harness.complete_checkout(checkout, True)
    await harness.simulator.drain()
    sent = list(harness.simulator.sent_webhooks)
    assert sent, "completing a checkout must send a webhook"
    ids = [harness.provider.parse_webhook(w.body, w.headers).event_id for w in sent]
    again = [harness.provider.parse_webhook(w.body, w.headers).event_id for w in sent]
    assert ids == again  # a redelivery dedupes on the same inbox key
    assert len(set(ids)) == len({w.body for w in sent})  # distinct events, distinct keys
    events = [harness.provider.parse_webhook(w.body, w.headers) for w in sent]
    if harness.extras.get("notification_outcome", True):
        assert any(e.reference == reference and e.outcome is Outcome.SUCCEEDED for e in events)
    else:  # the notification only names the order: its status comes from the verify API
        assert any(e.reference == reference and e.provider_reference for e in events)


# -- registry: providers by name ---------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
def test_registry_resolves_every_provider_case_insensitively(name: str) -> None:
    from novabilling.payments.providers import registry

    try:
        cls = registry.get_provider_class(name.upper())
    except ModuleNotFoundError:
        pytest.skip(f"{name} adapter not written yet")
    assert cls.name == name
    config = {key: f"x-{key}" for key in registry.REQUIRED_CREDENTIALS[name]}
    config["baseUrl"] = "http://sim.test"
    credentials = registry.credentials_from_config(name, config)
    assert credentials.base_url == "http://sim.test"
    assert credentials.secret_key.startswith("x-")
    assert registry.create_provider(name, credentials, timeout=1.0).name == name


def test_registry_rejects_unknown_names_and_missing_keys() -> None:
    from novabilling.payments.providers import registry

    with pytest.raises(registry.UnknownProvider) as caught:
        registry.get_provider_class("paypal")
    assert isinstance(caught.value, KeyError) and "paypal" in str(caught.value)
    assert registry.missing_credentials("Stripe", {"secretKey": "sk"}) == ["webhookSecret"]
    with pytest.raises(registry.MissingCredentials):
        registry.credentials_from_config("paystack", {"publicKey": "pk_test_1"})
    assert registry.credentials_from_config("paystack", {"secretKey": "sk"}).secret_key == "sk"
    assert registry.missing_credentials("flutterwave", {"secretKey": "FLWSECK-1"}) == []
    stripe = registry.credentials_from_config(
        "stripe", {"secretKey": "sk_test_1", "webhookSecret": "whsec_1"}
    )
    assert (stripe.secret_key, stripe.webhook_secret, stripe.base_url) == (
        "sk_test_1",
        "whsec_1",
        None,
    )
    mpesa = registry.credentials_from_config(
        "mpesa",
        {
            "consumerKey": "ck",
            "consumerSecret": "cs",
            "shortcode": "174379",
            "passkey": "pk",
            "environment": "sandbox",
        },
    )
    assert (mpesa.public_key, mpesa.secret_key) == ("ck", "cs")
    assert mpesa.extra == {"shortcode": "174379", "passkey": "pk", "environment": "sandbox"}
    flutterwave = registry.credentials_from_config(
        "flutterwave",
        {"publicKey": "pk", "secretKey": "sk", "encryptionKey": "ek", "secretHash": "sh"},
    )
    assert flutterwave.webhook_secret == "sh"
    assert flutterwave.extra == {"encryptionKey": "ek", "encryption_key": "ek"}
