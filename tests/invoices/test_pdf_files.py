"""GET/HEAD /uploads/invoices/invoice-{invoiceId}.pdf (contract README §1): the PDF stored by
``GET /api/invoices/{id}/pdf``, served at its ``pdfUrl`` without auth; 404 in the contract's
error body when missing; no listing, no way out of the directory. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import secrets
from pathlib import Path
from typing import Any

import httpx
from pypdf import PdfReader

from novabilling.runtime import Runtime
from tests.conftest import TenantCreds, assert_error


async def _stored_pdf(client: httpx.AsyncClient, tenant: TenantCreds) -> tuple[Any, bytes]:
    h = tenant.key_headers
    customer = await client.post(
        "/api/customers",
        headers=h,
        json={
            "externalId": f"c-{secrets.token_hex(3)}",
            "email": "a@test.local",
            "currency": "USD",
        },
    )
    assert customer.status_code == 201, customer.text
    invoice = await client.post(
        "/api/invoices",
        headers=h,
        json={
            "customerId": customer.json()["id"],
            "currency": "USD",
            "dueDate": "2030-01-01",
            "items": [{"description": "Consulting", "quantity": 3, "unitAmount": "40"}],
        },
    )
    assert invoice.status_code == 201, invoice.text
    rendered = await client.get(f"/api/invoices/{invoice.json()['id']}/pdf", headers=h)
    assert rendered.status_code == 200 and rendered.content.startswith(b"%PDF")
    after = await client.get(f"/api/invoices/{invoice.json()['id']}", headers=h)
    return after.json(), rendered.content


async def test_pdf_url_is_served_without_auth(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    invoice, data = await _stored_pdf(client, tenant)
    url = invoice["pdfUrl"]
    assert url == f"/uploads/invoices/invoice-{invoice['id']}.pdf"
    r = await client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.content == data
    assert int(r.headers["content-length"]) == len(data)
    assert "X-RateLimit-Limit" not in r.headers  # static: not rate limited (§9)
    text = PdfReader(io.BytesIO(r.content)).pages[0].extract_text()
    assert invoice["invoiceNumber"] in text and "Consulting" in text
    # a credential, even a wrong one, changes nothing
    bogus = await client.get(url, headers={"Authorization": "Bearer sk_live_" + "0" * 64})
    assert bogus.status_code == 200 and bogus.content == data
    head = await client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "application/pdf"
    assert int(head.headers["content-length"]) == len(data)


async def test_missing_pdf_is_a_contract_404(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    invoice, _ = await _stored_pdf(client, tenant)
    path = f"/uploads/invoices/invoice-{invoice['id']}x.pdf"
    r = await client.get(path)
    assert_error(r, 404)
    assert r.json()["path"] == path
    assert (await client.head(path)).status_code == 404
    # an invoice whose PDF was never rendered has no file yet
    assert_error(await client.get("/uploads/invoices/invoice-cnotrendered0000000000000.pdf"), 404)


async def test_no_listing_and_no_path_traversal(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    invoice, _ = await _stored_pdf(client, tenant)
    data_dir = runtime.settings.data_dir
    secret = b"%PDF-1.4 not an invoice"
    (data_dir / "uploads" / "secret.pdf").write_bytes(secret)
    (data_dir / "uploads" / "invoices" / "invoice-adir.pdf").mkdir(exist_ok=True)
    (data_dir / "uploads" / "invoices" / "notes.pdf").write_bytes(secret)
    (data_dir / "uploads" / "invoices" / f"invoice-{invoice['id']}.pdf.bak").write_bytes(secret)
    for path in (
        "/uploads",
        "/uploads/invoices",
        "/uploads/invoices/",
        "/uploads/invoices/notes.pdf",
        "/uploads/invoices/invoice-adir.pdf",  # a directory, not a file
        f"/uploads/invoices/invoice-{invoice['id']}.pdf.bak",
        f"/uploads/invoices/INVOICE-{invoice['id']}.PDF",
        "/uploads/invoices/invoice-.pdf",
        "/uploads/invoices/..%2Fsecret.pdf",
        "/uploads/invoices/%2e%2e%2fsecret.pdf",
        "/uploads/invoices/invoice-..%2F..%2Fsecret.pdf",
        "/uploads/invoices/invoice-..%2F..%2Fcentral.db",
        "/uploads/invoices/invoice-%2e%2e%5c%2e%2e%5csecret.pdf",
        "/uploads/invoices/invoice-x%00.pdf",
        "/uploads/secret.pdf",
    ):
        r = await client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert_error(r, 404)
        assert secret not in r.content


def test_concurrent_writers_of_one_pdf_never_fail(tmp_path: Path) -> None:
    """The API's render and the background render job may store the same invoice's PDF
    at once in one process: each write has its own temporary file."""
    from concurrent.futures import ThreadPoolExecutor

    from novabilling.invoices.documents import _write_atomic

    target = tmp_path / "uploads" / "invoices" / "invoice-x.pdf"
    bodies = [b"%PDF-" + bytes([65 + i]) * 50_000 for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(20):
            list(pool.map(lambda body: _write_atomic(target, body), bodies))
    assert target.read_bytes() in bodies
    assert [p.name for p in target.parent.iterdir()] == ["invoice-x.pdf"]  # no leftovers
