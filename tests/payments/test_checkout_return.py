"""A hosted checkout opened without ``callbackUrl`` sends the payer back to our own page
(``NB_PUBLIC_URL/checkout/complete``), never to a placeholder domain; a later checkout
with a ``callbackUrl`` is honoured; the page itself says what happened."""

from __future__ import annotations

import httpx

from novabilling.payments.credentials import RETURN_PATH
from novabilling.runtime import Runtime
from novabilling.simulators import flutterwave as flutterwave_sim
from novabilling.simulators import stripe as stripe_sim
from tests.conftest import TenantCreds
from tests.payments.helpers import attach, configure, make_invoice

STRIPE_URL = "http://stripe.sim"
FLUTTERWAVE_URL = "http://flutterwave.sim"


async def test_stripe_checkout_without_callback_returns_to_our_page(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    sim = stripe_sim.StripeSimulator()
    attach(runtime, STRIPE_URL, sim.app)
    h = tenant.key_headers
    credentials = {
        "secretKey": stripe_sim.DEFAULT_SECRET_KEY,
        "webhookSecret": stripe_sim.DEFAULT_WEBHOOK_SECRET,
        "baseUrl": STRIPE_URL,
    }
    await configure(client, h, "stripe", credentials)
    invoice = await make_invoice(client, h, currency="USD", amount="25.00", email="pay@x.test")
    url = f"/api/invoices/{invoice['id']}/checkout"

    first = await client.post(url, headers=h)
    assert first.status_code == 201, first.text
    [session] = sim.sessions.values()
    ours = runtime.settings.public_url.rstrip("/") + RETURN_PATH
    assert session["success_url"] == ours
    assert "example.invalid" not in str(session)

    second = await client.post(url, json={"callbackUrl": "https://shop.test/thanks"}, headers=h)
    assert second.status_code == 201, second.text
    assert second.json()["paymentId"] != first.json()["paymentId"]  # a new page, new address
    newest = list(sim.sessions.values())[-1]
    assert newest["success_url"] == "https://shop.test/thanks"


async def test_flutterwave_checkout_without_callback_returns_to_our_page(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    sim = flutterwave_sim.FlutterwaveSimulator(secret_key=flutterwave_sim.DEFAULT_SECRET_KEY)
    attach(runtime, FLUTTERWAVE_URL, sim.app)
    h = tenant.key_headers
    credentials = {"secretKey": flutterwave_sim.DEFAULT_SECRET_KEY, "baseUrl": FLUTTERWAVE_URL}
    await configure(client, h, "flutterwave", credentials)
    invoice = await make_invoice(client, h, currency="NGN", amount=5000)
    r = await client.post(f"/api/invoices/{invoice['id']}/checkout", headers=h)
    assert r.status_code == 201, r.text
    [payment] = sim.payments.values()
    assert payment.redirect_url == runtime.settings.public_url.rstrip("/") + RETURN_PATH


async def test_the_return_page_says_what_happened(client: httpx.AsyncClient) -> None:
    paid = await client.get(RETURN_PATH)
    assert paid.status_code == 200 and paid.headers["content-type"].startswith("text/html")
    assert "Payment received" in paid.text
    assert paid.headers["cache-control"] == "no-store"
    # Flutterwave appends its outcome; Stripe only returns here on success
    for status in ("cancelled", "failed"):
        r = await client.get(f"{RETURN_PATH}?status={status}&tx_ref=x&transaction_id=1")
        assert r.status_code == 200 and "Payment not completed" in r.text
    r = await client.get(f"{RETURN_PATH}?status=<script>alert(1)</script>")
    assert "<script>" not in r.text and "Payment received" in r.text
    assert RETURN_PATH not in (await client.get("/api/openapi.json")).json()["paths"]
