"""DELETE /api/customers/{id} (contract customers.md): only an ACTIVE subscription blocks;
everything of the customer goes in one transaction - subscriptions (events, pending
proration lines), invoices (lines, stored PDFs), payments (refunds), payment methods -
while the invoice number counter keeps counting; outbound ``customer.deleted``. On SQLite
and PostgreSQL (real foreign keys)."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, or_, select, update

import novabilling.tenant_schema  # noqa: F401
from novabilling.billing import accounts
from novabilling.invoices.documents import pdf_path
from novabilling.kit.db import TenantBase
from novabilling.kit.jobs import job_buffer
from novabilling.payments.models import Payment, PaymentMethod, Refund
from novabilling.runtime import Runtime
from novabilling.subscriptions.models import PendingInvoiceItem, Subscription, SubscriptionEvent
from tests.conftest import TenantCreds, assert_error
from tests.payments.helpers import use_inprocess_jobs
from tests.webhooks.helpers import capture_outbound, point_webhooks_at_test_url


class Api:
    def __init__(self, client: httpx.AsyncClient, creds: TenantCreds) -> None:
        self.client = client
        self.h = creds.key_headers

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        r = await self.client.post(path, headers=self.h, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    async def customer(self) -> Any:
        return await self.post(
            "/api/customers",
            {"externalId": f"c-{secrets.token_hex(4)}", "email": "x@test.local", "currency": "USD"},
        )

    async def invoice(self, customer_id: str, *, paid: bool = False) -> Any:
        invoice = await self.post(
            "/api/invoices",
            {
                "customerId": customer_id,
                "currency": "USD",
                "dueDate": "2030-01-01",
                "items": [{"description": "Work", "quantity": 2, "unitAmount": "12.50"}],
            },
        )
        if paid:
            invoice = await self.post(f"/api/invoices/{invoice['id']}/mark-paid", {})
        return invoice


async def _seed(runtime: Runtime, tenant_id: str, api: Api, plan_id: str) -> dict[str, Any]:
    """A customer with one subscription per non-blocking status, a pending proration line,
    a logged transition, two invoices (one paid: a payment, refunded in part), a saved
    payment method and a stored invoice PDF."""
    customer = await api.customer()
    cid = customer["id"]
    subs = []
    for status in ("TRIALING", "PAUSED", "PAST_DUE", "CANCELED"):
        sub = await api.post(
            "/api/subscriptions",
            {"customerId": cid, "planId": plan_id, "currency": "USD", "trialDays": 30},
        )
        subs.append((sub["id"], status))
    unpaid = await api.invoice(cid)
    paid = await api.invoice(cid, paid=True)
    r = await api.client.get(f"/api/invoices/{unpaid['id']}/pdf", headers=api.h)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    maker = await runtime.engines.sessionmaker(tenant_id)
    now = runtime.clock.now()
    async with maker() as session:
        for sub_id, status in subs:
            await session.execute(
                update(Subscription).where(Subscription.id == sub_id).values(status=status)
            )
        first = subs[0][0]
        session.add(
            SubscriptionEvent(
                subscription_id=first, from_status="ACTIVE", to_status="PAUSED", reason="t", at=now
            )
        )
        session.add(
            PendingInvoiceItem(
                subscription_id=first,
                customer_id=cid,
                currency="USD",
                kind="proration_credit",
                description="Unused time",
                amount_minor=-500,
                period_start=now,
                period_end=now + timedelta(days=30),
                created_at=now,
            )
        )
        payment = await session.scalar(select(Payment).where(Payment.invoice_id == paid["id"]))
        assert payment is not None, "mark-paid records a payment"
        session.add(
            Refund(
                payment_id=payment.id,
                amount_minor=100,
                currency="USD",
                created_at=now,
                updated_at=now,
            )
        )
        session.add(
            PaymentMethod(
                customer_id=cid,
                provider="paystack",
                token_encrypted="sealed",
                token_hash=secrets.token_hex(32),
                created_at=now,
                updated_at=now,
            )
        )
        await session.commit()
    return {
        "customer": cid,
        "external_id": customer["externalId"],
        "subscriptions": [s for s, _ in subs],
        "invoices": [unpaid["id"], paid["id"]],
        "payments": [payment.id],
        "numbers": [unpaid["invoiceNumber"], paid["invoiceNumber"]],
    }


async def _rows_of(runtime: Runtime, tenant_id: str, seeded: dict[str, Any]) -> dict[str, int]:
    """Rows in every tenant table that are, or point at, one of the seeded objects (by
    ``id`` of the owning table or a ``customer_id``/``subscription_id``/``invoice_id``/
    ``payment_id`` column): the deletion must leave none, whatever tables exist."""
    owners = {
        "customers": [seeded["customer"]],
        "subscriptions": seeded["subscriptions"],
        "invoices": seeded["invoices"],
        "payments": seeded["payments"],
    }
    pointers = {
        "customer_id": owners["customers"],
        "subscription_id": owners["subscriptions"],
        "invoice_id": owners["invoices"],
        "payment_id": owners["payments"],
    }
    counts: dict[str, int] = {}
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        for table in TenantBase.metadata.sorted_tables:
            conditions = [table.c[c].in_(ids) for c, ids in pointers.items() if c in table.c]
            if table.name in owners:
                conditions.append(table.c.id.in_(owners[table.name]))
            if conditions:
                stmt = select(func.count()).select_from(table).where(or_(*conditions))
                counts[table.name] = int(await session.scalar(stmt) or 0)
    return counts


async def test_delete_cascades_and_leaves_nothing(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    sent = capture_outbound(runtime)
    await point_webhooks_at_test_url(client, tenant)
    api = Api(client, tenant)
    plan = await api.post(
        "/api/plans",
        {
            "name": "Pro",
            "code": "pro",
            "billingInterval": "MONTHLY",
            "prices": [{"currency": "USD", "amount": "10.50"}],
        },
    )
    victim = await _seed(runtime, tenant.id, api, plan["id"])
    keeper = await _seed(runtime, tenant.id, api, plan["id"])
    await queue.join()
    before = await _rows_of(runtime, tenant.id, victim)
    expected = {
        "customers",
        "subscriptions",
        "subscription_events",
        "pending_invoice_items",
        "invoices",
        "invoice_lines",
        "payments",
        "refunds",
        "payment_methods",
    }
    assert expected <= {name for name, n in before.items() if n > 0}, before
    data_dir = runtime.settings.data_dir
    assert pdf_path(data_dir, victim["invoices"][0]).exists()
    keeper_before = await _rows_of(runtime, tenant.id, keeper)

    r = await client.delete(f"/api/customers/{victim['customer']}", headers=api.h)
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["message"], str) and set(r.json()) == {"message"}
    await queue.join()

    assert await _rows_of(runtime, tenant.id, victim) == dict.fromkeys(before, 0)
    assert await _rows_of(runtime, tenant.id, keeper) == keeper_before
    assert not pdf_path(data_dir, victim["invoices"][0]).exists()
    assert pdf_path(data_dir, keeper["invoices"][0]).exists()
    # the public (no auth) PDF URL goes with the invoice
    assert_error(await client.get(f"/uploads/invoices/invoice-{victim['invoices'][0]}.pdf"), 404)
    r = await client.get(f"/uploads/invoices/invoice-{keeper['invoices'][0]}.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert_error(await client.get(f"/api/customers/{victim['customer']}", headers=api.h), 404)
    for invoice_id in victim["invoices"]:
        assert_error(await client.get(f"/api/invoices/{invoice_id}", headers=api.h), 404)
    for sub_id in victim["subscriptions"]:
        assert_error(await client.get(f"/api/subscriptions/{sub_id}", headers=api.h), 404)
    r = await client.get(f"/api/customers/{keeper['customer']}/invoices", headers=api.h)
    assert sorted(i["id"] for i in r.json()) == sorted(keeper["invoices"])

    # invoice numbers are not rolled back: the next one continues after the deleted ones
    numbers = sorted(victim["numbers"] + keeper["numbers"])
    nxt = await api.invoice(keeper["customer"])
    assert nxt["invoiceNumber"] > numbers[-1] and nxt["invoiceNumber"] not in numbers

    deleted = [q for q in sent if q.headers["X-Event-Type"] == "customer.deleted"]
    assert len(deleted) == 1
    body = json.loads(deleted[0].content)
    assert body["event"] == "customer.deleted"
    assert body["data"] == {
        "customerId": victim["customer"],
        "externalId": victim["external_id"],
        "email": "x@test.local",
    }
    await queue.close()


async def test_active_subscription_blocks_and_nothing_is_deleted(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    sent = capture_outbound(runtime)
    api = Api(client, tenant)
    plan = await api.post(
        "/api/plans",
        {
            "name": "Pro",
            "code": "pro",
            "billingInterval": "MONTHLY",
            "prices": [{"currency": "USD", "amount": "10.50"}],
        },
    )
    seeded = await _seed(runtime, tenant.id, api, plan["id"])
    active = await api.post(
        "/api/subscriptions",
        {"customerId": seeded["customer"], "planId": plan["id"], "currency": "USD"},
    )
    assert active["status"] == "ACTIVE"
    seeded["subscriptions"].append(active["id"])
    await queue.join()
    before = await _rows_of(runtime, tenant.id, seeded)
    r = await client.delete(f"/api/customers/{seeded['customer']}", headers=api.h)
    assert_error(r, 400)
    assert "active" in r.json()["message"].lower()
    await queue.join()
    assert await _rows_of(runtime, tenant.id, seeded) == before
    assert pdf_path(runtime.settings.data_dir, seeded["invoices"][0]).exists()
    assert not [q for q in sent if q.headers["X-Event-Type"] == "customer.deleted"]
    # once it is canceled, the customer goes
    r = await client.post(
        f"/api/subscriptions/{active['id']}/cancel", headers=api.h, json={"cancelAt": "now"}
    )
    assert r.status_code == 201, r.text
    r = await client.delete(f"/api/customers/{seeded['customer']}", headers=api.h)
    assert r.status_code == 200, r.text
    assert set((await _rows_of(runtime, tenant.id, seeded)).values()) == {0}
    await queue.close()


async def test_rolled_back_delete_keeps_everything_and_the_pdfs(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """The stored PDFs go only when the deletion commits."""
    queue = use_inprocess_jobs(runtime)
    api = Api(client, tenant)
    customer = await api.customer()
    invoice = await api.invoice(customer["id"])
    r = await client.get(f"/api/invoices/{invoice['id']}/pdf", headers=api.h)
    assert r.status_code == 200
    stored = pdf_path(runtime.settings.data_dir, invoice["id"])
    maker = await runtime.engines.sessionmaker(tenant.id)
    for commit in (False, True):
        async with job_buffer(queue) as buffer, maker() as session:
            await accounts.delete_customer(
                session,
                customer["id"],
                tenant_id=tenant.id,
                clock=runtime.clock,
                data_dir=runtime.settings.data_dir,
            )
            if commit:
                await session.commit()
                await buffer.flush()
            else:
                await session.rollback()
                buffer.discard()
        assert stored.exists() is not commit
        r = await client.get(f"/api/invoices/{invoice['id']}", headers=api.h)
        assert r.status_code == (404 if commit else 200)
    await queue.close()
