"""Invoice numbers: format, and gapless + unique under concurrent creation, finalization
and failing transactions (PostgreSQL: real row locks across connections)."""

from __future__ import annotations

import asyncio

import httpx

from novabilling.invoices.numbering import format_number, parse_sequence
from tests.conftest import Backend, TenantCreds


def test_format_and_parse() -> None:
    assert format_number(1) == "INV-00001"
    assert format_number(99999) == "INV-99999"
    assert format_number(100000) == "INV-100000"
    assert parse_sequence("INV-00042") == 42
    assert parse_sequence("INV-2026-0001") is None
    assert parse_sequence("inv-1") is None


async def test_concurrent_creates_are_gapless_and_unique(
    client: httpx.AsyncClient, tenant: TenantCreds, backend: Backend
) -> None:
    r = await client.post(
        "/api/customers",
        headers=tenant.key_headers,
        json={"externalId": "num-1", "email": "n@test.local", "currency": "USD"},
    )
    customer_id = r.json()["id"]

    async def create(n: int) -> httpx.Response:
        body = {
            "customerId": customer_id,
            "dueDate": "2026-06-01",
            "items": [{"description": f"Item {n}", "quantity": 1, "unitAmount": n}],
        }
        if n % 7 == 0:  # these fail after taking a number: their numbers must come back
            body["items"] = [{"description": "bad", "quantity": 1, "unitAmount": 0.001}]
        return await client.post("/api/invoices", headers=tenant.key_headers, json=body)

    responses = await asyncio.gather(*(create(n) for n in range(1, 61)))
    ok = [r.json() for r in responses if r.status_code == 201]
    assert all(r.status_code in (201, 400) for r in responses)
    assert len(ok) == 60 - 60 // 7

    async def finalize(invoice_id: str) -> int:
        r = await client.post(f"/api/invoices/{invoice_id}/finalize", headers=tenant.key_headers)
        return r.status_code

    # finalize each invoice twice, concurrently: exactly one of each pair wins
    codes = await asyncio.gather(*(finalize(i["id"]) for i in ok for _ in range(2)))
    assert codes.count(201) == len(ok) and codes.count(400) == len(ok)

    r = await client.get("/api/invoices", headers=tenant.key_headers, params={"limit": 100})
    rows = r.json()["data"]
    numbers = sorted(int(i["invoiceNumber"].removeprefix("INV-")) for i in rows)
    assert numbers == list(range(1, len(ok) + 1))
    assert {i["status"] for i in rows} == {"PENDING"}
