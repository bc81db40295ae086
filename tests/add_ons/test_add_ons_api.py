"""/api/add-ons (contract add-ons.md) on SQLite and PostgreSQL: catalogue with
per-currency prices, apply (amount defaulting to the add-on's price), applied list and
removal, bad input, other tenants, missing auth."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.conftest import TenantCreds, assert_error

URL = "/api/add-ons"


async def _post(client: httpx.AsyncClient, creds: TenantCreds, path: str, body: Any) -> Any:
    r = await client.post(path, headers=creds.key_headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _add_on(client: httpx.AsyncClient, creds: TenantCreds, **body: Any) -> Any:
    body.setdefault("name", "Setup")
    body.setdefault("code", f"a{secrets.token_hex(3)}")
    body.setdefault(
        "prices", [{"currency": "usd", "amount": 49.5}, {"currency": "UGX", "amount": 25000}]
    )
    return await _post(client, creds, URL, body)


async def _customer(client: httpx.AsyncClient, creds: TenantCreds) -> str:
    body = {"externalId": f"a{secrets.token_hex(4)}", "email": "a@test.local", "currency": "USD"}
    return str((await _post(client, creds, "/api/customers", body))["id"])


async def test_catalogue(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    h = tenant.key_headers
    add_on = await _add_on(client, tenant, code="SETUP_Fee", invoiceDisplayName="Setup fee")
    assert (add_on["code"], add_on["invoiceDisplayName"], add_on["description"]) == (
        "setup_fee",
        "Setup fee",
        None,
    )
    assert [(p["currency"], p["amount"]) for p in add_on["prices"]] == [
        ("UGX", "25000"),
        ("USD", "49.5"),
    ]
    assert all(
        p["addOnId"] == add_on["id"] and set(p) == {"id", "addOnId", "currency", "amount"}
        for p in add_on["prices"]
    )
    r = await client.patch(
        f"{URL}/{add_on['id']}",
        headers=h,
        json={"name": "Onboarding", "prices": [{"currency": "KES", "amount": 1000}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Onboarding"
    assert [(p["currency"], p["amount"]) for p in r.json()["prices"]] == [("KES", "1000")]
    second = await _add_on(client, tenant)
    r = await client.get(f"{URL}?limit=1", headers=h)
    assert r.json()["meta"] == {"total": 2, "page": 1, "limit": 1, "totalPages": 2}
    assert r.json()["data"][0]["id"] == second["id"]
    r = await client.delete(f"{URL}/{second['id']}", headers=h)
    assert r.json() == {"message": "Add-on deleted"}
    assert_error(await client.get(f"{URL}/{second['id']}", headers=h), 404)


async def test_bad_input(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    h = tenant.key_headers
    existing = await _add_on(client, tenant, code="taken")
    price = [{"currency": "USD", "amount": 1}]
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"name": "x", "code": "TAKEN", "prices": price},
            "code",
            "An add-on with this code already exists",
        ),
        ({"name": "x", "code": "n1", "prices": []}, "prices", "At least one price is required"),
        (
            {"name": "x", "code": "n2", "prices": price * 2},
            "prices.1.currency",
            "Validation failed",
        ),
        (
            {"name": "x", "code": "n3", "prices": [{"currency": "USD", "amount": 1.001}]},
            "prices.0.amount",
            "Validation failed",
        ),
        (
            {"name": "x", "code": "n4", "prices": [{"currency": "USD", "amount": -1}]},
            "prices.0.amount",
            "Validation failed",
        ),
        (
            {"name": "x", "code": "n5", "prices": [{"currency": "USD"}]},
            "prices.0.amount",
            "Validation failed",
        ),
        ({"name": "x", "code": "n6"}, "prices", "Validation failed"),
        ({"code": "n7", "prices": price}, "name", "Validation failed"),
    ]
    for body, field, message in cases:
        r = await client.post(URL, headers=h, json=body)
        assert_error(r, 400)
        assert r.json()["message"] == message, (body, r.json())
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.json())
    for body, field in (({"prices": []}, "prices"), ({"code": "new"}, "property")):
        r = await client.patch(f"{URL}/{existing['id']}", headers=h, json=body)
        assert_error(r, 400)
        assert field in [e["field"] for e in r.json()["errors"]]
    r = await client.get(URL, headers=h)
    assert r.json()["meta"]["total"] == 1
    r = await client.get(f"{URL}/{existing['id']}", headers=h)
    assert len(r.json()["prices"]) == 2  # the refused PATCH changed nothing


async def test_apply_list_remove(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    h = tenant.key_headers
    add_on = await _add_on(client, tenant)
    cust = await _customer(client, tenant)
    explicit = await _post(
        client,
        tenant,
        f"{URL}/apply",
        {"addOnId": add_on["id"], "customerId": cust, "amount": "12.34", "currency": "usd"},
    )
    assert (explicit["amount"], explicit["currency"], explicit["invoiceId"]) == (
        "12.34",
        "USD",
        None,
    )
    assert set(explicit) == {
        "id",
        "addOnId",
        "customerId",
        "subscriptionId",
        "amount",
        "currency",
        "invoiceId",
        "createdAt",
    }
    priced = await _post(
        client,
        tenant,
        f"{URL}/apply",
        {"addOnId": add_on["id"], "customerId": cust, "currency": "UGX"},
    )
    assert priced["amount"] == "25000"  # the add-on's UGX price (Improve)
    for body, status, text in (
        ({"addOnId": add_on["id"], "customerId": cust, "currency": "EUR"}, 400, "amount"),
        ({"addOnId": "nope", "customerId": cust, "currency": "USD"}, 404, "Add-on not found"),
        (
            {"addOnId": add_on["id"], "customerId": "nope", "currency": "USD"},
            404,
            "Customer not found",
        ),
        (
            {"addOnId": add_on["id"], "customerId": cust, "currency": "USD", "subscriptionId": "x"},
            404,
            "Subscription not found",
        ),
        ({"addOnId": add_on["id"], "customerId": cust, "amount": 1}, 400, "currency"),
        (
            {"addOnId": add_on["id"], "customerId": cust, "amount": 1.234, "currency": "USD"},
            400,
            "amount",
        ),
    ):
        r = await client.post(f"{URL}/apply", headers=h, json=body)
        assert_error(r, status)
        if status == 400:
            assert text in [e["field"] for e in r.json()["errors"]]
        else:
            assert r.json()["message"] == text
    r = await client.get(f"{URL}/applied/list?customerId={cust}", headers=h)
    assert [a["id"] for a in r.json()["data"]] == [priced["id"], explicit["id"]]
    r = await client.get(f"{URL}/applied/list?invoiced=true", headers=h)
    assert r.json()["data"] == []
    r = await client.get(f"{URL}/applied/list?invoiced=false&limit=1", headers=h)
    assert r.json()["meta"] == {"total": 2, "page": 1, "limit": 1, "totalPages": 2}
    r = await client.delete(f"{URL}/applied/{explicit['id']}", headers=h)
    assert r.json() == {"message": "Applied add-on removed"}
    assert_error(await client.delete(f"{URL}/applied/{explicit['id']}", headers=h), 404)
    # deleting the add-on leaves its applied add-ons
    await client.delete(f"{URL}/{add_on['id']}", headers=h)
    r = await client.get(f"{URL}/applied/list", headers=h)
    assert [a["addOnId"] for a in r.json()["data"]] == [add_on["id"]]


async def test_other_tenant_and_no_auth(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    add_on = await _add_on(client, tenant)
    cust = await _customer(client, tenant)
    applied = await _post(
        client,
        tenant,
        f"{URL}/apply",
        {"addOnId": add_on["id"], "customerId": cust, "currency": "USD"},
    )
    h = other_tenant.key_headers
    assert_error(await client.get(f"{URL}/{add_on['id']}", headers=h), 404)
    assert_error(await client.patch(f"{URL}/{add_on['id']}", headers=h, json={"name": "x"}), 404)
    assert_error(await client.delete(f"{URL}/{add_on['id']}", headers=h), 404)
    assert_error(await client.delete(f"{URL}/applied/{applied['id']}", headers=h), 404)
    r = await client.post(
        f"{URL}/apply",
        headers=h,
        json={"addOnId": add_on["id"], "customerId": cust, "currency": "USD"},
    )
    assert_error(r, 404)
    assert (await client.get(f"{URL}/applied/list", headers=h)).json()["data"] == []
    for method, path in (
        ("POST", URL),
        ("GET", URL),
        ("GET", f"{URL}/{add_on['id']}"),
        ("PATCH", f"{URL}/{add_on['id']}"),
        ("DELETE", f"{URL}/{add_on['id']}"),
        ("POST", f"{URL}/apply"),
        ("GET", f"{URL}/applied/list"),
        ("DELETE", f"{URL}/applied/{applied['id']}"),
    ):
        r = await client.request(method, path, json={} if method in ("POST", "PATCH") else None)
        assert_error(r, 401)
    r = await client.get(f"{URL}/applied/list", headers=tenant.token_headers)
    assert r.json()["meta"]["total"] == 1
