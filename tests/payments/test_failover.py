"""Provider failover of automatic charges (issue 16), through the Paystack and Flutterwave
simulators on SQLite and PostgreSQL: a decline or no answer moves on to the next provider
with a saved method, each provider is charged at most once per collection attempt,
dunning acts once after every eligible provider failed, and a slow provider that takes
the money after the next one paid is refunded (the invoice is paid once)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from novabilling.billing import collection
from novabilling.billing.jobs import RECONCILE_JOB
from novabilling.invoices.lifecycle import CHARGE_JOB
from novabilling.invoices.models import Invoice
from novabilling.kit.ids import derived_id
from novabilling.kit.jobs import QUEUE_PAYMENTS, job_buffer
from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.notifications.mailer import MemoryMailer
from novabilling.payments import charge, failover, service
from novabilling.payments.credentials import provider_factory
from novabilling.payments.models import Payment
from novabilling.payments.providers.base import Outcome, Transaction
from novabilling.runtime import Runtime
from novabilling.simulators import flutterwave as flutterwave_sim
from novabilling.simulators import paystack as paystack_sim
from tests.conftest import TenantCreds, assert_error
from tests.payments.helpers import (
    attach,
    configure,
    make_invoice,
    paystack,
    paystack_credentials,
    use_inprocess_jobs,
)

FLUTTERWAVE_URL = "http://flutterwave.sim"
PAYSTACK_LINK = "http://paystack-link.sim"  # Paystack's simulator behind a Switch
AMOUNT_MINOR = 250_000  # NGN 2,500.00


class Switch(httpx.AsyncBaseTransport):
    """A provider that can be unreachable: connection refused while ``down``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = True
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


@dataclass
class World:
    runtime: Runtime
    client: httpx.AsyncClient
    queue: InProcessQueue
    tenant: TenantCreds
    paystack: paystack_sim.PaystackSimulator
    flutterwave: flutterwave_sim.FlutterwaveSimulator
    invoice_id: str
    customer_id: str
    jobs: int = 0

    def job_id(self, kind: str) -> str:
        self.jobs += 1  # finished job ids are remembered (deduplicated) like BullMQ's
        return f"{kind}-{self.jobs}"

    async def save(self, provider: str, token: str) -> None:
        maker = await self.runtime.engines.sessionmaker(self.tenant.id)
        async with maker() as session:
            await service.save_method(
                session,
                tenant_id=self.tenant.id,
                customer_id=self.customer_id,
                provider=provider,
                token=token,
                raw={"customer": {"email": paystack_sim.TEST_EMAIL}},
                encryptor=self.runtime.encryptor,
                clock=self.runtime.clock,
            )
            await session.commit()

    async def charge(self, *, copies: int = 1) -> None:
        """``copies`` deliveries of the invoice's charge job, running at the same time."""
        for _ in range(copies):
            await self.queue.enqueue(
                QUEUE_PAYMENTS,
                CHARGE_JOB,
                {"tenant_id": self.tenant.id, "invoice_id": self.invoice_id, "attempt": 0},
                job_id=self.job_id("charge"),
            )
        await self.queue.join()

    async def reconcile(self, payment_id: str, *, copies: int = 1) -> None:
        for _ in range(copies):
            await self.queue.enqueue(
                QUEUE_PAYMENTS,
                RECONCILE_JOB,
                {"tenant_id": self.tenant.id, "payment_id": payment_id},
                job_id=self.job_id("reconcile"),
            )
        await self.queue.join()

    async def invoice(self) -> Invoice:
        maker = await self.runtime.engines.sessionmaker(self.tenant.id)
        async with maker() as session:
            found = await session.get(Invoice, self.invoice_id)
            assert found is not None
            return found

    async def payments(self) -> dict[str, Payment]:
        """This invoice's payments by provider (one each, or the test fails)."""
        maker = await self.runtime.engines.sessionmaker(self.tenant.id)
        async with maker() as session:
            rows = list(
                await session.scalars(select(Payment).where(Payment.invoice_id == self.invoice_id))
            )
        by_provider = {p.provider: p for p in rows}
        assert len(by_provider) == len(rows), [(p.provider, p.status) for p in rows]
        return by_provider

    def failure_mails(self) -> list[str]:
        mailer = self.runtime.mailer
        assert isinstance(mailer, MemoryMailer)
        return [str(m["Subject"]) for m in mailer.outbox if "fail" in str(m["Subject"]).lower()]

    def money_taken(self) -> int:
        """Minor units successfully charged at both providers, minus refunds."""
        taken = sum(
            int(tx["amount"])
            for tx in self.paystack.transactions.values()
            if tx["status"] == "success"
        )
        for ftx in self.flutterwave.transactions.values():
            if ftx.status == "successful":
                taken += int((ftx.amount - ftx.refunded) * 100)
        return taken


@asynccontextmanager
async def world(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    *,
    paystack_down: bool = False,
    flutterwave_first: bool = False,
) -> AsyncIterator[tuple[World, Switch | None]]:
    """Paystack (priority 1) and Flutterwave (priority 2, or 1 with Paystack 2 when
    ``flutterwave_first``) configured for NGN, and a PENDING NGN 2,500 invoice."""
    queue = use_inprocess_jobs(runtime)
    ps = paystack(runtime)
    switch: Switch | None = None
    if paystack_down:  # the same simulator behind a link that can be cut
        switch = Switch(httpx.ASGITransport(app=ps.app))
        provider_factory(runtime).transports[PAYSTACK_LINK] = switch
    fw = flutterwave_sim.FlutterwaveSimulator(
        secret_key=flutterwave_sim.DEFAULT_SECRET_KEY, hang_seconds=0.3
    )
    attach(runtime, FLUTTERWAVE_URL, fw.app)
    h = tenant.key_headers
    credentials = paystack_credentials()
    if paystack_down:
        credentials["baseUrl"] = PAYSTACK_LINK
    await configure(client, h, "paystack", credentials, priority=2 if flutterwave_first else 1)
    await configure(
        client,
        h,
        "flutterwave",
        {
            "secretKey": flutterwave_sim.DEFAULT_SECRET_KEY,
            "secretHash": flutterwave_sim.DEFAULT_WEBHOOK_SECRET,
            "baseUrl": FLUTTERWAVE_URL,
        },
        priority=1 if flutterwave_first else 2,
    )
    invoice = await make_invoice(client, h, amount=2500)
    assert invoice["status"] == "PENDING"
    w = World(runtime, client, queue, tenant, ps, fw, invoice["id"], invoice["customerId"])
    try:
        yield w, switch
    finally:
        await queue.close()


async def test_decline_then_next_provider_pays(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    async with world(client, tenant, runtime) as (w, _):
        await w.save("paystack", paystack_sim.AUTH_DECLINE)
        await w.save("flutterwave", flutterwave_sim.TOKEN_SUCCESS)
        await w.charge()
        invoice = await w.invoice()
        assert invoice.status == "PAID" and invoice.collection_attempts == 0
        pays = await w.payments()
        assert pays["paystack"].status == "FAILED"
        assert pays["paystack"].failure_reason == "Insufficient Funds"
        assert pays["flutterwave"].status == "SUCCEEDED"
        assert pays["flutterwave"].amount_minor == AMOUNT_MINOR
        assert pays["paystack"].id == failover.attempt_payment_id(w.invoice_id, 0, "paystack")
        assert w.paystack.charges_for(pays["paystack"].reference or "") == 1
        assert w.flutterwave.charges_for(pays["flutterwave"].reference or "") == 1
        assert w.money_taken() == AMOUNT_MINOR
        assert w.failure_mails() == []  # no dunning: the invoice was paid
        # the job delivered again: nothing is charged again
        await w.charge(copies=2)
        assert sum(w.paystack.attempts.values()) == 1
        assert sum(w.flutterwave.attempts.values()) == 1


async def test_unreachable_then_next_provider_pays(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    async with world(client, tenant, runtime, paystack_down=True) as (w, switch):
        assert switch is not None
        await w.save("paystack", paystack_sim.AUTH_SUCCESS)
        await w.save("flutterwave", flutterwave_sim.TOKEN_SUCCESS)
        await w.charge()
        assert switch.calls >= 1 and w.paystack.transactions == {}
        invoice = await w.invoice()
        assert invoice.status == "PAID" and invoice.collection_attempts == 0
        pays = await w.payments()
        # unanswered, not failed: reconcile asks Paystack later with the same reference
        assert pays["paystack"].status == "PROCESSING"
        assert pays["paystack"].next_check_at is not None
        assert pays["flutterwave"].status == "SUCCEEDED"
        # Paystack is back: it never saw the charge, so asking changes nothing
        switch.down = False
        await w.reconcile(pays["paystack"].id)
        assert (await w.payments())["paystack"].status == "PROCESSING"
        assert w.paystack.transactions == {} and w.money_taken() == AMOUNT_MINOR
        assert (await w.invoice()).status == "PAID"


async def test_every_provider_fails_dunning_once(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    async with world(client, tenant, runtime) as (w, _):
        await w.save("paystack", paystack_sim.AUTH_DECLINE)
        await w.save("flutterwave", flutterwave_sim.TOKEN_DECLINE)
        await w.charge(copies=3)  # three deliveries of the job, at once
        invoice = await w.invoice()
        assert invoice.status == "FAILED" and invoice.collection_attempts == 1
        assert invoice.next_retry_at is not None
        pays = await w.payments()
        assert {p: x.status for p, x in pays.items()} == {
            "paystack": "FAILED",
            "flutterwave": "FAILED",
        }
        assert sum(w.paystack.attempts.values()) == 1
        assert sum(w.flutterwave.attempts.values()) == 1
        assert len(w.failure_mails()) == 1 and w.money_taken() == 0
        # a late copy of the attempt-0 job: dunning moved on, nothing happens
        await w.charge()
        assert (await w.invoice()).collection_attempts == 1
        assert sum(w.paystack.attempts.values()) + sum(w.flutterwave.attempts.values()) == 2


async def test_no_answer_then_decline_waits_for_the_answer(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """Paystack unreachable, Flutterwave declines: dunning waits until reconcile settles
    the unanswered Paystack charge (it may still have taken the money); when it fails,
    dunning acts once, and replaying reconcile changes nothing."""
    async with world(client, tenant, runtime, paystack_down=True) as (w, switch):
        assert switch is not None
        await w.save("paystack", paystack_sim.AUTH_SUCCESS)
        await w.save("flutterwave", flutterwave_sim.TOKEN_DECLINE)
        await w.charge()
        invoice = await w.invoice()
        assert invoice.status == "PENDING" and invoice.collection_attempts == 0
        pays = await w.payments()
        assert pays["paystack"].status == "PROCESSING"
        assert pays["flutterwave"].status == "FAILED"
        # reconcile gets no answer until its checks run out: "unconfirmed", then dunning
        for _ in range(len(service.RECONCILE_DELAYS)):
            await w.reconcile(pays["paystack"].id)
        invoice = await w.invoice()
        assert invoice.status == "FAILED" and invoice.collection_attempts == 1
        assert (await w.payments())["paystack"].failure_reason == service.UNCONFIRMED
        assert len(w.failure_mails()) == 1
        switch.down = False
        await w.reconcile(pays["paystack"].id, copies=2)
        await w.charge()
        assert (await w.invoice()).collection_attempts == 1 and len(w.failure_mails()) == 1
        assert w.paystack.transactions == {} and w.money_taken() == 0


async def test_slow_provider_pays_after_the_fast_one_and_is_refunded(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """Flutterwave (first) is slow: the charge is accepted but answers only after our
    timeout (503), and settles as successful later. Paystack (next) pays at once. Three
    deliveries of the job run at the same time (real row locks on PostgreSQL), then two
    reconcile jobs at once find Flutterwave's late success: the invoice is paid once, the
    late money is an overpayment refunded through Flutterwave, nothing is charged twice."""
    async with world(client, tenant, runtime, flutterwave_first=True) as (w, _):
        await w.save("paystack", paystack_sim.AUTH_SUCCESS)
        await w.save("flutterwave", flutterwave_sim.TOKEN_TIMEOUT)
        await w.charge(copies=3)
        invoice = await w.invoice()
        assert invoice.status == "PAID" and invoice.collection_attempts == 0
        pays = await w.payments()
        assert pays["flutterwave"].status == "PROCESSING"
        assert pays["paystack"].status == "SUCCEEDED"
        assert w.flutterwave.charges_for(pays["flutterwave"].reference or "") == 1
        assert w.paystack.charges_for(pays["paystack"].reference or "") == 1
        await w.flutterwave.drain()  # the slow charge settles: the money moved
        assert w.money_taken() == 2 * AMOUNT_MINOR
        await w.reconcile(pays["flutterwave"].id, copies=2)
        pays = await w.payments()
        late = pays["flutterwave"]
        assert late.status == "REFUNDED" and late.refunded_minor == AMOUNT_MINOR
        assert (late.metadata_ or {}).get("overpaid") is True
        assert pays["paystack"].status == "SUCCEEDED"
        assert len(w.flutterwave.refunds) == 1
        assert w.money_taken() == AMOUNT_MINOR
        invoice = await w.invoice()
        assert invoice.status == "PAID" and invoice.collection_attempts == 0
        # replays: nothing charged, nothing refunded again
        await w.reconcile(late.id, copies=2)
        await w.charge(copies=2)
        assert len(w.flutterwave.refunds) == 1 and len(w.flutterwave.transactions) == 1
        assert len(w.paystack.transactions) == 1 and w.money_taken() == AMOUNT_MINOR


async def test_a_chain_whose_worker_died_is_carried_on_by_a_job(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """The worker records Paystack's decline and dies before trying Flutterwave: the
    commit that recorded the decline queued a charge job, which carries on."""
    async with world(client, tenant, runtime) as (w, _):
        await w.save("paystack", paystack_sim.AUTH_DECLINE)
        await w.save("flutterwave", flutterwave_sim.TOKEN_SUCCESS)
        maker = await runtime.engines.sessionmaker(tenant.id)
        async with job_buffer(w.queue) as buffer:
            started = await failover.begin_next(
                maker,
                tenant_id=tenant.id,
                invoice_id=w.invoice_id,
                factory=provider_factory(runtime),
                encryptor=runtime.encryptor,
                clock=runtime.clock,
                order={},
                attempt=0,
            )
            assert started is not None and started.charge.handle.name == "paystack"
            txn = await charge.send_charge(started.charge)
            await collection.record_answer(
                runtime, tenant_id=tenant.id, payment_id=started.charge.payment_id, txn=txn
            )
            await buffer.flush()  # the commit's jobs are pushed; then the worker is gone
        assert (await w.payments())["paystack"].status == "FAILED"
        await w.queue.join()
        pays = await w.payments()
        assert pays["flutterwave"].status == "SUCCEEDED"
        invoice = await w.invoice()
        assert invoice.status == "PAID" and invoice.collection_attempts == 0
        assert sum(w.paystack.attempts.values()) == 1 and w.money_taken() == AMOUNT_MINOR


async def test_slow_providers_late_success_by_webhook_is_refunded_once(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """The same race, the late success told by Flutterwave's webhook (delivered twice,
    at-least-once): confirmed with Flutterwave, recorded as an overpayment, refunded once."""
    async with world(client, tenant, runtime, flutterwave_first=True) as (w, _):
        await w.save("paystack", paystack_sim.AUTH_SUCCESS)
        await w.save("flutterwave", flutterwave_sim.TOKEN_TIMEOUT)
        await w.charge(copies=2)
        assert (await w.invoice()).status == "PAID"
        await w.flutterwave.drain()
        [hook] = [h for h in w.flutterwave.sent_webhooks if b"successful" in h.body]
        for _ in range(2):
            response = await client.post(
                "/webhooks/flutterwave", content=hook.body, headers=hook.headers
            )
            assert response.status_code == 200, response.text
            await w.queue.join()
        pays = await w.payments()
        late = pays["flutterwave"]
        assert late.status == "REFUNDED" and late.refunded_minor == AMOUNT_MINOR
        assert (late.metadata_ or {}).get("overpaid") is True
        assert pays["paystack"].status == "SUCCEEDED"
        assert len(w.flutterwave.refunds) == 1 and w.money_taken() == AMOUNT_MINOR
        invoice = await w.invoice()
        assert invoice.status == "PAID" and invoice.collection_attempts == 0


async def test_a_charge_of_the_earlier_id_scheme_that_fails_moves_on(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """A charge started before failover existed (id ``<invoice>:charge:<n>``) and answered
    after: its provider counts as tried; the next one is charged, that one is not again."""
    async with world(client, tenant, runtime) as (w, _):
        await w.save("paystack", paystack_sim.AUTH_DECLINE)
        await w.save("flutterwave", flutterwave_sim.TOKEN_SUCCESS)
        maker = await runtime.engines.sessionmaker(tenant.id)
        async with maker() as session:
            invoice = await session.get(Invoice, w.invoice_id)
            assert invoice is not None
            handle = await provider_factory(runtime).get(tenant.id, "paystack")
            assert handle is not None
            legacy = derived_id(f"{w.invoice_id}:charge:0")
            session.add(charge.new_payment(invoice, handle, "CHARGE", runtime.clock.now(), legacy))
            await session.commit()
        declined = Transaction(reference=legacy, outcome=Outcome.FAILED, message="Declined")
        async with job_buffer(w.queue) as buffer:
            await collection.record_answer(
                runtime, tenant_id=tenant.id, payment_id=legacy, txn=declined
            )
            await buffer.flush()
        await w.queue.join()
        pays = await w.payments()
        assert pays["paystack"].id == legacy and pays["paystack"].status == "FAILED"
        assert pays["flutterwave"].status == "SUCCEEDED"
        assert w.paystack.attempts == {} and (await w.invoice()).status == "PAID"


async def test_tenant_order_per_currency(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """Paystack has the better priority, but the tenant orders Flutterwave first for NGN."""
    async with world(client, tenant, runtime) as (w, _):
        patched = await client.patch(
            "/api/tenants/me",
            json={"settings": {"providerOrder": {"ngn": ["Flutterwave", "paystack"]}}},
            headers=tenant.token_headers,
        )
        assert patched.status_code == 200, patched.text
        me = (await client.get("/api/tenants/me", headers=tenant.token_headers)).json()
        assert me["settings"]["providerOrder"] == {"NGN": ["flutterwave", "paystack"]}
        await w.save("paystack", paystack_sim.AUTH_SUCCESS)
        await w.save("flutterwave", flutterwave_sim.TOKEN_SUCCESS)
        await w.charge()
        pays = await w.payments()
        assert list(pays) == ["flutterwave"] and pays["flutterwave"].status == "SUCCEEDED"
        assert w.paystack.attempts == {} and w.money_taken() == AMOUNT_MINOR


async def test_checkout_follows_the_tenant_order(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    async with world(client, tenant, runtime) as (w, _):
        h = tenant.key_headers
        first = await client.post(f"/api/invoices/{w.invoice_id}/checkout", headers=h)
        assert first.status_code == 201, first.text
        assert first.json()["provider"] == "paystack"  # priority 1
        patched = await client.patch(
            "/api/tenants/me",
            json={"settings": {"providerOrder": {"NGN": ["flutterwave"]}}},
            headers=tenant.token_headers,
        )
        assert patched.status_code == 200, patched.text
        other = await make_invoice(client, h, amount=700)
        page = await client.post(f"/api/invoices/{other['id']}/checkout", headers=h)
        assert page.status_code == 201, page.text
        assert page.json()["provider"] == "flutterwave" and page.json()["checkoutUrl"]


async def test_order_setting_bad_input(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    h = tenant.token_headers
    field = "settings.providerOrder"
    cases: list[tuple[Any, str]] = [
        ({"NGN": ["paystak"]}, f"{field}.NGN"),
        ({"XYZ": ["paystack"]}, f"{field}.XYZ"),
        ({"NGN": ["mpesa"]}, f"{field}.NGN"),  # M-Pesa charges KES only
        ({"NGN": ["paystack", "PAYSTACK"]}, f"{field}.NGN"),
        ({"NGN": []}, f"{field}.NGN"),
        ({"NGN": "paystack"}, f"{field}.NGN"),
        (["paystack"], field),
    ]
    for value, named in cases:
        response = await client.patch(
            "/api/tenants/me", json={"settings": {"providerOrder": value}}, headers=h
        )
        assert_error(response, 400, named)
    ok = await client.patch(
        "/api/tenants/me",
        json={"settings": {"providerOrder": {"KES": ["mpesa", "dpo-group"]}}},
        headers=h,
    )
    assert ok.status_code == 200, ok.text
    me = (await client.get("/api/tenants/me", headers=h)).json()
    assert me["settings"]["providerOrder"] == {"KES": ["mpesa", "dpo"]}
    cleared = await client.patch(
        "/api/tenants/me", json={"settings": {"providerOrder": None}}, headers=h
    )
    assert cleared.status_code == 200
    me = (await client.get("/api/tenants/me", headers=h)).json()
    assert me["settings"].get("providerOrder") is None
    unauthenticated = await client.patch(
        "/api/tenants/me", json={"settings": {"providerOrder": {"KES": ["mpesa"]}}}
    )
    assert_error(unauthenticated, 401)


async def test_concurrent_deliveries_start_one_charge_at_a_time(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """Many copies of the charge job racing (PostgreSQL: real row locks) with a slow
    first provider: one chain runs, each provider is charged once."""
    async with world(client, tenant, runtime, flutterwave_first=True) as (w, _):
        await w.save("paystack", paystack_sim.AUTH_DECLINE)
        await w.save("flutterwave", flutterwave_sim.TOKEN_TIMEOUT)
        await w.charge(copies=4)
        pays = await w.payments()
        assert pays["flutterwave"].status == "PROCESSING"
        assert pays["paystack"].status == "FAILED"
        assert sum(w.flutterwave.attempts.values()) >= 1
        assert w.flutterwave.charges_for(pays["flutterwave"].reference or "") == 1
        assert sum(w.paystack.attempts.values()) == 1
        # the unanswered Flutterwave charge decides: no dunning while it may still pay
        invoice = await w.invoice()
        assert invoice.status == "PENDING" and invoice.collection_attempts == 0
        await w.flutterwave.drain()
        await w.reconcile(pays["flutterwave"].id, copies=3)
        invoice = await w.invoice()
        assert invoice.status == "PAID" and w.money_taken() == AMOUNT_MINOR
        assert w.failure_mails() == []
