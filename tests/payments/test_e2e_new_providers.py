"""End to end with the DPO, PayU and Pesapal simulators (each test runs for each provider,
on SQLite and PostgreSQL): checkout, the customer pays on the hosted page, the simulator
notifies us by itself, the unsigned notification is confirmed with the provider before the
job applies it, invoice PAID; a replay, a forged notification and an unknown reference
change nothing; amounts that differ from the invoice are not applied; refunds go through
the provider (DPO synchronous, PayU and Pesapal settled by the reconcile poll)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from novabilling.billing.jobs import RECONCILE_JOB as RECONCILE
from novabilling.invoices.lifecycle import CHARGE_JOB as CHARGE
from novabilling.kit.jobs import QUEUE_PAYMENTS
from novabilling.notifications.mailer import MemoryMailer
from novabilling.payments.models import PaymentMethod, Refund
from novabilling.runtime import Runtime
from novabilling.tenancy.models import WebhookInbox
from tests.conftest import TenantCreds, assert_error
from tests.payments.helpers import configure, make_invoice, use_inprocess_jobs
from tests.payments.new_providers import NAMES, Sim, start


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _checkout(
    client: httpx.AsyncClient, h: dict[str, str], sim: Sim
) -> tuple[dict[str, Any], dict[str, Any]]:
    invoice = await make_invoice(client, h, currency=sim.currency, amount=sim.amount)
    out = await client.post(
        f"/api/invoices/{invoice['id']}/checkout",
        json={"callbackUrl": "https://shop.test/return"},
        headers=h,
    )
    assert out.status_code == 201, out.text
    assert out.json()["provider"] == sim.name and out.json()["checkoutUrl"]
    payment = (await client.get(f"/api/payments/{out.json()['paymentId']}", headers=h)).json()
    assert payment["status"] == "PROCESSING" and payment["providerTransactionId"]
    return invoice, payment


async def _inbox(runtime: Runtime, tenant_id: str) -> list[str]:
    async with runtime.central() as session:
        rows = await session.scalars(
            select(WebhookInbox).where(WebhookInbox.tenant_id == tenant_id)
        )
        return sorted(r.status for r in rows)


async def test_checkout_notification_paid_and_refund(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, name: str
) -> None:
    queue = use_inprocess_jobs(runtime)
    sim = start(name, runtime, tenant.id)
    h = tenant.key_headers
    await configure(client, h, name=name, credentials=sim.credentials)
    invoice, payment = await _checkout(client, h, sim)
    provider_id = payment["providerTransactionId"]
    reference = f"{payment['id']}-{tenant.id}"

    # a forged "paid" notification before anyone paid: the provider says not paid
    forged = sim.forged_success(reference, provider_id)
    r = await client.post(f"/webhooks/{name}/{tenant.id}", content=forged)
    assert r.status_code == 200 and r.json() == {"status": "success"}
    await queue.join()
    assert (await client.get(f"/api/invoices/{invoice['id']}", headers=h)).json()[
        "status"
    ] == "PENDING"

    await sim.pay(provider_id)  # the simulator notifies us by itself
    assert [w.status_code for w in sim.simulator.sent_webhooks] == [200]
    await queue.join()
    paid = (await client.get(f"/api/invoices/{invoice['id']}", headers=h)).json()
    assert paid["status"] == "PAID" and paid["paidAt"]
    payment = (await client.get(f"/api/payments/{payment['id']}", headers=h)).json()
    assert payment["status"] == "SUCCEEDED" and payment["amount"] == str(sim.amount)
    assert isinstance(runtime.mailer, MemoryMailer)
    assert len([m for m in runtime.mailer.outbox if "Receipt" in str(m["Subject"])]) == 1

    replay = await sim.simulator.sender.redeliver()  # at-least-once delivery
    assert replay.status_code == 200
    await queue.join()
    assert (await _inbox(runtime, tenant.id)).count("PROCESSED") == 1

    url = f"/api/payments/{payment['id']}/refund"
    part = await client.post(url, json={"amount": 10, "reason": "goodwill"}, headers=h)
    assert part.status_code == 201, part.text
    assert part.json()["status"] == "REFUNDED" and part.json()["metadata"]["refundAmount"] == 10
    await sim.simulator.drain()  # the provider settles what it settles asynchronously
    await queue.enqueue(QUEUE_PAYMENTS, RECONCILE, {"tenant_id": tenant.id})
    await queue.join()
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        assert [r.status for r in await session.scalars(select(Refund))] == ["SUCCEEDED"]
    rest = await client.post(url, json={}, headers=h)
    if name == "pesapal":  # one refund per payment at Pesapal: refused, nothing changes
        assert_error(rest, 400)
        assert "pesapal" in rest.json()["message"]
    else:
        assert rest.status_code == 201 and rest.json()["metadata"]["refundAmount"] == sim.amount


async def test_unknown_reference_and_garbage_change_nothing(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, name: str
) -> None:
    queue = use_inprocess_jobs(runtime)
    sim = start(name, runtime, tenant.id)
    await configure(client, tenant.key_headers, name=name, credentials=sim.credentials)
    unknown = sim.forged_success(f"cnone-{tenant.id}", "5E3C0D2A-0000-4000-8000-00000000BEEF")
    for body in (unknown, b"not a notification", b""):
        r = await client.post(f"/webhooks/{name}/{tenant.id}", content=body)
        assert_error(r, 401)  # never 5xx; the provider may retry
    bare = await client.post(f"/webhooks/{name}", content=unknown)
    assert bare.status_code in (401, 404) and bare.status_code < 500
    await queue.join()
    assert await _inbox(runtime, tenant.id) == []


async def test_amount_that_differs_from_the_invoice_is_not_applied(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, name: str
) -> None:
    queue = use_inprocess_jobs(runtime)
    sim = start(name, runtime, tenant.id)
    h = tenant.key_headers
    await configure(client, h, name=name, credentials=sim.credentials)
    invoice, payment = await _checkout(client, h, sim)
    sim.underpay(payment["providerTransactionId"])
    await sim.pay(payment["providerTransactionId"])
    await queue.join()
    assert (await client.get(f"/api/invoices/{invoice['id']}", headers=h)).json()[
        "status"
    ] == "PENDING"
    payment = (await client.get(f"/api/payments/{payment['id']}", headers=h)).json()
    assert payment["status"] == "PROCESSING"
    assert payment["failureReason"].startswith("Not applied: paid")


async def test_payu_card_saved_at_checkout_pays_the_next_invoice(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """PayU stores the card (storePaymentMethod); the next invoice is charged with it."""
    queue = use_inprocess_jobs(runtime)
    sim = start("payu", runtime, tenant.id)
    h = tenant.key_headers
    await configure(client, h, name="payu", credentials=sim.credentials)
    first, payment = await _checkout(client, h, sim)
    await sim.pay(payment["providerTransactionId"])
    await queue.join()
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        [method] = list(await session.scalars(select(PaymentMethod)))
    assert method.provider == "payu" and method.is_default

    second = await client.post(
        "/api/invoices",
        json={
            "customerId": first["customerId"],
            "currency": "ZAR",
            "dueDate": "2030-01-01",
            "items": [{"description": "Pro plan", "quantity": 1, "unitAmount": 150}],
        },
        headers=h,
    )
    invoice_id = second.json()["id"]
    assert (await client.post(f"/api/invoices/{invoice_id}/finalize", headers=h)).status_code == 201
    await queue.enqueue(QUEUE_PAYMENTS, CHARGE, {"tenant_id": tenant.id, "invoice_id": invoice_id})
    await queue.join()
    assert (await client.get(f"/api/invoices/{invoice_id}", headers=h)).json()["status"] == "PAID"
    [stored] = {t.pm_id for t in sim.simulator.transactions.values() if t.store_card}
    charges = [t for t in sim.simulator.transactions.values() if t.pm_id == stored]
    assert len(charges) == 2  # the checkout that stored the card, then exactly one charge


@pytest.mark.parametrize("provider", ["payu", "pesapal"])
async def test_a_notification_pairing_our_reference_with_another_transaction_is_refused(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, provider: str
) -> None:
    """The notification must name the transaction the provider describes: our reference
    with somebody else's paid transaction id (or the reverse) is refused."""
    queue = use_inprocess_jobs(runtime)
    sim = start(provider, runtime, tenant.id)
    h = tenant.key_headers
    await configure(client, h, name=provider, credentials=sim.credentials)
    paid_invoice, paid = await _checkout(client, h, sim)
    await sim.pay(paid["providerTransactionId"])
    await queue.join()
    unpaid_invoice, unpaid = await _checkout(client, h, sim)
    unpaid_reference = f"{unpaid['id']}-{tenant.id}"
    forged = sim.forged_success(unpaid_reference, paid["providerTransactionId"])
    assert_error(await client.post(f"/webhooks/{provider}/{tenant.id}", content=forged), 401)
    await queue.join()
    status = (await client.get(f"/api/invoices/{unpaid_invoice['id']}", headers=h)).json()
    assert status["status"] == "PENDING"
