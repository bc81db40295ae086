"""Regression tests for the collection defects of the core review, against the
simulators: two open checkouts paid twice (overpayment refunded), a charge the provider
never answers (terminal FAILED "unconfirmed", dunning acts), a Stripe checkout settled end
to end with Stripe's real payload shape (the PaymentIntent's customer is a string id)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from novabilling.invoices.models import Invoice
from novabilling.payments.credentials import provider_factory
from novabilling.payments.models import Payment, PaymentMethod, Refund
from novabilling.payments.service import RECONCILE_DELAYS, UNCONFIRMED
from novabilling.runtime import Runtime
from novabilling.simulators import stripe as stripe_sim
from tests.billing.test_stalled_collection import world
from tests.conftest import Backend, TenantCreds
from tests.payments.helpers import (
    attach,
    configure,
    make_invoice,
    paystack,
    use_inprocess_jobs,
)
from tests.webhooks.helpers import capture_outbound, point_webhooks_at_test_url

STRIPE_URL = "http://stripe.sim"


async def _payment(runtime: Runtime, tenant_id: str, payment_id: str) -> Payment:
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        found = await session.get(Payment, payment_id)
        assert found is not None
        return found


async def _deliver(client: httpx.AsyncClient, provider: str, sim: Any, start: int) -> int:
    await sim.drain()
    for hook in sim.sent_webhooks[start:]:
        r = await client.post(f"/webhooks/{provider}", content=hook.body, headers=hook.headers)
        assert r.status_code == 200, r.text
    return len(sim.sent_webhooks)


async def test_second_checkout_supersedes_and_a_double_payment_is_refunded(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    sim = paystack(runtime)
    sent = capture_outbound(runtime)
    await point_webhooks_at_test_url(client, tenant)
    h = tenant.key_headers
    await configure(client, h)
    invoice = await make_invoice(client, h, amount=5000)
    url = f"/api/invoices/{invoice['id']}/checkout"
    first = (await client.post(url, json={"callbackUrl": "https://a.test/r"}, headers=h)).json()
    second = (await client.post(url, json={"callbackUrl": "https://b.test/r"}, headers=h)).json()
    assert first["paymentId"] != second["paymentId"]
    old = await _payment(runtime, tenant.id, first["paymentId"])
    assert old.status == "FAILED" and old.failure_reason == "Superseded by a newer checkout"

    # the customer pays on the new page, then (two tabs) on the old one as well
    refs = {
        p.id: p.reference for p in [old, await _payment(runtime, tenant.id, second["paymentId"])]
    }
    seen = 0
    for payment_id in (second["paymentId"], first["paymentId"]):
        await sim.complete(str(refs[payment_id]), success=True)
        seen = await _deliver(client, "paystack", sim, seen)
        await queue.join()
    assert (await client.get(f"/api/invoices/{invoice['id']}", headers=h)).json()[
        "status"
    ] == "PAID"
    winner = await _payment(runtime, tenant.id, second["paymentId"])
    extra = await _payment(runtime, tenant.id, first["paymentId"])
    assert winner.status == "SUCCEEDED" and not (winner.metadata_ or {}).get("overpaid")
    assert extra.status == "REFUNDED" and extra.refunded_minor == extra.amount_minor
    assert (extra.metadata_ or {})["overpaid"] is True
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        refunds = list(await session.scalars(select(Refund).where(Refund.payment_id == extra.id)))
    assert len(refunds) == 1 and refunds[0].amount_minor == 500000
    assert [r for r in sim.refunds.values() if r["amount"] == 500000]  # money given back
    events = [json.loads(request.content)["event"] for request in sent]
    assert events.count("payment.overpaid") == 1 and events.count("invoice.paid") == 1


async def test_an_unanswered_charge_fails_as_unconfirmed_and_dunning_acts(
    backend: Backend,
) -> None:
    from tests.payments.helpers import PAYSTACK_URL

    async with world(backend) as w:
        queue = use_inprocess_jobs(w.runtime)
        factory = provider_factory(w.runtime)
        factory.transports[PAYSTACK_URL] = httpx.MockTransport(lambda _: httpx.Response(503))
        factory.forget(w.tenant_id)  # the provider is now unreachable
        w.clock.advance(timedelta(minutes=16))
        await w.tick(queue)  # the charge is sent, no answer: PROCESSING
        [payment] = await w.payments()
        assert payment.status == "PROCESSING"
        maker = await w.runtime.engines.sessionmaker(w.tenant_id)
        async with maker() as session:  # every check but the last one used up
            await session.execute(
                update(Payment)
                .where(Payment.id == payment.id)
                .values(check_attempts=len(RECONCILE_DELAYS), next_check_at=w.clock.now())
            )
            await session.commit()
        await w.tick(queue)
        [payment] = await w.payments()
        assert payment.status == "FAILED" and payment.failure_reason == UNCONFIRMED
        invoice = await w.invoice()
        assert invoice.status == "FAILED" and invoice.collection_attempts == 1
        assert invoice.next_retry_at is not None  # dunning scheduled its retry


async def test_stripe_checkout_settles_end_to_end(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    sim = stripe_sim.StripeSimulator(hang_seconds=0.01)
    attach(runtime, STRIPE_URL, sim.app)
    h = tenant.key_headers
    await configure(
        client,
        h,
        "stripe",
        {
            "secretKey": stripe_sim.DEFAULT_SECRET_KEY,
            "webhookSecret": stripe_sim.DEFAULT_WEBHOOK_SECRET,
            "baseUrl": STRIPE_URL,
        },
    )
    invoice = await make_invoice(client, h, currency="USD", amount="25.00", email="pay@x.test")
    r = await client.post(
        f"/api/invoices/{invoice['id']}/checkout",
        json={"callbackUrl": "https://shop.test/done"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    checkout = r.json()
    payment = await _payment(runtime, tenant.id, checkout["paymentId"])
    session = await sim.complete(str(payment.reference))
    intent = sim.intents[session["payment_intent"]]
    assert isinstance(intent["customer"], str)  # the shape that crashed save_method
    await _deliver(client, "stripe", sim, 0)
    await queue.join()
    paid = (await client.get(f"/api/invoices/{invoice['id']}", headers=h)).json()
    assert paid["status"] == "PAID"
    payment = await _payment(runtime, tenant.id, checkout["paymentId"])
    assert payment.status == "SUCCEEDED" and payment.provider_transaction_id == intent["id"]
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as db:
        methods = list(await db.scalars(select(PaymentMethod)))
        stored = await db.get(Invoice, invoice["id"])
    assert [m.provider for m in methods] == ["stripe"]  # the card is saved for renewals
    assert stored is not None and stored.status == "PAID"


async def test_a_superseded_stripe_checkout_is_expired_at_stripe(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    use_inprocess_jobs(runtime)
    sim = stripe_sim.StripeSimulator(hang_seconds=0.01)
    attach(runtime, STRIPE_URL, sim.app)
    h = tenant.key_headers
    await configure(
        client,
        h,
        "stripe",
        {
            "secretKey": stripe_sim.DEFAULT_SECRET_KEY,
            "webhookSecret": stripe_sim.DEFAULT_WEBHOOK_SECRET,
            "baseUrl": STRIPE_URL,
        },
    )
    invoice = await make_invoice(client, h, currency="USD", amount="25.00", email="pay@x.test")
    url = f"/api/invoices/{invoice['id']}/checkout"
    first = (await client.post(url, json={"callbackUrl": "https://a.test/r"}, headers=h)).json()
    second = (await client.post(url, json={"callbackUrl": "https://b.test/r"}, headers=h)).json()
    old = await _payment(runtime, tenant.id, first["paymentId"])
    new = await _payment(runtime, tenant.id, second["paymentId"])
    assert sim.sessions[str(old.provider_transaction_id)]["status"] == "expired"
    assert sim.sessions[str(new.provider_transaction_id)]["status"] == "open"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app)) as payer:
        r = await payer.post(f"{STRIPE_URL}/_sim/pay/{old.reference}")
    assert r.status_code == 400  # the old page can no longer be paid
