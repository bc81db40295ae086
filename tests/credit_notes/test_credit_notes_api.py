"""/api/credit-notes (contract credit-notes.md) on SQLite and PostgreSQL: create with the
checks in order, totals never above the invoice, list/get embeds, PATCH of drafts,
finalize, void, outbound events, the PDF, and the refund outcome of a note on a PAID
invoice through the provider (Paystack simulator)."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from novabilling.invoices.lifecycle import CHARGE_JOB
from novabilling.kit.jobs import QUEUE_PAYMENTS
from novabilling.payments.models import Payment, Refund
from novabilling.runtime import Runtime
from novabilling.simulators import paystack as paystack_sim
from novabilling.webhooks import outbound
from tests.billing.support import RecordingQueue
from tests.conftest import TenantCreds, assert_error
from tests.payments.helpers import configure, make_invoice, paystack, use_inprocess_jobs
from tests.payments.test_charge import _save
from tests.webhooks.helpers import point_webhooks_at_test_url

URL = "/api/credit-notes"


async def _note(
    client: httpx.AsyncClient, h: dict[str, str], invoice: dict[str, Any], **body: Any
) -> httpx.Response:
    base = {
        "invoiceId": invoice["id"],
        "customerId": invoice["customerId"],
        "amount": 10,
        "currency": invoice["currency"].lower(),
        "reason": "DUPLICATE",
    }
    return await client.post(URL, headers=h, json={**base, **body})


async def test_create_list_get_update_finalize_void(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    real, queue = runtime.jobs, RecordingQueue()
    runtime.jobs = queue
    try:
        await _lifecycle(client, tenant, queue)
    finally:
        runtime.jobs = real


async def _lifecycle(client: httpx.AsyncClient, tenant: TenantCreds, queue: RecordingQueue) -> None:
    h = tenant.key_headers
    await point_webhooks_at_test_url(client, tenant)  # unsubscribed tenants queue nothing
    invoice = await make_invoice(client, h, currency="NGN", amount="100.50")
    r = await _note(client, h, invoice, amount="40.25", metadata={"ticket": 7})
    assert r.status_code == 201, r.text
    note = r.json()
    assert {k: note[k] for k in ("amount", "currency", "reason", "status", "metadata")} == {
        "amount": "40.25",
        "currency": "NGN",
        "reason": "DUPLICATE",
        "status": "DRAFT",
        "metadata": {"ticket": 7},
    }
    assert note["invoice"] == {
        "id": invoice["id"],
        "invoiceNumber": invoice["invoiceNumber"],
        "amount": "100.5",
    }
    assert set(note["customer"]) == {"id", "name", "email"}
    assert note["customerId"] == invoice["customerId"] and note["refundedAmount"] == "0"

    # 40.25 + 60.25 = 100.50: exactly the invoice; one minor unit more is refused
    r = await _note(client, h, invoice, amount="60.26", reason="OTHER")
    assert_error(r, 400)
    assert r.json()["message"] == "Total credit notes (100.51) would exceed invoice amount (100.5)"
    second = (await _note(client, h, invoice, amount="60.25", reason="OTHER")).json()
    assert second["status"] == "DRAFT"

    # PATCH a draft: the total is re-checked without the note itself
    r = await client.patch(f"{URL}/{note['id']}", headers=h, json={"amount": "40.26"})
    assert_error(r, 400)
    assert r.json()["message"] == "Total credit notes would exceed invoice amount"
    r = await client.patch(
        f"{URL}/{note['id']}", headers=h, json={"amount": 30, "reason": "OTHER", "metadata": None}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["amount"], r.json()["reason"], r.json()["metadata"]) == ("30", "OTHER", None)
    assert set(r.json()["invoice"]) == {"id", "invoiceNumber", "amount"}

    r = await client.post(f"{URL}/{note['id']}/finalize", headers=h)
    assert r.status_code == 201 and r.json()["status"] == "FINALIZED"
    assert_error(await client.post(f"{URL}/{note['id']}/finalize", headers=h), 400)
    r = await client.patch(f"{URL}/{note['id']}", headers=h, json={"amount": 1})
    assert_error(r, 400)
    assert r.json()["message"] == "Only draft credit notes can be updated"

    got = (await client.get(f"{URL}/{note['id']}", headers=tenant.token_headers)).json()
    assert got["invoice"] == {
        "id": invoice["id"],
        "invoiceNumber": invoice["invoiceNumber"],
        "amount": "100.5",
        "currency": "NGN",
        "status": "PENDING",
    }
    listed = (await client.get(URL, headers=h)).json()
    assert [n["id"] for n in listed["data"]] == [second["id"], note["id"]]
    assert listed["meta"] == {"total": 2, "page": 1, "limit": 20, "totalPages": 1}
    assert set(listed["data"][0]["invoice"]) == {"id", "invoiceNumber", "amount", "currency"}
    for query, ids in (
        ({"status": "FINALIZED"}, [note["id"]]),
        ({"invoiceId": invoice["id"], "status": "DRAFT"}, [second["id"]]),
        ({"customerId": "nobody"}, []),
    ):
        found = (await client.get(URL, headers=h, params=query)).json()["data"]
        assert [n["id"] for n in found] == ids
    assert_error(await client.get(URL, headers=h, params={"status": "BOGUS"}), 400, "status")

    r = await client.post(f"{URL}/{second['id']}/void", headers=h)
    assert r.status_code == 201 and r.json()["status"] == "VOIDED"
    r = await client.post(f"{URL}/{second['id']}/void", headers=h)
    assert_error(r, 400)
    assert r.json()["message"] == "Credit note is already voided"
    # a voided note no longer counts: 70.50 is left on the invoice
    assert (await _note(client, h, invoice, amount="70.5")).status_code == 201

    events = [(d["event"], d["data"]) for d in queue.named(outbound.DELIVER)]
    mine = [(e, d) for e, d in events if e.startswith("credit_note.")]
    assert [e for e, _ in mine] == [
        "credit_note.created",
        "credit_note.created",
        "credit_note.finalized",
        "credit_note.voided",
        "credit_note.created",
    ]
    assert mine[0][1] == {
        "creditNoteId": note["id"],
        "invoiceId": invoice["id"],
        "customerId": invoice["customerId"],
        "amount": 40.25,
        "currency": "NGN",
        "reason": "DUPLICATE",
    }
    assert mine[2][1]["amount"] == 30 and "reason" not in mine[2][1]


async def test_bad_input_other_tenant_and_auth(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    h = tenant.key_headers
    invoice = await make_invoice(client, h, currency="NGN", amount=50)
    other_invoice = await make_invoice(client, h, currency="NGN", amount=50)
    for body, field in (
        ({"amount": -1}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"reason": "BAD"}, "reason"),
        ({"currency": "usd"}, "currency"),
        ({"currency": "TOOLONG"}, "currency"),
        ({"status": "PAID"}, "status"),
        ({"createdAt": "yesterday"}, "createdAt"),
        ({"invoiceId": ""}, "invoiceId"),
        ({"surprise": 1}, "property"),
    ):
        assert_error(await _note(client, h, invoice, **body), 400, field)
    r = await _note(client, h, invoice, invoiceId="nonexistent_id")
    assert_error(r, 404)
    assert r.json()["message"] == "Invoice not found"
    r = await _note(client, h, invoice, customerId="nonexistent_id")
    assert_error(r, 404)
    assert r.json()["message"] == "Customer not found"
    r = await _note(client, h, invoice, customerId=other_invoice["customerId"])
    assert_error(r, 400)
    assert r.json()["message"] == "Invoice does not belong to this customer"
    r = await _note(client, h, invoice, amount="50.01")
    assert_error(r, 400)
    assert r.json()["message"] == "Credit note amount cannot exceed invoice amount"
    assert (await client.get(URL, headers=h)).json()["data"] == []  # nothing changed

    note = (await _note(client, h, invoice)).json()
    o = other_tenant.key_headers
    assert_error(await _note(client, o, invoice), 404)
    for method, path in (
        ("get", f"{URL}/{note['id']}"),
        ("patch", f"{URL}/{note['id']}"),
        ("post", f"{URL}/{note['id']}/finalize"),
        ("post", f"{URL}/{note['id']}/void"),
        ("post", f"{URL}/{note['id']}/refund"),
        ("get", f"{URL}/{note['id']}/pdf"),
    ):
        kwargs: dict[str, Any] = {"json": {}} if method == "patch" else {}
        r = await client.request(method, path, headers=o, **kwargs)
        assert_error(r, 404)
        assert r.json()["message"] == "Credit note not found"
        assert_error(await client.request(method, path, **kwargs), 401)
    assert_error(await client.get(URL), 401)
    assert_error(await client.post(URL, json={}), 401)
    assert (await client.get(URL, headers=o)).json()["data"] == []
    for body, field in (({"amount": None}, "amount"), ({"reason": None}, "reason")):
        r = await client.patch(f"{URL}/{note['id']}", headers=h, json=body)
        assert_error(r, 400, field)
    assert (await client.get(f"{URL}/{note['id']}", headers=h)).json()["amount"] == "10"


async def _payments(runtime: Runtime, tenant_id: str, invoice_id: str) -> list[Payment]:
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        rows = await session.scalars(select(Payment).where(Payment.invoice_id == invoice_id))
        return list(rows.all())


async def test_refund_of_a_note_on_a_paid_invoice(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    sim = paystack(runtime)
    h = tenant.key_headers
    await configure(client, h)
    invoice = await make_invoice(client, h, amount=2500)
    note = (await _note(client, h, invoice, amount="400.5")).json()
    r = await client.post(f"{URL}/{note['id']}/refund", headers=h)
    assert_error(r, 400)
    assert r.json()["message"] == "Only finalized credit notes can be refunded"
    await client.post(f"{URL}/{note['id']}/finalize", headers=h)
    r = await client.post(f"{URL}/{note['id']}/refund", headers=h)
    assert_error(r, 400)
    assert r.json()["message"] == "Only credit notes of paid invoices can be refunded"

    await _save(runtime, tenant.id, invoice["customerId"], paystack_sim.AUTH_SUCCESS)
    data = {"tenant_id": tenant.id, "invoice_id": invoice["id"]}
    await queue.enqueue(QUEUE_PAYMENTS, CHARGE_JOB, data)
    await queue.join()
    assert (await client.get(f"/api/invoices/{invoice['id']}", headers=h)).json()["status"] == (
        "PAID"
    )

    r = await client.post(f"{URL}/{note['id']}/refund", headers=h)
    assert r.status_code == 201, r.text
    assert (r.json()["refundedAmount"], r.json()["status"]) == ("400.5", "FINALIZED")
    assert r.json()["refundedAt"] is not None
    [payment] = await _payments(runtime, tenant.id, invoice["id"])
    assert (payment.refunded_minor, payment.amount_minor) == (40_050, 250_000)
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        [refund] = (await session.scalars(select(Refund))).all()
    assert refund.amount_minor == 40_050 and refund.provider_refund_id
    assert len(sim.refunds) == 1

    r = await client.post(f"{URL}/{note['id']}/refund", headers=h)
    assert_error(r, 400)
    assert r.json()["message"] == "Credit note is already refunded"
    r = await client.post(f"{URL}/{note['id']}/void", headers=h)
    assert_error(r, 400)
    assert len(sim.refunds) == 1


async def test_pdf_of_a_credit_note(
    client: httpx.AsyncClient, tenant: TenantCreds, tmp_path: Path
) -> None:
    h = tenant.key_headers
    invoice = await make_invoice(client, h, currency="NGN", amount="1234.5")
    note = (await _note(client, h, invoice, amount="234.5", reason="ORDER_CHANGE")).json()
    r = await client.get(f"{URL}/{note['id']}/pdf", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(r.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in (
        "CREDIT NOTE",
        f"Credit for invoice {invoice['invoiceNumber']} (Order change)",
        "Total credited",
        "234.50",
        "DRAFT",
    ):
        assert expected in text, text
    assert "Due" not in text and "Amount due" not in text
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed: the PDF text was checked above")
    pdf = tmp_path / "note.pdf"
    pdf.write_bytes(r.content)
    command = ["pdftoppm", "-png", "-r", "50", str(pdf), str(tmp_path / "page")]
    await asyncio.to_thread(subprocess.run, command, check=True)
    assert list(tmp_path.glob("page*.png"))


async def _paid_invoice(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, amount: int
) -> dict[str, Any]:
    """A PENDING NGN invoice paid by an automatic Paystack charge."""
    queue = use_inprocess_jobs(runtime)
    paystack(runtime)
    h = tenant.key_headers
    await configure(client, h)
    invoice = await make_invoice(client, h, amount=amount)
    await _save(runtime, tenant.id, invoice["customerId"], paystack_sim.AUTH_SUCCESS)
    data = {"tenant_id": tenant.id, "invoice_id": invoice["id"]}
    await queue.enqueue(QUEUE_PAYMENTS, CHARGE_JOB, data)
    await queue.join()
    r = await client.get(f"/api/invoices/{invoice['id']}", headers=h)
    assert r.json()["status"] == "PAID"
    return invoice


async def test_credit_a_note_to_a_wallet(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    other_tenant: TenantCreds,
    runtime: Runtime,
) -> None:
    h = tenant.key_headers
    invoice = await _paid_invoice(client, tenant, runtime, 2500)
    note = (await _note(client, h, invoice, amount="400.5")).json()
    path = f"{URL}/{note['id']}/credit-wallet"
    r = await client.post(path, headers=h)
    assert_error(r, 400)
    assert r.json()["message"] == "Only finalized credit notes can be credited"
    await client.post(f"{URL}/{note['id']}/finalize", headers=h)
    r = await client.post(path, headers=h)
    assert_error(r, 400)
    assert r.json()["message"] == "The customer has no active wallet in NGN"

    async def wallet(customer_id: str, **extra: Any) -> dict[str, Any]:
        body = {"customerId": customer_id, "currency": "NGN", **extra}
        created = await client.post("/api/wallets", headers=h, json=body)
        assert created.status_code == 201, created.text
        result: dict[str, Any] = created.json()
        return result

    stranger = await make_invoice(client, h, amount=10)
    theirs = await wallet(stranger["customerId"])
    r = await client.post(path, headers=h, json={"walletId": theirs["id"]})
    assert_error(r, 400)
    assert r.json()["message"] == "Wallet belongs to another customer"
    r = await client.post(path, headers=h, json={"walletId": "nonexistent_id"})
    assert_error(r, 404)
    assert_error(await client.post(path, headers=h, json={"walletId": 5}), 400, "walletId")
    assert_error(await client.post(path, headers=other_tenant.key_headers), 404)
    assert_error(await client.post(path), 401)

    # 1 credit = 2.00 NGN: 400.50 NGN is 200.25 credits
    mine = await wallet(invoice["customerId"], rateAmount=2)
    r = await client.post(path, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["creditedAmount"], body["creditedWalletId"]) == ("400.5", mine["id"])
    assert body["creditedAt"] is not None and body["refundedAmount"] == "0"
    after = (await client.get(f"/api/wallets/{mine['id']}", headers=h)).json()
    assert (after["creditsBalance"], after["balance"]) == ("200.25", "400.5")
    txs = (await client.get(f"/api/wallets/{mine['id']}/transactions", headers=h)).json()
    [tx] = txs["data"]
    assert (tx["transactionType"], tx["transactionStatus"], tx["creditAmount"]) == (
        "INBOUND",
        "GRANTED",
        "200.25",
    )
    assert tx["metadata"] == {"creditNoteId": note["id"]}

    # one outcome per note
    r = await client.post(path, headers=h)
    assert_error(r, 400)
    assert r.json()["message"] == "Credit note is already credited to a wallet"
    r = await client.post(f"{URL}/{note['id']}/refund", headers=h)
    assert_error(r, 400)
    assert_error(await client.post(f"{URL}/{note['id']}/void", headers=h), 400)
    again = (await client.get(f"/api/wallets/{mine['id']}", headers=h)).json()
    assert again["creditsBalance"] == "200.25"
    pdf = await client.get(f"{URL}/{note['id']}/pdf", headers=h)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Credited to the customer's prepaid wallet." in text
