"""``invoice.created`` / ``invoice.drafted`` (contract webhooks.md, invoice-composition.md
step 12): one event per subscription invoice the billing engine issues, with the exact
data shape; none for manual invoices; the bulk path (one fan-out job) sends the same
events, once each even when the fan-out job runs twice. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from novabilling.billing.tick import run_tenant_tick
from novabilling.invoices.jobs import fan_out_issued
from novabilling.invoices.lifecycle import ISSUED_JOB
from novabilling.kit.jobs import job_buffer
from tests.billing.support import (
    Api,
    RecordingQueue,
    clocked_runtime,
    invoices_of,
    seed_due_subscriptions,
)
from tests.conftest import Backend
from tests.webhooks.helpers import point_webhooks_at_test_url

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
CREATED = ("invoice.created", "invoice.drafted")


def _events(queue: RecordingQueue, *names: str) -> list[tuple[str, dict[str, Any]]]:
    return [(j["event"], j["data"]) for j in queue.named("webhook.deliver") if j["event"] in names]


async def test_subscription_invoice_emits_created_once(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        await point_webhooks_at_test_url(client, api.creds)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "29.99"})
        cust = await api.customer(netPaymentTerms=7)
        sub = await api.subscription(cust["id"], plan["id"], "USD")
        tid = api.creds.id
        for _ in range(2):
            await run_tenant_tick(runtime, tid)
        [first] = await invoices_of(runtime, tid)
        expected = {
            "invoiceId": first.id,
            "invoiceNumber": "INV-00001",
            "customerId": cust["id"],
            "subscriptionId": sub["id"],
            "amount": 29.99,
            "currency": "USD",
            "dueDate": "2026-02-07T09:00:00.000Z",  # T0 + 7 days' net terms
            "status": "PENDING",
        }
        assert _events(queue, *CREATED) == [("invoice.created", expected)]
        # the created event comes first, then the finalized one of the PENDING invoice
        names = [
            j["event"] for j in queue.named("webhook.deliver") if j["event"].startswith("invoice.")
        ]
        assert names == ["invoice.created", "invoice.finalized"]

        clock.set(datetime(2026, 3, 1, tzinfo=UTC))  # the Feb 28 renewal is due
        for _ in range(2):
            await run_tenant_tick(runtime, tid)
        _, second = await invoices_of(runtime, tid)
        created = _events(queue, *CREATED)
        assert [data["invoiceId"] for _, data in created] == [first.id, second.id]
        assert created[1][1]["invoiceNumber"] == "INV-00002"
        assert created[1][1]["dueDate"] == "2026-03-08T00:00:00.000Z"  # issued Mar 1 00:00 + 7 d


async def test_grace_period_invoice_emits_drafted_then_finalized(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        await point_webhooks_at_test_url(client, api.creds)
        plan = await api.plan(
            "DAILY", "IN_ARREARS", {"KES": 500}, invoiceGracePeriodDays=2, netPaymentTerms=10
        )
        cust = await api.customer("KES")
        sub = await api.subscription(cust["id"], plan["id"], "KES")
        tid = api.creds.id
        clock.set(T0 + timedelta(days=1))
        await run_tenant_tick(runtime, tid)
        [draft] = await invoices_of(runtime, tid)
        assert draft.status == "DRAFT"
        assert _events(queue, *CREATED) == [
            (
                "invoice.drafted",
                {
                    "invoiceId": draft.id,
                    "invoiceNumber": draft.invoice_number,
                    "customerId": cust["id"],
                    "subscriptionId": sub["id"],
                    "amount": 500,
                    "currency": "KES",
                    "dueDate": "2026-02-11T09:00:00.000Z",  # issued Feb 1 09:00 + 10 days
                    "status": "DRAFT",
                },
            )
        ]
        assert _events(queue, "invoice.finalized") == []
        clock.set(T0 + timedelta(days=3))  # the grace period ends: finalized, no new created
        await run_tenant_tick(runtime, tid)
        assert [d["invoiceId"] for _, d in _events(queue, "invoice.finalized")] == [draft.id]
        assert [
            d["invoiceId"] for _, d in _events(queue, *CREATED) if d["invoiceId"] == draft.id
        ] == [draft.id]


async def test_manual_invoice_emits_no_created(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        await point_webhooks_at_test_url(client, api.creds)
        cust = await api.customer()
        inv = await api.post(
            "/api/invoices",
            {
                "customerId": cust["id"],
                "dueDate": "2026-03-01",
                "items": [{"description": "Setup", "quantity": 1, "unitAmount": 100}],
            },
        )
        await api.post(f"/api/invoices/{inv['id']}/finalize")
        assert _events(queue, *CREATED) == []
        assert [d["invoiceId"] for _, d in _events(queue, "invoice.finalized")] == [inv["id"]]


async def test_bulk_renewals_fan_out_created_once_each(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        await point_webhooks_at_test_url(client, api.creds)
        tid = api.creds.id
        await seed_due_subscriptions(runtime, tid, 6, period_end=T0)
        await run_tenant_tick(runtime, tid)
        invoices = await invoices_of(runtime, tid)
        assert len(invoices) == 6
        [job] = queue.named(ISSUED_JOB)
        assert sorted(job["created"]) == sorted(i.id for i in invoices)
        assert _events(queue, *CREATED) == []  # not yet: the fan-out job sends them
        for _ in range(2):  # at-least-once delivery: the job may run twice
            async with job_buffer(runtime.jobs) as buffer:
                await fan_out_issued(
                    runtime,
                    tenant_id=tid,
                    invoices=[(str(i), bool(c)) for i, c in job["invoices"]],
                    created=job["created"],
                )
                await buffer.flush()
        created = _events(queue, *CREATED)
        by_id = {i.id: i for i in invoices}
        assert sorted(d["invoiceId"] for _, d in created) == sorted(by_id)
        for name, data in created:
            invoice = by_id[data["invoiceId"]]
            assert name == "invoice.created"
            assert data == {
                "invoiceId": invoice.id,
                "invoiceNumber": invoice.invoice_number,
                "customerId": invoice.customer_id,
                "subscriptionId": invoice.subscription_id,
                "amount": 15,  # 1500 minor units of USD
                "currency": "USD",
                "dueDate": data["dueDate"],
                "status": "PENDING",
            }
            assert data["dueDate"] == invoice.due_date.strftime("%Y-%m-%dT%H:%M:%S.000Z")
