"""/api/customers (contract customers.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import TenantCreds, assert_error

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CUSTOMER_KEYS = {
    "id",
    "externalId",
    "email",
    "name",
    "phone",
    "country",
    "currency",
    "netPaymentTerms",
    "metadata",
    "testClockId",
    "createdAt",
    "updatedAt",
}


def customer_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"externalId": "cus_1", "email": "ada@test.local", "currency": "NGN"}
    body.update(overrides)
    return body


async def create_customer(client: httpx.AsyncClient, creds: TenantCreds, **overrides: Any) -> Any:
    r = await client.post(
        "/api/customers", headers=creds.key_headers, json=customer_body(**overrides)
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_customer(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    body = await create_customer(
        client,
        tenant,
        name="Ada Obi",
        country="NG",
        currency="ngn",
        metadata={"tier": "gold", "nested": {"a": [1, 2]}},
        netPaymentTerms=30,
    )
    assert set(body) == CUSTOMER_KEYS
    assert body["externalId"] == "cus_1" and body["email"] == "ada@test.local"
    assert body["name"] == "Ada Obi" and body["country"] == "NG"
    assert body["currency"] == "ngn"  # stored exactly as sent
    assert body["metadata"] == {"tier": "gold", "nested": {"a": [1, 2]}}
    assert body["netPaymentTerms"] == 30
    assert TIMESTAMP.match(body["createdAt"]) and TIMESTAMP.match(body["updatedAt"])


async def test_phone_is_a_customer_field(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    """Additive optional field (not in the original contract): kept as sent, null by
    default, set and cleared by PATCH, returned by every read."""
    body = await create_customer(client, tenant, phone="+254 708-374-149")
    assert body["phone"] == "+254 708-374-149"
    h = tenant.key_headers
    assert (await client.get(f"/api/customers/{body['id']}", headers=h)).json()["phone"] == (
        "+254 708-374-149"
    )
    listed = (await client.get("/api/customers", headers=h)).json()["data"]
    assert [c["phone"] for c in listed] == ["+254 708-374-149"]
    r = await client.patch(f"/api/customers/{body['id']}", headers=h, json={"phone": "0708374149"})
    assert r.status_code == 200 and r.json()["phone"] == "0708374149"
    r = await client.patch(f"/api/customers/{body['id']}", headers=h, json={"name": "Wanjiku"})
    assert r.json()["phone"] == "0708374149"  # untouched when not sent
    r = await client.patch(f"/api/customers/{body['id']}", headers=h, json={"phone": None})
    assert r.status_code == 200 and r.json()["phone"] is None
    bare = await create_customer(client, tenant, externalId="cus_2")
    assert bare["phone"] is None


async def test_create_customer_defaults_and_backdating(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    body = await create_customer(client, tenant, email="x@foo.test")
    assert body["name"] is None and body["country"] is None
    assert body["metadata"] is None and body["netPaymentTerms"] is None
    old = await create_customer(
        client, tenant, externalId="cus_old", email="x@example.com", createdAt="2024-01-15"
    )
    assert old["createdAt"] == "2024-01-15T00:00:00.000Z"
    old2 = await create_customer(
        client, tenant, externalId="cus_old2", createdAt="2024-01-15T10:00:00.5+01:00"
    )
    assert old2["createdAt"] == "2024-01-15T09:00:00.500Z"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": None}, "email"),
        ({"externalId": ""}, "externalId"),
        ({"externalId": 12}, "externalId"),
        ({"currency": ""}, "currency"),
        ({"currency": "NGNX"}, "currency"),
        ({"name": "n" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"country": "NGAX"}, "country"),
        ({"netPaymentTerms": 366}, "netPaymentTerms"),
        ({"netPaymentTerms": -1}, "netPaymentTerms"),
        ({"netPaymentTerms": 2.5}, "netPaymentTerms"),
        ({"netPaymentTerms": "soon"}, "netPaymentTerms"),
        ({"metadata": "text"}, "metadata"),
        ({"metadata": {"blob": "x" * 17_000}}, "metadata"),
        ({"createdAt": "yesterday"}, "createdAt"),
        ({"phone": "+234"}, "phone"),
        ({"phone": "call me"}, "phone"),
        ({"phone": 254708374149}, "phone"),
        ({"phone": "+254 708 374 149 0000"}, "phone"),
    ],
)
async def test_create_customer_rejects_bad_input(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, overrides: dict[str, Any], field: str
) -> None:
    r = await client.post(
        "/api/customers", headers=shared_tenant.key_headers, json=customer_body(**overrides)
    )
    assert_error(r, 400, field)


async def test_create_customer_only_name_names_required_fields(
    client: httpx.AsyncClient, shared_tenant: TenantCreds
) -> None:
    r = await client.post("/api/customers", headers=shared_tenant.key_headers, json={"name": "Ada"})
    for field in ("externalId", "email", "currency"):
        assert_error(r, 400, field)


async def test_duplicate_external_id_conflicts_within_tenant_only(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    await create_customer(client, tenant)
    r = await client.post(
        "/api/customers", headers=tenant.key_headers, json=customer_body(email="b@test.local")
    )
    assert_error(r, 409)
    await create_customer(client, other_tenant)
    # email is not unique
    await create_customer(client, tenant, externalId="cus_2")


async def test_list_pagination_meta_and_order(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    r = await client.get("/api/customers", headers=tenant.key_headers)
    assert r.json() == {"data": [], "meta": {"total": 0, "page": 1, "limit": 20, "totalPages": 0}}
    ids = [(await create_customer(client, tenant, externalId=f"c{i}"))["id"] for i in range(5)]
    await create_customer(client, other_tenant, externalId="foreign")
    r = await client.get("/api/customers?limit=2", headers=tenant.key_headers)
    assert r.status_code == 200
    page1 = r.json()
    assert page1["meta"] == {"total": 5, "page": 1, "limit": 2, "totalPages": 3}
    r = await client.get("/api/customers/?limit=2&page=2", headers=tenant.key_headers)
    page2 = r.json()
    r = await client.get("/api/customers?limit=2&page=3", headers=tenant.key_headers)
    page3 = r.json()
    seen = [c["id"] for p in (page1, page2, page3) for c in p["data"]]
    assert seen == list(reversed(ids))  # newest first, no overlap, nothing foreign
    item = page1["data"][0]
    assert item["activeSubscriptions"] == 0 and item["totalSpent"] == 0
    assert set(item) == CUSTOMER_KEYS | {"activeSubscriptions", "totalSpent"}
    r = await client.get("/api/customers?page=9", headers=tenant.key_headers)
    assert r.json()["data"] == [] and r.json()["meta"]["total"] == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("foo=1", "property"),
        ("status=ACTIVE", "property"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=1.5", "page"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("sortBy=password", "sortBy"),
        ("sortOrder=sideways", "sortOrder"),
    ],
)
async def test_list_is_strict(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, query: str, field: str
) -> None:
    r = await client.get(f"/api/customers?{query}", headers=shared_tenant.key_headers)
    assert_error(r, 400, field)
    assert r.json()["path"] == f"/api/customers?{query}"


async def test_list_search_filters_and_sort(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    await create_customer(client, tenant, externalId="a", name="Ada Obi", email="ada@x.test")
    await create_customer(
        client, tenant, externalId="b", name="Bola", email="BOLA@ACME.test", country="KE"
    )
    await create_customer(
        client, tenant, externalId="c", name="Chidi", email="c@y.test", currency="USD"
    )
    h = tenant.key_headers

    async def names(query: str) -> list[str]:
        r = await client.get(f"/api/customers?{query}", headers=h)
        assert r.status_code == 200, r.text
        return [c["name"] for c in r.json()["data"]]

    assert await names("search=ada") == ["Ada Obi"]
    assert await names("search=acme") == ["Bola"]  # email, case-insensitive
    assert await names("search=%25") == []  # LIKE wildcards are literal
    assert await names("country=KE") == ["Bola"]
    assert await names("currency=USD") == ["Chidi"]
    assert await names("currency=usd") == []  # exact match
    assert await names("sortBy=name&sortOrder=asc") == ["Ada Obi", "Bola", "Chidi"]
    assert await names("sortBy=name") == ["Chidi", "Bola", "Ada Obi"]


async def test_get_customer_with_embeds(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    created = await create_customer(client, tenant)
    r = await client.get(f"/api/customers/{created['id']}", headers=tenant.token_headers)
    assert r.status_code == 200
    body = r.json()
    assert body["subscriptions"] == [] and body["invoices"] == []
    assert {k: body[k] for k in CUSTOMER_KEYS} == created
    r = await client.get(f"/api/customers/{created['id']}/", headers=tenant.key_headers)
    assert r.status_code == 200
    r = await client.get(f"/api/customers/{created['id']}", headers=other_tenant.key_headers)
    assert_error(r, 404)
    assert_error(await client.get("/api/customers/nonexistent_id", headers=tenant.key_headers), 404)


async def test_patch_customer(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    created = await create_customer(client, tenant, name="Ada", country="NG")
    r = await client.patch(
        f"/api/customers/{created['id']}",
        headers=tenant.key_headers,
        json={
            "email": "new@test.local",
            "name": None,
            "metadata": {"k": "v"},
            "netPaymentTerms": 0,
            "externalId": "ignored",
            "createdAt": "2020-01-01",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == CUSTOMER_KEYS
    assert body["email"] == "new@test.local" and body["name"] is None
    assert body["country"] == "NG" and body["metadata"] == {"k": "v"}
    assert body["netPaymentTerms"] == 0
    assert body["externalId"] == "cus_1" and body["createdAt"] == created["createdAt"]
    r = await client.get(f"/api/customers/{created['id']}", headers=tenant.key_headers)
    assert r.json()["email"] == "new@test.local"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": None}, "email"),
        ({"currency": None}, "currency"),
        ({"currency": "TOOLONG"}, "currency"),
        ({"name": "n" * 201}, "name"),
        ({"netPaymentTerms": 400}, "netPaymentTerms"),
        ({"phone": "12"}, "phone"),
        ({"tenantId": "x"}, "property"),
    ],
)
async def test_patch_customer_rejects_bad_input(
    client: httpx.AsyncClient, tenant: TenantCreds, payload: dict[str, Any], field: str
) -> None:
    created = await create_customer(client, tenant)
    r = await client.patch(
        f"/api/customers/{created['id']}", headers=tenant.key_headers, json=payload
    )
    assert_error(r, 400, field)


async def test_patch_other_tenant_404(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    created = await create_customer(client, tenant)
    r = await client.patch(
        f"/api/customers/{created['id']}", headers=other_tenant.key_headers, json={"name": "x"}
    )
    assert_error(r, 404)


async def test_delete_customer(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    created = await create_customer(client, tenant)
    url = f"/api/customers/{created['id']}"
    assert_error(await client.delete(url, headers=other_tenant.key_headers), 404)
    r = await client.delete(url, headers=tenant.key_headers)
    assert r.status_code == 200 and isinstance(r.json()["message"], str)
    assert_error(await client.get(url, headers=tenant.key_headers), 404)
    assert_error(await client.delete(url, headers=tenant.key_headers), 404)
    # the externalId is free again
    await create_customer(client, tenant)


@pytest.mark.parametrize("kind", ["subscriptions", "invoices", "payments"])
async def test_sub_lists(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds, kind: str
) -> None:
    created = await create_customer(client, tenant)
    r = await client.get(f"/api/customers/{created['id']}/{kind}", headers=tenant.key_headers)
    assert r.status_code == 200 and r.json() == []
    r = await client.get(f"/api/customers/{created['id']}/{kind}/", headers=tenant.key_headers)
    assert r.status_code == 200 and r.json() == []
    r = await client.get(f"/api/customers/{created['id']}/{kind}", headers=other_tenant.key_headers)
    assert_error(r, 404)
    assert_error(await client.get(f"/api/customers/nope/{kind}", headers=tenant.key_headers), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/customers"),
        ("GET", "/api/customers"),
        ("GET", "/api/customers?foo=1"),
        ("GET", "/api/customers/x"),
        ("PATCH", "/api/customers/x"),
        ("DELETE", "/api/customers/x"),
        ("GET", "/api/customers/x/subscriptions"),
        ("GET", "/api/customers/x/invoices"),
        ("GET", "/api/customers/x/payments"),
    ],
)
async def test_customers_require_auth(client: httpx.AsyncClient, method: str, path: str) -> None:
    r = await client.request(method, path, json={"bad": "body"})
    assert_error(r, 401)
    r = await client.request(
        method, path, json={}, headers={"Authorization": "Bearer sk_live_" + "0" * 64}
    )
    assert_error(r, 401)


async def _plan(client: httpx.AsyncClient, creds: TenantCreds) -> Any:
    r = await client.post(
        "/api/plans",
        headers=creds.key_headers,
        json={
            "name": "Pro",
            "code": "pro",
            "billingInterval": "MONTHLY",
            "prices": [{"currency": "USD", "amount": "10.50"}],
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _subscribe(
    client: httpx.AsyncClient, creds: TenantCreds, customer_id: str, plan_id: str, **extra: Any
) -> Any:
    r = await client.post(
        "/api/subscriptions",
        headers=creds.key_headers,
        json={"customerId": customer_id, "planId": plan_id, "currency": "usd", **extra},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_active_subscription_blocks_delete_and_is_counted(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    customer = await create_customer(client, tenant, currency="USD")
    plan = await _plan(client, tenant)
    sub = await _subscribe(client, tenant, customer["id"], plan["id"])
    h = tenant.key_headers
    r = await client.get("/api/customers", headers=h)
    assert r.json()["data"][0]["activeSubscriptions"] == 1
    r = await client.get(f"/api/customers/{customer['id']}/subscriptions", headers=h)
    assert [s["id"] for s in r.json()] == [sub["id"]]
    assert r.json()[0]["plan"]["id"] == plan["id"]
    r = await client.get(f"/api/customers/{customer['id']}", headers=h)
    assert [s["id"] for s in r.json()["subscriptions"]] == [sub["id"]]
    assert_error(await client.delete(f"/api/customers/{customer['id']}", headers=h), 400)
    # the plan is referenced: cannot be deleted, can be deactivated
    r = await client.get(f"/api/plans/{plan['id']}", headers=h)
    assert r.json()["_count"] == {"subscriptions": 1}
    assert_error(await client.delete(f"/api/plans/{plan['id']}", headers=h), 400)
    r = await client.patch(f"/api/plans/{plan['id']}", headers=h, json={"isActive": False})
    assert r.status_code == 200 and r.json()["isActive"] is False


async def test_trialing_subscription_is_deleted_with_customer(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    customer = await create_customer(client, tenant, currency="USD")
    plan = await _plan(client, tenant)
    await _subscribe(client, tenant, customer["id"], plan["id"], trialDays=14)
    h = tenant.key_headers
    r = await client.delete(f"/api/customers/{customer['id']}", headers=h)
    assert r.status_code == 200, r.text
    assert_error(await client.get(f"/api/customers/{customer['id']}", headers=h), 404)


async def _paid_invoice(
    client: httpx.AsyncClient, creds: TenantCreds, customer_id: str, currency: str, amount: str
) -> None:
    """An invoice of two units at ``amount``, marked paid."""
    h = creds.key_headers
    r = await client.post(
        "/api/invoices",
        headers=h,
        json={
            "customerId": customer_id,
            "currency": currency,
            "dueDate": "2030-01-01",
            "items": [{"description": "Work", "quantity": 2, "unitAmount": amount}],
        },
    )
    assert r.status_code == 201, r.text
    paid = await client.post(f"/api/invoices/{r.json()['id']}/mark-paid", headers=h, json={})
    assert paid.status_code == 201, paid.text


async def test_paid_invoices_total_spent_and_delete_cascades(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    customer = await create_customer(client, tenant, currency="USD")
    h = tenant.key_headers
    for amount in ("10.25", "5"):
        await _paid_invoice(client, tenant, customer["id"], "USD", amount)
    r = await client.get("/api/customers", headers=h)
    assert r.json()["data"][0]["totalSpent"] == 30.5
    r = await client.get(f"/api/customers/{customer['id']}/invoices", headers=h)
    assert len(r.json()) == 2
    r = await client.get(f"/api/customers/{customer['id']}", headers=h)
    assert len(r.json()["invoices"]) == 2
    r = await client.get(f"/api/customers/{customer['id']}/payments", headers=h)
    assert r.status_code == 200 and len(r.json()) == 2
    invoice_ids = [i["id"] for i in (await client.get("/api/invoices", headers=h)).json()["data"]]
    # invoices (even paid ones) no longer block: they go with the customer
    r = await client.delete(f"/api/customers/{customer['id']}", headers=h)
    assert r.status_code == 200, r.text
    for invoice_id in invoice_ids:
        assert_error(await client.get(f"/api/invoices/{invoice_id}", headers=h), 404)
    r = await client.get("/api/payments", headers=h)
    assert r.status_code == 200 and r.json()["data"] == []


async def test_total_spent_adds_paid_invoices_of_every_currency(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    """The list reads each customer's PAID totals per currency as one joined text
    (``USD:2050,NGN:100050``) and adds them, currencies mixed (customers.md)."""
    customer = await create_customer(client, tenant, currency="USD")
    h = tenant.key_headers
    for currency, amount in (("USD", "10.25"), ("NGN", "500.25"), ("USD", "1")):
        await _paid_invoice(client, tenant, customer["id"], currency, amount)
    r = await client.get("/api/customers", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["totalSpent"] == 1023.0  # 22.50 USD + 1,000.50 NGN
