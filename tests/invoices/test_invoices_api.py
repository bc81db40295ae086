"""/api/invoices (contract invoices.md) on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from novabilling.runtime import Runtime
from tests.conftest import TenantCreds, assert_error

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def make_customer(
    client: httpx.AsyncClient, creds: TenantCreds, currency: str = "USD", **extra: Any
) -> dict[str, Any]:
    body = {
        "externalId": f"c-{id(extra)}-{currency}",
        "email": "ada@test.local",
        "name": "Ada Obi",
        "currency": currency,
        **extra,
    }
    r = await client.post("/api/customers", headers=creds.key_headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def invoice_body(customer_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customerId": customer_id,
        "dueDate": "2026-04-01",
        "items": [
            {"description": "Consulting", "quantity": 2, "unitAmount": 150.25},
            {"description": "Setup", "quantity": 1, "unitAmount": "99.5"},
        ],
    }
    body.update(overrides)
    return body


async def create_invoice(
    client: httpx.AsyncClient, creds: TenantCreds, customer_id: str, **overrides: Any
) -> dict[str, Any]:
    r = await client.post(
        "/api/invoices", headers=creds.key_headers, json=invoice_body(customer_id, **overrides)
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_create_manual_invoice(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    customer = await make_customer(client, tenant)
    inv = await create_invoice(client, tenant, customer["id"])
    assert inv["status"] == "DRAFT"
    assert inv["amount"] == "400"  # 2 x 150.25 + 99.5
    assert inv["currency"] == "USD"
    assert inv["invoiceNumber"] == "INV-00001"
    assert inv["customer"]["id"] == customer["id"]
    assert inv["subscriptionId"] is None and inv["paidAt"] is None
    assert inv["dueDate"] == "2026-04-01T00:00:00.000Z"
    assert TIMESTAMP.match(inv["createdAt"]) and TIMESTAMP.match(inv["updatedAt"])
    assert inv["metadata"] == {
        "items": [
            {"description": "Consulting", "quantity": 2, "unitAmount": 150.25},
            {"description": "Setup", "quantity": 1, "unitAmount": 99.5},
        ]
    }
    second = await create_invoice(client, tenant, customer["id"])
    assert second["invoiceNumber"] == "INV-00002"


async def test_create_uses_customer_currency_and_zero_decimal(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    customer = await make_customer(client, tenant, currency="ugx")
    inv = await create_invoice(
        client,
        tenant,
        customer["id"],
        items=[{"description": "Data", "quantity": 3, "unitAmount": 25000}],
    )
    assert inv["currency"] == "UGX" and inv["amount"] == "75000"
    r = await client.post(
        "/api/invoices",
        headers=tenant.key_headers,
        json=invoice_body(
            customer["id"], items=[{"description": "x", "quantity": 1, "unitAmount": 1.5}]
        ),
    )
    assert_error(r, 400, "items.0.unitAmount")


async def test_create_validation(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    customer = await make_customer(client, tenant)
    cid = customer["id"]
    bad = [
        (
            {"customerId": cid, "items": [{"description": "a", "quantity": 1, "unitAmount": 1}]},
            "dueDate",
        ),
        (
            invoice_body(cid, items=[{"description": "Consulting", "amount": 500, "quantity": 1}]),
            "property",
        ),
        (
            invoice_body(cid, items=[{"description": "", "quantity": 1, "unitAmount": 1}]),
            "items.0.description",
        ),
        (
            invoice_body(cid, items=[{"description": "a", "quantity": 0, "unitAmount": 1}]),
            "items.0.quantity",
        ),
        (
            invoice_body(cid, items=[{"description": "a", "quantity": 1, "unitAmount": -1}]),
            "items.0.unitAmount",
        ),
        (invoice_body(cid, status="VOIDED"), "status"),
        (invoice_body(cid, extra=1), "property"),
        (invoice_body(cid, dueDate="tomorrow"), "dueDate"),
    ]
    for body, field in bad:
        r = await client.post("/api/invoices", headers=tenant.key_headers, json=body)
        assert_error(r, 400, field)


async def test_supplied_number_and_conflict(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    customer = await make_customer(client, tenant)
    imported = await create_invoice(
        client,
        tenant,
        customer["id"],
        invoiceNumber="INV-00041",
        status="PAID",
        paidAt="2026-01-02T03:04:05Z",
        createdAt="2026-01-01",
    )
    assert imported["invoiceNumber"] == "INV-00041" and imported["status"] == "PAID"
    assert imported["paidAt"] == "2026-01-02T03:04:05.000Z"
    assert imported["createdAt"] == "2026-01-01T00:00:00.000Z"
    nxt = await create_invoice(client, tenant, customer["id"])
    assert nxt["invoiceNumber"] == "INV-00042"
    r = await client.post(
        "/api/invoices",
        headers=tenant.key_headers,
        json=invoice_body(customer["id"], invoiceNumber="INV-00041"),
    )
    assert_error(r, 409)


async def test_unknown_customer_and_subscription(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    r = await client.post(
        "/api/invoices", headers=tenant.key_headers, json=invoice_body("nonexistent_id")
    )
    assert_error(r, 404)
    theirs = await make_customer(client, other_tenant)
    r = await client.post(
        "/api/invoices", headers=tenant.key_headers, json=invoice_body(theirs["id"])
    )
    assert_error(r, 404)
    mine = await make_customer(client, tenant)
    r = await client.post(
        "/api/invoices",
        headers=tenant.key_headers,
        json=invoice_body(mine["id"], subscriptionId="nope"),
    )
    assert_error(r, 404)


async def test_auth_required(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    assert_error(await client.get("/api/invoices"), 401)
    assert_error(await client.post("/api/invoices", json={"bad": 1}), 401)
    assert_error(await client.post("/api/invoices/x/finalize"), 401)
    assert_error(await client.get("/api/invoices/x/pdf"), 401)


async def test_list_filters_and_strict_params(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    a = await make_customer(client, tenant)
    b = await make_customer(client, tenant, currency="EUR")
    first = await create_invoice(client, tenant, a["id"], createdAt="2026-01-10T10:00:00Z")
    second = await create_invoice(client, tenant, b["id"], createdAt="2026-02-10T10:00:00Z")
    third = await create_invoice(
        client, tenant, a["id"], status="PENDING", createdAt="2026-03-10T10:00:00Z"
    )
    await create_invoice(client, other_tenant, (await make_customer(client, other_tenant))["id"])

    async def ids(**query: Any) -> list[str]:
        r = await client.get("/api/invoices", headers=tenant.key_headers, params=query)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["data"]]

    assert await ids() == [third["id"], second["id"], first["id"]]
    assert await ids(status="DRAFT") == [second["id"], first["id"]]
    assert await ids(customerId=a["id"]) == [third["id"], first["id"]]
    assert await ids(dateFrom="2026-02-01", dateTo="2026-02-10") == [second["id"]]
    assert await ids(dateTo="2026-02-10T09:00:00Z") == [first["id"]]
    r = await client.get(
        "/api/invoices", headers=tenant.key_headers, params={"limit": 2, "page": 2}
    )
    body = r.json()
    assert body["meta"] == {"total": 3, "page": 2, "limit": 2, "totalPages": 2}
    assert [i["id"] for i in body["data"]] == [first["id"]]
    assert body["data"][0]["customer"]["id"] == a["id"]
    for query, field in (
        ({"foo": "1"}, "property"),
        ({"limit": "101"}, "limit"),
        ({"status": "VOIDED"}, "status"),
        ({"dateFrom": "x"}, "dateFrom"),
    ):
        assert_error(
            await client.get("/api/invoices", headers=tenant.key_headers, params=query), 400, field
        )


async def test_get_detail_and_isolation(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    customer = await make_customer(client, tenant)
    inv = await create_invoice(client, tenant, customer["id"])
    r = await client.get(f"/api/invoices/{inv['id']}", headers=tenant.token_headers)
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == inv["id"] and body["customer"]["id"] == customer["id"]
    assert body["subscription"] is None and body["payments"] == []
    assert_error(
        await client.get(f"/api/invoices/{inv['id']}", headers=other_tenant.key_headers), 404
    )
    assert_error(await client.get("/api/invoices/nonexistent_id", headers=tenant.key_headers), 404)
    for action in ("finalize", "void", "mark-paid", "checkout", "send-email"):
        r = await client.post(
            f"/api/invoices/{inv['id']}/{action}", headers=other_tenant.key_headers
        )
        assert_error(r, 404)


async def test_finalize_void_mark_paid(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    customer = await make_customer(client, tenant)
    inv = await create_invoice(client, tenant, customer["id"])
    url = f"/api/invoices/{inv['id']}"
    r = await client.post(f"{url}/finalize", headers=tenant.key_headers)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "PENDING" and r.json()["customer"]["id"] == customer["id"]
    assert r.json()["dueDate"] == inv["dueDate"]  # a manual invoice keeps its due date
    assert_error(await client.post(f"{url}/finalize", headers=tenant.key_headers), 400)

    r = await client.post(
        f"{url}/mark-paid", headers=tenant.key_headers, json={"paymentMethod": "bank_transfer"}
    )
    assert r.status_code == 201, r.text
    paid = r.json()
    assert paid["status"] == "PAID" and TIMESTAMP.match(paid["paidAt"])
    assert_error(await client.post(f"{url}/mark-paid", headers=tenant.key_headers), 400)
    assert_error(await client.post(f"{url}/void", headers=tenant.key_headers), 400)
    detail = (await client.get(url, headers=tenant.key_headers)).json()
    assert [(p["provider"], p["amount"], p["status"]) for p in detail["payments"]] == [
        ("bank_transfer", "400", "SUCCEEDED")
    ]
    usage = await client.get("/api/tenants/me/usage", headers=tenant.token_headers)
    assert usage.json()["totalInvoices"] == 1 and usage.json()["totalRevenue"] == "400"

    other = await create_invoice(client, tenant, customer["id"])
    ourl = f"/api/invoices/{other['id']}"
    for _ in range(2):  # voiding again is allowed
        r = await client.post(f"{ourl}/void", headers=tenant.key_headers)
        assert r.status_code == 201 and r.json()["status"] == "CANCELED"
    assert_error(
        await client.post(f"{ourl}/mark-paid", headers=tenant.key_headers, content=b"not json"), 400
    )
    assert_error(await client.post(f"{ourl}/finalize", headers=tenant.key_headers), 400)
    assert_error(await client.post(f"{ourl}/checkout", headers=tenant.key_headers), 400)


async def test_checkout_without_provider(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    customer = await make_customer(client, tenant)
    inv = await create_invoice(client, tenant, customer["id"])
    r = await client.post(
        f"/api/invoices/{inv['id']}/checkout",
        headers=tenant.key_headers,
        json={"callbackUrl": "https://shop.test/back"},
    )
    assert_error(r, 400)


async def test_pdf(client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime) -> None:
    customer = await make_customer(client, tenant)
    inv = await create_invoice(client, tenant, customer["id"])
    r = await client.get(f"/api/invoices/{inv['id']}/pdf", headers=tenant.key_headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'inline; filename="invoice-{inv["id"]}.pdf"'
    assert int(r.headers["content-length"]) == len(r.content)
    import io

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(r.content)).pages)
    assert "INV-00001" in text and "Consulting" in text and "USD 400.00" in text
    detail = (await client.get(f"/api/invoices/{inv['id']}", headers=tenant.key_headers)).json()
    assert detail["pdfUrl"] == f"/uploads/invoices/invoice-{inv['id']}.pdf"
    stored = runtime.settings.data_dir / "uploads" / "invoices" / f"invoice-{inv['id']}.pdf"
    assert stored.read_bytes()[:5] == b"%PDF-"
    assert_error(await client.get("/api/invoices/nope/pdf", headers=tenant.key_headers), 404)


async def test_send_email(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    customer = await make_customer(client, tenant)
    inv = await create_invoice(client, tenant, customer["id"])
    r = await client.post(
        f"/api/invoices/{inv['id']}/send-email",
        headers=tenant.key_headers,
        json={"email": "boss@test.local"},
    )
    assert r.status_code == 201 and "boss@test.local" in r.json()["message"]
    r = await client.post(f"/api/invoices/{inv['id']}/send-email", headers=tenant.key_headers)
    assert r.status_code == 201 and "ada@test.local" in r.json()["message"]
    r = await client.post(
        f"/api/invoices/{inv['id']}/send-email", headers=tenant.key_headers, json={"email": ""}
    )
    assert r.status_code == 201 and "ada@test.local" in r.json()["message"]


@pytest.mark.parametrize("address", ["not-an-email", "ada@", "a b@test.local", 42, ["x@y.io"]])
async def test_send_email_refuses_what_is_not_an_address(
    client: httpx.AsyncClient,
    shared_tenant: TenantCreds,
    shared_made: dict[str, Any],
    address: object,
) -> None:
    """400 at once, instead of a message the mail server refuses after every retry."""
    if "invoice" not in shared_made:
        customer = await make_customer(client, shared_tenant)
        shared_made["invoice"] = await create_invoice(client, shared_tenant, customer["id"])
    inv = shared_made["invoice"]
    r = await client.post(
        f"/api/invoices/{inv['id']}/send-email",
        headers=shared_tenant.key_headers,
        json={"email": address},
    )
    assert_error(r, 400, "email")
