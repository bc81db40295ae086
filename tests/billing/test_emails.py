"""Customer emails go out from the ``emails`` queue through a real SMTP server (aiosmtpd),
with the invoice PDF attached; a dead SMTP server never blocks billing."""

from __future__ import annotations

import asyncio
import email
import io
import socket
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from email.policy import default as default_policy

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from pypdf import PdfReader

from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.notifications.mailer import SmtpMailer
from novabilling.runtime import Runtime
from novabilling.worker import build_handlers
from tests.conftest import TenantCreds


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.messages.append(email.message_from_bytes(raw, policy=default_policy))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
async def mail_runtime(runtime: Runtime) -> AsyncIterator[InProcessQueue]:
    """The runtime's jobs run in process (both backends) with fast retries."""
    original = runtime.jobs
    queue = InProcessQueue(build_handlers(runtime), backoff_base_seconds=0.01)
    runtime.jobs = queue
    try:
        yield queue
    finally:
        await queue.close()
        runtime.jobs = original


async def _invoice(client: httpx.AsyncClient, tenant: TenantCreds) -> dict[str, object]:
    r = await client.post(
        "/api/customers",
        headers=tenant.key_headers,
        json={
            "externalId": "mail-1",
            "email": "ada@test.local",
            "name": "Ada Obi",
            "currency": "NGN",
        },
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/invoices",
        headers=tenant.key_headers,
        json={
            "customerId": r.json()["id"],
            "dueDate": "2026-05-01",
            "items": [{"description": "Hosting", "quantity": 3, "unitAmount": 12500}],
        },
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_finalize_sends_invoice_with_pdf(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    mail_runtime: InProcessQueue,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    runtime.mailer = SmtpMailer(f"smtp://127.0.0.1:{port}?timeout=5")
    inv = await _invoice(client, tenant)
    r = await client.post(f"/api/invoices/{inv['id']}/finalize", headers=tenant.key_headers)
    assert r.status_code == 201, r.text
    await mail_runtime.drain()
    [message] = inbox.messages
    assert message["To"] == "Ada Obi <ada@test.local>" or "ada@test.local" in message["To"]
    assert message["Subject"] == f"Invoice {inv['invoiceNumber']} from Acme Ltd"
    [pdf] = [
        part for part in message.iter_attachments() if part.get_content_type() == "application/pdf"
    ]
    assert pdf.get_filename() == f"invoice-{inv['invoiceNumber']}.pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.get_content())).pages)
    assert "Hosting" in text and "NGN 37,500.00" in text
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and "NGN 37,500.00" in body.get_content()
    detail = (await client.get(f"/api/invoices/{inv['id']}", headers=tenant.key_headers)).json()
    assert detail["pdfUrl"] == f"/uploads/invoices/invoice-{inv['id']}.pdf"

    # mark-paid -> receipt with the paid invoice attached and the method in words
    r = await client.post(
        f"/api/invoices/{inv['id']}/mark-paid",
        headers=tenant.key_headers,
        json={"paymentMethod": "bank_transfer"},
    )
    assert r.status_code == 201
    await mail_runtime.drain()
    receipt = inbox.messages[-1]
    assert receipt["Subject"].startswith(f"Receipt for invoice {inv['invoiceNumber']}")
    plain = receipt.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "Method:  Bank transfer" in plain.get_content()
    assert "bank_transfer" not in plain.get_content()
    [paid_pdf] = [
        part for part in receipt.iter_attachments() if part.get_content_type() == "application/pdf"
    ]
    assert paid_pdf.get_filename() == f"invoice-{inv['invoiceNumber']}.pdf"
    paid_text = "".join(
        p.extract_text() for p in PdfReader(io.BytesIO(paid_pdf.get_content())).pages
    )
    assert "PAID" in paid_text and "Amount paid" in paid_text
    r = await client.post(
        f"/api/invoices/{inv['id']}/send-email",
        headers=tenant.key_headers,
        json={"email": "accounts@test.local"},
    )
    assert r.status_code == 201
    await mail_runtime.drain()
    assert inbox.messages[-1]["To"] == "accounts@test.local"
    assert len(inbox.messages) == 3


async def test_dead_smtp_never_blocks_billing(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    mail_runtime: InProcessQueue,
) -> None:
    runtime.mailer = SmtpMailer(f"smtp://127.0.0.1:{_free_port()}?timeout=1")
    inv = await _invoice(client, tenant)
    r = await asyncio.wait_for(
        client.post(f"/api/invoices/{inv['id']}/finalize", headers=tenant.key_headers), 5
    )
    assert r.status_code == 201 and r.json()["status"] == "PENDING"
    await mail_runtime.drain()
    assert mail_runtime.failed == 1  # retried, then given up; the invoice stays finalized
    detail = (await client.get(f"/api/invoices/{inv['id']}", headers=tenant.key_headers)).json()
    assert detail["status"] == "PENDING"
