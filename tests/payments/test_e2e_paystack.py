"""End to end with the Paystack simulator: checkout, the customer pays, the signed webhook
arrives, the job confirms with verify, invoice PAID, payment + method + receipt + outbound
event; duplicate delivery changes nothing; partial then full refunds."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from novabilling.notifications.mailer import MemoryMailer
from novabilling.payments.models import PaymentMethod, Refund
from novabilling.runtime import Runtime
from novabilling.tenancy.models import WebhookInbox
from tests.conftest import TenantCreds, assert_error
from tests.payments.helpers import configure, make_invoice, paystack, use_inprocess_jobs


async def test_checkout_webhook_paid_refund(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    sim = paystack(runtime)
    h = tenant.key_headers
    await configure(client, h)
    invoice = await make_invoice(client, h, amount=5000)

    out = await client.post(
        f"/api/invoices/{invoice['id']}/checkout",
        json={"callbackUrl": "https://shop.test/return"},
        headers=h,
    )
    assert out.status_code == 201, out.text
    checkout = out.json()
    assert checkout["provider"] == "paystack" and checkout["checkoutUrl"]
    again = await client.post(f"/api/invoices/{invoice['id']}/checkout", headers=h)
    assert again.json()["paymentId"] == checkout["paymentId"]  # open attempt reused

    payment = (await client.get(f"/api/payments/{checkout['paymentId']}", headers=h)).json()
    assert payment["status"] == "PROCESSING" and payment["amount"] == "5000"
    reference = next(iter(sim.transactions))
    assert reference.startswith(checkout["paymentId"]) and reference.endswith(tenant.id)

    await sim.complete(reference, success=True)
    await sim.drain()
    hook = sim.sent_webhooks[-1]
    for _ in range(2):  # at-least-once delivery
        r = await client.post("/webhooks/paystack", content=hook.body, headers=hook.headers)
        assert r.status_code == 200 and r.json() == {"status": "success"}
    await queue.join()

    paid = (await client.get(f"/api/invoices/{invoice['id']}", headers=h)).json()
    assert paid["status"] == "PAID" and paid["paidAt"]
    payment = (await client.get(f"/api/payments/{checkout['paymentId']}", headers=h)).json()
    assert payment["status"] == "SUCCEEDED"
    assert payment["providerTransactionId"]
    assert payment["invoice"]["id"] == invoice["id"] and payment["invoice"]["customer"]["email"]
    assert isinstance(runtime.mailer, MemoryMailer)
    receipts = [m for m in runtime.mailer.outbox if "Receipt" in str(m["Subject"])]
    assert len(receipts) == 1
    async with runtime.central() as session:
        rows = list(
            await session.scalars(select(WebhookInbox).where(WebhookInbox.tenant_id == tenant.id))
        )
    assert [r.status for r in rows] == ["PROCESSED"]
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        methods = list(await session.scalars(select(PaymentMethod)))
    assert len(methods) == 1 and methods[0].is_default and methods[0].last4 == "4081"
    assert "AUTH_" not in methods[0].token_encrypted

    listed = await client.get("/api/payments?status=SUCCEEDED&provider=paystack", headers=h)
    assert listed.json()["meta"]["total"] == 1
    by_customer = await client.get(f"/api/customers/{invoice['customerId']}/payments", headers=h)
    assert [p["id"] for p in by_customer.json()] == [checkout["paymentId"]]

    url = f"/api/payments/{checkout['paymentId']}/refund"
    assert_error(await client.post(url, json={"amount": 6000}, headers=h), 400, "amount")
    part = await client.post(url, json={"amount": 1000, "reason": "goodwill"}, headers=h)
    assert part.status_code == 201, part.text
    body = part.json()
    assert body["status"] == "REFUNDED" and body["metadata"]["refundAmount"] == 1000
    assert body["metadata"]["refundReason"] == "goodwill"
    assert_error(await client.post(url, json={"amount": 4001}, headers=h), 400, "amount")
    rest = await client.post(url, json={}, headers=h)
    assert rest.status_code == 201 and rest.json()["metadata"]["refundAmount"] == 5000
    assert_error(await client.post(url, json={}, headers=h), 400)

    await sim.drain()  # refunds processed -> refund.processed webhooks
    for hook in sim.sent_webhooks:
        if hook.json()["event"].startswith("refund."):
            r = await client.post("/webhooks/paystack", content=hook.body, headers=hook.headers)
            assert r.status_code == 200
    await queue.join()
    async with maker() as session:
        statuses = sorted(r.status for r in await session.scalars(select(Refund)))
    assert statuses == ["SUCCEEDED", "SUCCEEDED"]


async def test_checkout_without_provider_is_400(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    use_inprocess_jobs(runtime)
    invoice = await make_invoice(client, tenant.key_headers)
    r = await client.post(f"/api/invoices/{invoice['id']}/checkout", headers=tenant.key_headers)
    assert_error(r, 400)
