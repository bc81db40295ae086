"""Customer e-mails of issue 12, received on a real SMTP server (aiosmtpd) from the
``emails`` queue, on SQLite and PostgreSQL: trial started, trial converted, subscription
paused / resumed / plan changed, refund issued, and the payment reminder series (each
stage once, none after payment). Every message is multipart/alternative (text + HTML)
with amounts formatted by ``kit.money`` (zero-decimal UGX, two-decimal KES and USD)."""

from __future__ import annotations

import email
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session

from novabilling.billing.tick import run_tenant_tick
from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.kit.timestamps import parse_instant
from novabilling.notifications.mailer import SmtpMailer
from novabilling.runtime import Runtime
from novabilling.worker import build_handlers
from tests.billing.support import Api, clocked_runtime, invoices_of
from tests.conftest import Backend, TenantCreds


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.messages.append(email.message_from_bytes(raw, policy=default_policy))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def take(self) -> list[EmailMessage]:
        taken, self.messages = self.messages, []
        return taken


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.port = port  # type: ignore[attr-defined]
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
async def mails(runtime: Runtime, inbox: Inbox) -> AsyncIterator[InProcessQueue]:
    """Every job runs in process (fast retries); e-mails go to the ``inbox`` server."""
    original_jobs, original_mailer = runtime.jobs, runtime.mailer
    queue = InProcessQueue(build_handlers(runtime), backoff_base_seconds=0.01)
    runtime.jobs = queue
    runtime.mailer = SmtpMailer(f"smtp://127.0.0.1:{inbox.port}?timeout=5")  # type: ignore[attr-defined]
    try:
        yield queue
    finally:
        await queue.close()
        runtime.jobs, runtime.mailer = original_jobs, original_mailer


def _parts(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() in ("multipart/alternative", "multipart/mixed")
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def _one(messages: list[EmailMessage], subject_start: str) -> EmailMessage:
    found = [m for m in messages if str(m["Subject"]).startswith(subject_start)]
    assert len(found) == 1, [m["Subject"] for m in messages]
    return found[0]


async def _post(client: httpx.AsyncClient, creds: TenantCreds, path: str, body: Any) -> Any:
    r = await client.post(path, headers=creds.key_headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _plan(
    client: httpx.AsyncClient, creds: TenantCreds, name: str, code: str, prices: dict[str, str]
) -> Any:
    return await _post(
        client,
        creds,
        "/api/plans",
        {
            "name": name,
            "code": code,
            "billingInterval": "MONTHLY",
            "billingTiming": "IN_ADVANCE",
            "prices": [{"currency": c, "amount": a} for c, a in prices.items()],
        },
    )


async def _customer(
    client: httpx.AsyncClient, creds: TenantCreds, currency: str, **extra: Any
) -> Any:
    return await _post(
        client,
        creds,
        "/api/customers",
        {
            "externalId": f"mail-{currency}",
            "email": "wanjiru@test.local",
            "name": "Wanjiru Kamau",
            "currency": currency,
            **extra,
        },
    )


async def test_trial_started_then_converted(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    mails: InProcessQueue,
    inbox: Inbox,
) -> None:
    plan = await _plan(client, tenant, "Growth", "growth", {"KES": "12500.50"})
    customer = await _customer(client, tenant, "KES")
    sub = await _post(
        client,
        tenant,
        "/api/subscriptions",
        {"customerId": customer["id"], "planId": plan["id"], "currency": "KES", "trialDays": 14},
    )
    await mails.drain()
    [started] = inbox.take()  # the trial e-mail instead of "subscription created"
    assert started["Subject"] == "Your Growth trial with Acme Ltd has started"
    assert "wanjiru@test.local" in started["To"]
    text, html = _parts(started)
    trial_end = parse_instant(sub["trialEnd"])
    day = f"{trial_end.day} {trial_end.strftime('%b')} {trial_end.year}"
    assert f"It runs until {day}. After that you will be billed KES 12,500.50 per month" in text
    assert "<strong>KES 12,500.50</strong> per month" in html and day in html

    await run_tenant_tick(runtime, tenant.id, now=trial_end + timedelta(minutes=1))
    await mails.drain()
    messages = inbox.take()
    converted = _one(messages, "Your Growth subscription with Acme Ltd is now active")
    text, html = _parts(converted)
    assert "trial with Acme Ltd has ended and your subscription is now active" in text
    assert "You are billed KES 12,500.50 per month" in text
    assert "<strong>active</strong>" in html and "KES 12,500.50" in html
    # a second tick converts nothing again
    await run_tenant_tick(runtime, tenant.id, now=trial_end + timedelta(minutes=2))
    await mails.drain()
    assert [m["Subject"] for m in inbox.take() if "now active" in str(m["Subject"])] == []


async def test_paused_resumed_plan_changed(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    mails: InProcessQueue,
    inbox: Inbox,
) -> None:
    basic = await _plan(client, tenant, "Basic", "basic", {"UGX": "150000"})
    pro = await _plan(client, tenant, "Pro", "pro", {"UGX": "1234567"})
    customer = await _customer(client, tenant, "UGX")
    sub = await _post(
        client,
        tenant,
        "/api/subscriptions",
        {"customerId": customer["id"], "planId": basic["id"], "currency": "UGX"},
    )
    await mails.drain()
    inbox.take()
    await _post(client, tenant, f"/api/subscriptions/{sub['id']}/pause", None)
    await mails.drain()
    paused = _one(inbox.take(), "Your Basic subscription with Acme Ltd is paused")
    _parts(paused)
    await _post(client, tenant, f"/api/subscriptions/{sub['id']}/resume", None)
    await mails.drain()
    resumed = _one(inbox.take(), "Your Basic subscription with Acme Ltd is active again")
    text, html = _parts(resumed)
    assert "UGX 150,000" in text and "UGX 150,000" in html
    await _post(
        client,
        tenant,
        f"/api/subscriptions/{sub['id']}/change-plan",
        {"newPlanId": pro["id"]},
    )
    await mails.drain()
    changed = _one(inbox.take(), "Your plan with Acme Ltd has changed")
    text, html = _parts(changed)
    assert "Pro" in text and "UGX 1,234,567" in text  # zero-decimal: no ".00"
    assert "UGX 1,234,567" in html and "1,234,567.00" not in text + html


async def test_refund_issued(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    mails: InProcessQueue,
    inbox: Inbox,
) -> None:
    customer = await _customer(client, tenant, "USD")
    invoice = await _post(
        client,
        tenant,
        "/api/invoices",
        {
            "customerId": customer["id"],
            "dueDate": "2026-12-31",
            "items": [{"description": "Consulting", "quantity": 2, "unitAmount": 60}],
        },
    )
    payment = await _post(
        client,
        tenant,
        "/api/payments",
        {
            "invoiceId": invoice["id"],
            "provider": "bank_transfer",
            "amount": 120,
            "currency": "USD",
            "status": "SUCCEEDED",
        },
    )
    await mails.drain()
    inbox.take()
    await _post(
        client,
        tenant,
        f"/api/payments/{payment['id']}/refund",
        {"amount": 40, "reason": "Duplicate seat"},
    )
    await mails.drain()
    number = invoice["invoiceNumber"]
    first = _one(inbox.take(), f"Refund of USD 40.00 for invoice {number} from Acme Ltd")
    text, html = _parts(first)
    assert "Refund:  USD 40.00" in text
    assert "Paid:    USD 120.00 (Bank transfer)" in text
    assert "Reason:  Duplicate seat" in text
    assert "Refunded in total" not in text
    assert "<strong>USD 40.00</strong>" in html and "Duplicate seat" in html
    await _post(client, tenant, f"/api/payments/{payment['id']}/refund", {"amount": 20.5})
    await mails.drain()
    second = _one(inbox.take(), f"Refund of USD 20.50 for invoice {number}")
    text, _ = _parts(second)
    assert "Refunded in total: USD 60.50" in text and "Reason" not in text


async def test_payment_reminder_series_once_each(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    mails: InProcessQueue,
    inbox: Inbox,
) -> None:
    plan = await _plan(client, tenant, "Team", "team", {"KES": "4999.99"})
    customer = await _customer(client, tenant, "KES", netPaymentTerms=10)
    sub = await _post(
        client,
        tenant,
        "/api/subscriptions",
        {"customerId": customer["id"], "planId": plan["id"], "currency": "KES"},
    )
    await mails.drain()
    inbox.take()
    r = await client.get(f"/api/subscriptions/{sub['id']}", headers=tenant.key_headers)
    [invoice] = r.json()["invoices"]
    due = parse_instant(invoice["dueDate"])
    number = invoice["invoiceNumber"]
    day = f"{due.day} {due.strftime('%b')} {due.year}"

    async def tick(at: Any) -> list[EmailMessage]:
        for _ in range(2):  # the second tick at the same instant sends nothing more
            await run_tenant_tick(runtime, tenant.id, now=at)
        await mails.drain()
        return [m for m in inbox.take() if number in str(m["Subject"])]

    assert await tick(due - timedelta(days=8)) == []  # 8 days before: nothing yet
    [upcoming] = await tick(due - timedelta(days=3))
    assert upcoming["Subject"] == f"Payment reminder: invoice {number} from Acme Ltd is due {day}"
    text, html = _parts(upcoming)
    assert f"is due on {day}, in 3 days" in text and "Amount due: KES 4,999.99" in text
    assert "<strong>KES 4,999.99</strong>" in html
    [pdf] = [p for p in upcoming.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == f"invoice-{number}.pdf"
    assert await tick(due - timedelta(days=2)) == []  # the stage is sent once
    [today] = await tick(due)
    assert today["Subject"] == f"Payment due today: invoice {number} from Acme Ltd"
    [overdue] = await tick(due + timedelta(days=3))
    assert overdue["Subject"] == f"Overdue: invoice {number} from Acme Ltd was due {day}"
    assert "is now 3 days overdue" in _parts(overdue)[0]
    await _post(
        client,
        tenant,
        f"/api/invoices/{invoice['id']}/mark-paid",
        {"paymentMethod": "mpesa"},
    )
    await mails.drain()
    inbox.take()
    assert await tick(due + timedelta(days=7)) == []  # paid: the series stops
    assert await tick(due + timedelta(days=14)) == []


async def test_reminders_follow_each_customers_clock(backend: Backend) -> None:
    """A customer on a test clock gets reminders at the clock's time only, when it is
    advanced; the scheduler's tick (wall time) reminds the other customers only."""
    wall = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    async with clocked_runtime(backend.settings, wall) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        made = await api.post("/api/test-clocks", {"frozenTime": wall.isoformat()})
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "30.00"})
        on_clock = await api.customer(testClockId=made["id"], netPaymentTerms=10)
        elsewhere = await api.customer(netPaymentTerms=10)
        await api.subscription(on_clock["id"], plan["id"], "USD")
        await api.subscription(elsewhere["id"], plan["id"], "USD")
        invoices = {i.customer_id: i.id for i in await invoices_of(runtime, api.creds.id)}
        clock.set(wall + timedelta(days=7))  # 3 days before both due dates
        await run_tenant_tick(runtime, api.creds.id)
        sent = [(j["invoice_id"], j["stage"]) for j in queue.named("email.payment_reminder")]
        assert sent == [(invoices[elsewhere["id"]], "upcoming")]
        r = await client.post(
            f"/api/test-clocks/{made['id']}/advance",
            headers=api.creds.key_headers,
            json={"frozenTime": (wall + timedelta(days=7)).isoformat()},
        )
        assert r.status_code == 200, r.text
        sent = [(j["invoice_id"], j["stage"]) for j in queue.named("email.payment_reminder")]
        assert sent == [
            (invoices[elsewhere["id"]], "upcoming"),
            (invoices[on_clock["id"]], "upcoming"),
        ]
