"""Regression tests for the billing defects found in the core review (one per defect;
each failed before its fix). Through the API on both backends, time from a TestClock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from novabilling.billing import scheduler
from novabilling.billing.scheduler import MinuteLedger, owed_minutes
from novabilling.invoices.models import CreditNote, Invoice
from novabilling.kit.clock import TestClock
from novabilling.runtime import Runtime
from novabilling.subscriptions.models import PendingInvoiceItem
from tests.conftest import TenantCreds, assert_error
from tests.subscriptions.helpers import make_customer, make_plan, subscribe

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(runtime: Runtime) -> TestClock:
    test_clock = TestClock(T0)
    runtime.clock = test_clock
    runtime.principals.clock = test_clock
    return test_clock


async def _rows(runtime: Runtime, tenant: TenantCreds, model: Any, *where: Any) -> list[Any]:
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        return list((await session.scalars(select(model).where(*where))).all())


# -- 1. the first IN_ADVANCE invoice exists when the create call answers -------------------


async def test_first_in_advance_invoice_is_created_with_the_subscription(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock
) -> None:
    customer = await make_customer(client, tenant)
    plan = await make_plan(client, tenant, usd="30", timing="IN_ADVANCE")
    sub = await subscribe(client, tenant, customer, plan)
    listed = await client.get(
        f"/api/invoices?subscriptionId={sub['id']}", headers=tenant.key_headers
    )
    [invoice] = listed.json()["data"]  # no tick ran: it came with the subscription
    assert invoice["amount"] == "30" and invoice["status"] == "PENDING"
    assert invoice["metadata"]["periodStart"] == "2026-12-02T09:00:00.000Z"
    detail = (
        await client.get(f"/api/subscriptions/{sub['id']}", headers=tenant.key_headers)
    ).json()
    assert [i["id"] for i in detail["invoices"]] == [invoice["id"]]
    arrears = await make_plan(client, tenant, usd="30", timing="IN_ARREARS")
    later = await subscribe(client, tenant, customer, arrears)
    listed = await client.get(
        f"/api/invoices?subscriptionId={later['id']}", headers=tenant.key_headers
    )
    assert listed.json()["data"] == []  # in arrears: billed when the period ends


async def test_an_unbilled_period_is_never_credited_on_upgrade(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, clock: TestClock
) -> None:
    customer = await make_customer(client, tenant)
    small = await make_plan(client, tenant, usd="30", timing="IN_ADVANCE")
    big = await make_plan(client, tenant, usd="90", timing="IN_ADVANCE")
    sub = await subscribe(client, tenant, customer, small)
    [first] = await _rows(runtime, tenant, Invoice, Invoice.subscription_id == sub["id"])
    r = await client.post(f"/api/invoices/{first.id}/void", headers=tenant.key_headers)
    assert r.status_code == 201  # the period is no longer billed
    clock.advance(timedelta(days=10))
    r = await client.post(
        f"/api/subscriptions/{sub['id']}/change-plan",
        json={"newPlanId": big["id"], "prorate": True},
        headers=tenant.key_headers,
    )
    assert r.status_code == 201, r.text
    lines = await _rows(
        runtime, tenant, PendingInvoiceItem, PendingInvoiceItem.subscription_id == sub["id"]
    )
    assert [(x.kind, x.amount_minor) for x in lines] == [("proration_charge", 9000)]
    assert await _rows(runtime, tenant, CreditNote) == []


# -- 3. cancel now: credit note and e-mail -------------------------------------------------


async def test_cancel_now_issues_the_credit_note_and_the_email(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, clock: TestClock
) -> None:
    customer = await make_customer(client, tenant)
    plan = await make_plan(client, tenant, usd="31", timing="IN_ADVANCE")
    sub = await subscribe(client, tenant, customer, plan)  # 2 Dec - 2 Jan: 31 days
    clock.advance(timedelta(days=10))
    r = await client.post(
        f"/api/subscriptions/{sub['id']}/cancel",
        json={"cancelAt": "now"},
        headers=tenant.key_headers,
    )
    assert r.status_code == 201 and r.json()["status"] == "CANCELED"
    [invoice] = await _rows(runtime, tenant, Invoice, Invoice.subscription_id == sub["id"])
    [note] = await _rows(runtime, tenant, CreditNote)
    assert note.invoice_id == invoice.id and note.customer_id == customer["id"]
    assert (note.status, note.reason, note.currency) == ("FINALIZED", "ORDER_CHANGE", "USD")
    assert note.amount_minor == 2100  # 31.00 x 21 of 31 days
    assert note.metadata_ == {
        "type": "cancellation_proration",
        "planName": plan["name"],
        "remainingDays": 21,
        "totalDays": 31,
    }


async def test_subscription_actions_email_the_customer(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, clock: TestClock
) -> None:
    sent: list[str] = []
    real = runtime.jobs
    assert real is not None

    class Spy:
        async def enqueue(self, queue: str, name: str, data: dict[str, Any], **kw: Any) -> None:
            sent.append(name)
            await real.enqueue(queue, name, data, **kw)

        async def close(self) -> None:
            await real.close()

    runtime.jobs = Spy()  # type: ignore[assignment]
    customer = await make_customer(client, tenant)
    plan = await make_plan(client, tenant, usd="30", timing="IN_ARREARS")
    big = await make_plan(client, tenant, usd="60", timing="IN_ARREARS")
    sub = await subscribe(client, tenant, customer, plan)
    for path, body in (
        ("pause", None),
        ("resume", None),
        ("change-plan", {"newPlanId": big["id"]}),
        ("cancel", {"cancelAt": "now"}),
    ):
        r = await client.post(
            f"/api/subscriptions/{sub['id']}/{path}", json=body, headers=tenant.key_headers
        )
        assert r.status_code == 201, r.text
    runtime.jobs = real
    emails = [n for n in sent if n.startswith("email.subscription")]
    assert emails == [
        "email.subscription_created",
        "email.subscription_paused",
        "email.subscription_resumed",
        "email.subscription_plan_changed",
        "email.subscription_canceled",
    ]


# -- 4. proration lines read like a bill ---------------------------------------------------


async def test_proration_lines_read_like_a_bill(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, clock: TestClock
) -> None:
    customer = await make_customer(client, tenant)
    small = await make_plan(client, tenant, usd="31", timing="IN_ADVANCE")
    big = await make_plan(client, tenant, usd="62", timing="IN_ADVANCE")
    sub = await subscribe(client, tenant, customer, small)
    clock.advance(timedelta(days=10))
    r = await client.post(
        f"/api/subscriptions/{sub['id']}/change-plan",
        json={"newPlanId": big["id"], "prorate": True},
        headers=tenant.key_headers,
    )
    assert r.status_code == 201, r.text
    lines = await _rows(
        runtime, tenant, PendingInvoiceItem, PendingInvoiceItem.subscription_id == sub["id"]
    )
    text = {x.kind: x.description for x in lines}
    assert text["proration_credit"] == (
        f"Unused time on {small['name']}, 12 Dec – 2 Jan 2027 (remaining 21 of 31 days)"
    )
    assert text["proration_charge"] == (
        f"{big['name']}, 12 Dec – 12 Jan 2027 (remaining 31 of 31 days)"
    )
    assert "T" not in "".join(text.values()).replace("Time", "")  # no ISO timestamps
    [note] = await _rows(runtime, tenant, CreditNote)
    assert note.metadata_ is not None and note.metadata_["type"] == "proration_credit"
    assert note.amount_minor == 2100 and note.metadata_["oldPlanId"] == small["id"]


# -- 6. POST /api/payments: paidAt = createdAt, and the endpoint's API tests ---------------


async def _pending_invoice(client: httpx.AsyncClient, creds: TenantCreds) -> dict[str, Any]:
    customer = await make_customer(client, creds)
    r = await client.post(
        "/api/invoices",
        json={
            "customerId": customer["id"],
            "currency": "USD",
            "dueDate": "2027-01-01",
            "items": [{"description": "Setup", "quantity": 1, "unitAmount": 120}],
        },
        headers=creds.key_headers,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_recorded_payment_backdates_paid_at(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock
) -> None:
    invoice = await _pending_invoice(client, tenant)
    body = {
        "invoiceId": invoice["id"],
        "provider": "bank_transfer",
        "amount": 120,
        "currency": "usd",
        "status": "SUCCEEDED",
        "createdAt": "2026-11-20T08:30:00Z",
    }
    r = await client.post("/api/payments", json=body, headers=tenant.key_headers)
    assert r.status_code == 201, r.text
    payment = r.json()
    assert payment["status"] == "SUCCEEDED" and payment["currency"] == "USD"
    assert payment["createdAt"] == "2026-11-20T08:30:00.000Z"
    paid = (await client.get(f"/api/invoices/{invoice['id']}", headers=tenant.key_headers)).json()
    assert paid["status"] == "PAID" and paid["paidAt"] == "2026-11-20T08:30:00.000Z"


async def test_record_payment_errors(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds, clock: TestClock
) -> None:
    invoice = await _pending_invoice(client, tenant)
    good = {
        "invoiceId": invoice["id"],
        "provider": "cash",
        "amount": 120,
        "currency": "USD",
        "status": "SUCCEEDED",
    }
    assert_error(await client.post("/api/payments", json=good), 401)
    for field, value in (("amount", -1), ("status", "PENDING"), ("invoiceId", "")):
        r = await client.post(
            "/api/payments", json={**good, field: value}, headers=tenant.key_headers
        )
        assert_error(r, 400, field)
    r = await client.post(
        "/api/payments", json={**good, "currency": "EUR"}, headers=tenant.key_headers
    )
    assert_error(r, 400, "currency")
    r = await client.post("/api/payments", json=good, headers=other_tenant.key_headers)
    assert_error(r, 404)  # another tenant's invoice


# -- 8. every minute is scheduled once, late rather than never -----------------------------


def test_owed_minutes_never_skip_and_never_repeat() -> None:
    m = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    minute = timedelta(minutes=1)
    assert owed_minutes(m, m + timedelta(seconds=59.9)) == [m]
    assert owed_minutes(m + minute, m + timedelta(seconds=59.99)) == []  # woke early
    assert owed_minutes(m, m + timedelta(minutes=3, seconds=1)) == [
        m + minute * k for k in range(4)
    ]
    long = owed_minutes(m, m + timedelta(hours=5))
    assert len(long) == scheduler.CATCH_UP and long[-1] == m + timedelta(hours=5)


def test_the_ledger_schedules_every_minute_once_whenever_the_loop_wakes() -> None:
    """Seen: the loop woke a little early, recomputed the previous minute and skipped
    one. Wakes early, on time, late and after a stall: each minute exactly once."""
    start = datetime(2026, 12, 2, 9, 0, 30, tzinfo=UTC)
    ledger = MinuteLedger(start)
    scheduled: list[datetime] = []
    for offset in (0, 59.99, 60.0, 61, 119.5, 185, 185.2, 300.0):
        now = start.replace(second=0) + timedelta(seconds=offset)
        for minute in ledger.owed(now):
            scheduled.append(minute)
            ledger.done(minute)
        assert ledger.seconds_to_next(now) > 0
    first = start.replace(second=0)
    assert scheduled == [first + timedelta(minutes=k) for k in range(6)]


# -- 10. a Stripe checkout settles (the PaymentIntent's customer is a string id) -----------


def test_money_in_credit_notes_is_exact() -> None:
    from novabilling.invoices.credit_notes import remaining_share
    from novabilling.kit.money import round_half_up

    start = datetime(2026, 2, 1, tzinfo=UTC)
    share = remaining_share((start, start + timedelta(days=28)), start + timedelta(days=13))
    assert share == (15, 28)
    assert round_half_up(Decimal(999) * 15 / 28) == 535  # 535.18 -> 535
    assert round_half_up(Decimal(-5) / 2) == -3  # halves away from zero
