"""/api/wallets (contract wallets.md) on SQLite and PostgreSQL: create with paid and
granted credits (the purchase invoiced), top-up / void / terminate, lists, and bad
input, other tenants and missing auth."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.conftest import TenantCreds, assert_error
from tests.payments.helpers import configure

URL = "/api/wallets"


async def _customer(client: httpx.AsyncClient, creds: TenantCreds) -> dict[str, Any]:
    r = await client.post(
        "/api/customers",
        headers=creds.key_headers,
        json={
            "externalId": f"w_{secrets.token_hex(5)}",
            "email": "wallet@test.local",
            "name": "Wallet Owner",
            "currency": "USD",
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _wallet(
    client: httpx.AsyncClient, creds: TenantCreds, status: int = 201, **body: Any
) -> dict[str, Any]:
    if "customerId" not in body:
        body["customerId"] = (await _customer(client, creds))["id"]
    body.setdefault("currency", "usd")
    r = await client.post(URL, headers=creds.key_headers, json=body)
    assert r.status_code == status, r.text
    return r.json()


async def _transactions(
    client: httpx.AsyncClient, creds: TenantCreds, wallet_id: str, query: str = ""
) -> dict[str, Any]:
    r = await client.get(f"{URL}/{wallet_id}/transactions{query}", headers=creds.key_headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_create_with_paid_and_granted_credits(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    customer = await _customer(client, tenant)
    wallet = await _wallet(
        client,
        tenant,
        customerId=customer["id"],
        name="Prepaid",
        paidCredits=100,
        grantedCredits=50,
        metadata={"k": "v"},
    )
    assert wallet["currency"] == "USD" and wallet["status"] == "ACTIVE"
    assert wallet["rateAmount"] == "1"
    assert (wallet["creditsBalance"], wallet["balance"]) == ("150", "150")
    assert (wallet["consumedCredits"], wallet["consumedAmount"]) == ("0", "0")
    assert wallet["customer"]["id"] == customer["id"] and wallet["name"] == "Prepaid"
    assert wallet["expirationAt"] is None and wallet["terminatedAt"] is None
    page = await _transactions(client, tenant, wallet["id"])
    # newest first: the purchase was recorded after the grant
    kinds = [(t["transactionStatus"], t["transactionType"], t["status"]) for t in page["data"]]
    assert kinds == [("PURCHASED", "INBOUND", "SETTLED"), ("GRANTED", "INBOUND", "SETTLED")]
    purchased, granted = page["data"]
    assert (purchased["creditAmount"], purchased["amount"]) == ("100", "100")
    assert granted["invoiceId"] is None and granted["metadata"] == {"k": "v"}
    # the purchase is invoiced: 100 credits at 1 USD, PENDING
    r = await client.get(f"/api/invoices/{purchased['invoiceId']}", headers=tenant.key_headers)
    assert r.status_code == 200, r.text
    invoice = r.json()
    assert (invoice["amount"], invoice["currency"], invoice["status"]) == ("100", "USD", "PENDING")
    assert invoice["customerId"] == customer["id"]


async def test_rate_and_free_purchase(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    wallet = await _wallet(
        client, tenant, currency="kes", rateAmount="2.5", paidCredits=10.5, grantedCredits=0.12345
    )
    # 10.5 + 0.1235 (4 places, half-up) credits at 2.5 KES
    assert (wallet["creditsBalance"], wallet["balance"], wallet["rateAmount"]) == (
        "10.6235",
        "26.5588",
        "2.5",
    )
    [purchased] = (
        await _transactions(client, tenant, wallet["id"], "?transactionStatus=PURCHASED")
    )["data"]
    r = await client.get(f"/api/invoices/{purchased['invoiceId']}", headers=tenant.key_headers)
    assert r.json()["amount"] == "26.25"  # 10.5 x 2.5
    free = await _wallet(client, tenant, paidCredits=20, invoicePaidCredits=False)
    [tx] = (await _transactions(client, tenant, free["id"]))["data"]
    assert tx["transactionStatus"] == "PURCHASED" and tx["invoiceId"] is None
    r = await client.get(
        f"/api/invoices?customerId={free['customerId']}", headers=tenant.key_headers
    )
    assert r.status_code == 200 and r.json()["data"] == []


async def test_create_bad_input(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    customer = (await _customer(client, tenant))["id"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"currency": "USD"}, "customerId"),
        ({"customerId": customer}, "currency"),
        ({"customerId": customer, "currency": "USD", "rateAmount": 0}, "rateAmount"),
        ({"customerId": customer, "currency": "USD", "grantedCredits": -1}, "grantedCredits"),
        ({"customerId": customer, "currency": "USD", "paidCredits": "x"}, "paidCredits"),
        ({"customerId": customer, "currency": "XYZ"}, "currency"),
        ({"customerId": customer, "currency": "USD", "expirationAt": "soon"}, "expirationAt"),
        ({"customerId": customer, "currency": "USD", "bogus": 1}, "property"),
    ]
    for body, field in cases:
        r = await client.post(URL, headers=tenant.key_headers, json=body)
        assert_error(r, 400, field)
    r = await client.post(
        URL, headers=tenant.key_headers, json={"customerId": "nope", "currency": "USD"}
    )
    assert_error(r, 404)
    r = await client.get(URL, headers=tenant.key_headers)
    assert r.json()["meta"]["total"] == 0  # nothing was created


async def test_currency_the_providers_cannot_charge(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    await configure(client, tenant.key_headers)  # paystack: NGN GHS ZAR KES USD XOF
    customer = (await _customer(client, tenant))["id"]
    r = await client.post(
        URL, headers=tenant.key_headers, json={"customerId": customer, "currency": "EUR"}
    )
    assert_error(r, 400, "currency")
    assert "EUR" in r.json()["errors"][0]["message"]
    await _wallet(client, tenant, customerId=customer, currency="NGN")


async def test_top_up_void_order_and_errors(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    wallet = await _wallet(client, tenant, grantedCredits=40)
    wid = wallet["id"]
    r = await client.post(
        f"{URL}/transactions",
        headers=tenant.key_headers,
        json={
            "walletId": wid,
            "paidCredits": 5,
            "grantedCredits": 10,
            "voidedCredits": 30,
            "metadata": {"by": "ops"},
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert [t["transactionStatus"] for t in body["transactions"]] == [
        "VOIDED",
        "GRANTED",
        "PURCHASED",
    ]
    assert [t["transactionType"] for t in body["transactions"]] == [
        "OUTBOUND",
        "INBOUND",
        "INBOUND",
    ]
    assert all(t["metadata"] == {"by": "ops"} for t in body["transactions"])
    assert body["wallet"]["creditsBalance"] == "25"  # 40 - 30 + 10 + 5
    assert (body["wallet"]["consumedCredits"], body["wallet"]["consumedAmount"]) == ("30", "30")
    assert body["wallet"]["customer"]["id"] == wallet["customerId"]
    for payload, field in (
        ({"walletId": wid, "voidedCredits": 25.0001}, "voidedCredits"),
        ({"walletId": wid, "grantedCredits": -2}, "grantedCredits"),
        ({"grantedCredits": 2}, "walletId"),
    ):
        r = await client.post(f"{URL}/transactions", headers=tenant.key_headers, json=payload)
        assert_error(r, 400, field)
    r = await client.post(
        f"{URL}/transactions", headers=tenant.key_headers, json={"walletId": wid, "paidCredits": 0}
    )
    assert_error(r, 400)
    r = await client.post(
        f"{URL}/transactions",
        headers=tenant.key_headers,
        json={"walletId": "nope", "paidCredits": 1},
    )
    assert_error(r, 404)
    r = await client.get(f"{URL}/{wid}", headers=tenant.key_headers)
    assert r.json()["creditsBalance"] == "25"  # the refused requests changed nothing
    page = await _transactions(client, tenant, wid, "?transactionType=OUTBOUND")
    assert [t["creditAmount"] for t in page["data"]] == ["30"]


async def test_terminate_and_patch(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    wallet = await _wallet(client, tenant, grantedCredits=12, rateAmount=2)
    wid = wallet["id"]
    r = await client.patch(
        f"{URL}/{wid}",
        headers=tenant.key_headers,
        json={"name": "Renamed", "expirationAt": "2030-01-01", "metadata": {"a": 1}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Renamed" and r.json()["expirationAt"] == "2030-01-01T00:00:00.000Z"
    r = await client.patch(f"{URL}/{wid}", headers=tenant.key_headers, json={"expirationAt": None})
    assert r.json()["expirationAt"] is None and r.json()["metadata"] == {"a": 1}
    r = await client.patch(f"{URL}/{wid}", headers=tenant.key_headers, json={"currency": "EUR"})
    assert_error(r, 400, "property")
    r = await client.delete(f"{URL}/{wid}", headers=tenant.key_headers)
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["status"] == "TERMINATED" and ended["terminatedAt"] is not None
    assert (ended["creditsBalance"], ended["balance"]) == ("0", "0")
    assert ended["consumedCredits"] == "0"  # termination is not consumption
    [void] = (await _transactions(client, tenant, wid, "?transactionStatus=VOIDED"))["data"]
    assert (void["creditAmount"], void["amount"]) == ("12", "24")
    assert void["metadata"] == {"reason": "wallet_terminated"}
    assert_error(await client.delete(f"{URL}/{wid}", headers=tenant.key_headers), 400)
    r = await client.patch(f"{URL}/{wid}", headers=tenant.key_headers, json={"name": "x"})
    assert_error(r, 400)
    r = await client.post(
        f"{URL}/transactions",
        headers=tenant.key_headers,
        json={"walletId": wid, "grantedCredits": 1},
    )
    assert_error(r, 400)
    r = await client.get(f"{URL}/{wid}", headers=tenant.key_headers)
    assert r.status_code == 200 and r.json()["status"] == "TERMINATED"


async def test_lists_filters_and_pages(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    customer = (await _customer(client, tenant))["id"]
    first = await _wallet(client, tenant, customerId=customer, grantedCredits=1)
    second = await _wallet(client, tenant, customerId=customer, currency="KES")
    other = await _wallet(client, tenant)
    await client.delete(f"{URL}/{second['id']}", headers=tenant.key_headers)
    r = await client.get(f"{URL}?customerId={customer}", headers=tenant.key_headers)
    assert [w["id"] for w in r.json()["data"]] == [second["id"], first["id"]]
    assert all(w["customer"]["id"] == customer for w in r.json()["data"])
    r = await client.get(f"{URL}?status=TERMINATED", headers=tenant.key_headers)
    assert [w["id"] for w in r.json()["data"]] == [second["id"]]
    r = await client.get(f"{URL}?limit=2&page=2&junk=1", headers=tenant.key_headers)
    assert r.json()["meta"] == {"total": 3, "page": 2, "limit": 2, "totalPages": 2}
    assert [w["id"] for w in r.json()["data"]] == [first["id"]]
    r = await client.get(f"{URL}?limit=0", headers=tenant.key_headers)
    assert r.json()["meta"]["limit"] == 20 and other["id"] in [w["id"] for w in r.json()["data"]]
    page = await _transactions(client, tenant, second["id"], "?status=SETTLED&limit=1")
    assert page["meta"]["total"] == 0
    page = await _transactions(client, tenant, first["id"], "?transactionType=INBOUND")
    assert page["meta"]["total"] == 1


async def test_other_tenant_and_no_auth(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    wallet = await _wallet(client, tenant, grantedCredits=5)
    wid = wallet["id"]
    h = other_tenant.key_headers
    assert_error(await client.get(f"{URL}/{wid}", headers=h), 404)
    assert_error(await client.patch(f"{URL}/{wid}", headers=h, json={"name": "x"}), 404)
    assert_error(await client.delete(f"{URL}/{wid}", headers=h), 404)
    assert_error(await client.get(f"{URL}/{wid}/transactions", headers=h), 404)
    r = await client.post(
        f"{URL}/transactions", headers=h, json={"walletId": wid, "voidedCredits": 5}
    )
    assert_error(r, 404)
    r = await client.post(
        URL, headers=h, json={"customerId": wallet["customerId"], "currency": "USD"}
    )
    assert_error(r, 404)
    assert (await client.get(URL, headers=h)).json()["data"] == []
    for method, path in (
        ("POST", URL),
        ("GET", URL),
        ("GET", f"{URL}/{wid}"),
        ("PATCH", f"{URL}/{wid}"),
        ("DELETE", f"{URL}/{wid}"),
        ("POST", f"{URL}/transactions"),
        ("GET", f"{URL}/{wid}/transactions"),
    ):
        r = await client.request(method, path, json={} if method in ("POST", "PATCH") else None)
        assert_error(r, 401)
    r = await client.get(f"{URL}/{wid}", headers=tenant.token_headers)
    assert r.json()["creditsBalance"] == "5"  # untouched
