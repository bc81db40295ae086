"""/api/plans and plan prices (contract plans.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import TenantCreds, assert_error

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def plan_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Pro",
        "code": "pro_monthly",
        "billingInterval": "MONTHLY",
        "prices": [{"currency": "usd", "amount": 29.99}, {"currency": "UGX", "amount": 25000}],
    }
    body.update(overrides)
    return body


async def create_plan(client: httpx.AsyncClient, creds: TenantCreds, **overrides: Any) -> Any:
    r = await client.post("/api/plans", headers=creds.key_headers, json=plan_body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_plan_returns_plan_with_canonical_prices(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    plan = await create_plan(client, tenant)
    assert plan["name"] == "Pro" and plan["code"] == "pro_monthly"
    assert plan["billingInterval"] == "MONTHLY"
    assert plan["billingTiming"] == "IN_ARREARS"
    assert plan["features"] == [] and plan["isActive"] is True
    assert plan["description"] is None and plan["netPaymentTerms"] is None
    assert plan["minimumCommitment"] is None and plan["progressiveBillingThreshold"] is None
    assert plan["invoiceGracePeriodDays"] == 0
    assert TIMESTAMP.match(plan["createdAt"]) and TIMESTAMP.match(plan["updatedAt"])
    prices = {p["currency"]: p for p in plan["prices"]}
    assert prices["USD"]["amount"] == "29.99"
    assert prices["UGX"]["amount"] == "25000"
    for price in plan["prices"]:
        assert price["planId"] == plan["id"] and price["isActive"] is True
        assert TIMESTAMP.match(price["createdAt"])


async def test_create_plan_echoes_optional_values(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    plan = await create_plan(
        client,
        tenant,
        description="For teams",
        billingTiming="IN_ADVANCE",
        features=["SSO", "Audit log"],
        netPaymentTerms=30,
        invoiceGracePeriodDays=5,
        progressiveBillingThreshold="1000.50",
        prices=[{"currency": "NGN", "amount": "25000.00"}, {"currency": "TND", "amount": 1.5}],
    )
    assert plan["billingTiming"] == "IN_ADVANCE"
    assert plan["features"] == ["SSO", "Audit log"]
    assert plan["netPaymentTerms"] == 30 and plan["invoiceGracePeriodDays"] == 5
    assert plan["progressiveBillingThreshold"] == "1000.5"
    assert {p["currency"]: p["amount"] for p in plan["prices"]} == {"NGN": "25000", "TND": "1.5"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"code": "Invalid-Code!"}, "code"),
        ({"code": ""}, "code"),
        ({"billingInterval": "BIWEEKLY"}, "billingInterval"),
        ({"billingTiming": "LATER"}, "billingTiming"),
        ({"description": "d" * 501}, "description"),
        ({"features": "SSO"}, "features"),
        ({"netPaymentTerms": 366}, "netPaymentTerms"),
        ({"netPaymentTerms": 1.5}, "netPaymentTerms"),
        ({"invoiceGracePeriodDays": 91}, "invoiceGracePeriodDays"),
        ({"progressiveBillingThreshold": -1}, "progressiveBillingThreshold"),
        ({"progressiveBillingThreshold": "1.23456"}, "progressiveBillingThreshold"),
        ({"unknownKey": 1}, "property"),
        ({"prices": [{"currency": "USD", "amount": 1, "x": 1}]}, "property"),
        ({"prices": [{"currency": "UGX", "amount": 10.5}]}, "prices.0.amount"),
        ({"prices": [{"currency": "USD", "amount": 1.234}]}, "prices.0.amount"),
        ({"prices": [{"currency": "USD", "amount": -1}]}, "prices.0.amount"),
        ({"prices": [{"currency": "USD", "amount": "NaN"}]}, "prices.0.amount"),
        ({"prices": [{"currency": "USD", "amount": "abc"}]}, "prices.0.amount"),
        ({"prices": [{"currency": "USD", "amount": True}]}, "prices.0.amount"),
        ({"prices": [{"currency": "USDX", "amount": 1}]}, "prices.0.currency"),
        ({"prices": [{"currency": "", "amount": 1}]}, "prices.0.currency"),
        ({"prices": [{"currency": "USD"}]}, "prices.0.amount"),
        (
            {"prices": [{"currency": "usd", "amount": 1}, {"currency": "USD", "amount": 2}]},
            "prices.1.currency",
        ),
    ],
)
async def test_create_plan_rejects_bad_input(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, overrides: dict[str, Any], field: str
) -> None:
    r = await client.post(
        "/api/plans", headers=shared_tenant.key_headers, json=plan_body(**overrides)
    )
    assert_error(r, 400, field)


async def test_create_plan_missing_required_fields(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await client.post("/api/plans", headers=tenant.key_headers, json={"name": "Only"})
    assert_error(r, 400, "code")
    assert_error(r, 400, "billingInterval")
    r = await client.post("/api/plans", headers=tenant.key_headers, content=b"{not json")
    assert_error(r, 400)


async def test_duplicate_code_conflicts_within_tenant_only(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    await create_plan(client, tenant)
    r = await client.post("/api/plans", headers=tenant.key_headers, json=plan_body())
    assert_error(r, 409)
    await create_plan(client, other_tenant)  # same code, other tenant: fine


async def test_list_plans_bare_array_newest_first_with_active_filter(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    first = await create_plan(client, tenant, code="basic")
    second = await create_plan(client, tenant, code="pro")
    await create_plan(client, other_tenant, code="foreign")
    r = await client.patch(
        f"/api/plans/{first['id']}", headers=tenant.key_headers, json={"isActive": False}
    )
    assert r.status_code == 200
    r = await client.get("/api/plans/", headers=tenant.token_headers)
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list)
    assert [p["id"] for p in body] == [second["id"], first["id"]]
    assert all(len(p["prices"]) == 2 for p in body)
    r = await client.get("/api/plans?isActive=true", headers=tenant.key_headers)
    assert [p["id"] for p in r.json()] == [second["id"]]
    r = await client.get("/api/plans?isActive=no", headers=tenant.key_headers)
    assert [p["id"] for p in r.json()] == [first["id"]]


async def test_get_plan_with_count_and_cross_tenant_404(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    plan = await create_plan(client, tenant)
    r = await client.get(f"/api/plans/{plan['id']}", headers=tenant.key_headers)
    assert r.status_code == 200
    body = r.json()
    assert body["_count"] == {"subscriptions": 0}
    assert {p["amount"] for p in body["prices"]} == {"29.99", "25000"}
    r = await client.get(f"/api/plans/{plan['id']}/", headers=tenant.key_headers)
    assert r.status_code == 200
    assert_error(
        await client.get(f"/api/plans/{plan['id']}", headers=other_tenant.key_headers), 404
    )
    assert_error(await client.get("/api/plans/nonexistent_id", headers=tenant.key_headers), 404)


async def test_patch_plan(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    plan = await create_plan(client, tenant)
    r = await client.patch(
        f"/api/plans/{plan['id']}",
        headers=tenant.key_headers,
        json={
            "name": "Pro+",
            "description": "better",
            "billingInterval": "YEARLY",
            "billingTiming": "IN_ADVANCE",
            "features": ["a"],
            "netPaymentTerms": 14,
            "invoiceGracePeriodDays": 3,
            "progressiveBillingThreshold": 99.9,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Pro+" and body["description"] == "better"
    assert body["billingInterval"] == "YEARLY" and body["billingTiming"] == "IN_ADVANCE"
    assert body["features"] == ["a"] and body["netPaymentTerms"] == 14
    assert body["invoiceGracePeriodDays"] == 3 and body["progressiveBillingThreshold"] == "99.9"
    assert body["code"] == "pro_monthly" and len(body["prices"]) == 2
    r = await client.get(f"/api/plans/{plan['id']}", headers=tenant.key_headers)
    assert r.json()["name"] == "Pro+"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"code": "new_code"}, "property"),
        ({"foo": 1}, "property"),
        ({"name": None}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"isActive": "maybe"}, "isActive"),
        ({"billingInterval": "BIWEEKLY"}, "billingInterval"),
        ({"invoiceGracePeriodDays": -1}, "invoiceGracePeriodDays"),
        ({"progressiveBillingThreshold": "x"}, "progressiveBillingThreshold"),
    ],
)
async def test_patch_plan_rejects_bad_input(
    client: httpx.AsyncClient, tenant: TenantCreds, payload: dict[str, Any], field: str
) -> None:
    plan = await create_plan(client, tenant)
    r = await client.patch(f"/api/plans/{plan['id']}", headers=tenant.key_headers, json=payload)
    assert_error(r, 400, field)


async def test_patch_plan_other_tenant_404(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    plan = await create_plan(client, tenant)
    r = await client.patch(
        f"/api/plans/{plan['id']}", headers=other_tenant.key_headers, json={"name": "x"}
    )
    assert_error(r, 404)


async def test_delete_plan_removes_plan_and_prices(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    plan = await create_plan(client, tenant)
    price_id = plan["prices"][0]["id"]
    assert_error(
        await client.delete(f"/api/plans/{plan['id']}", headers=other_tenant.key_headers), 404
    )
    r = await client.delete(f"/api/plans/{plan['id']}", headers=tenant.key_headers)
    assert r.status_code == 200 and isinstance(r.json()["message"], str)
    assert_error(await client.get(f"/api/plans/{plan['id']}", headers=tenant.key_headers), 404)
    r = await client.patch(
        f"/api/plans/{plan['id']}/prices/{price_id}", headers=tenant.key_headers, json={}
    )
    assert_error(r, 404)
    assert_error(await client.delete(f"/api/plans/{plan['id']}", headers=tenant.key_headers), 404)


async def test_add_price(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    plan = await create_plan(client, tenant, prices=[{"currency": "USD", "amount": "49.99"}])
    r = await client.post(
        f"/api/plans/{plan['id']}/prices",
        headers=tenant.key_headers,
        json={"currency": "ngn", "amount": 25000},
    )
    assert r.status_code == 201, r.text
    price = r.json()
    assert price["currency"] == "NGN" and price["amount"] == "25000"
    assert price["planId"] == plan["id"] and price["isActive"] is True
    r = await client.get(f"/api/plans/{plan['id']}", headers=tenant.key_headers)
    assert {p["currency"]: p["amount"] for p in r.json()["prices"]} == {
        "USD": "49.99",
        "NGN": "25000",
    }
    r = await client.post(
        f"/api/plans/{plan['id']}/prices",
        headers=tenant.key_headers,
        json={"currency": "Ngn", "amount": 1},
    )
    assert_error(r, 409)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"currency": "UGX", "amount": 10.5}, "amount"),
        ({"currency": "USD", "amount": 1.234}, "amount"),
        ({"currency": "USD", "amount": -5}, "amount"),
        ({"currency": "USD", "amount": "NaN"}, "amount"),
        ({"currency": "USD"}, "amount"),
        ({"amount": 5}, "currency"),
        ({"currency": "DOLR", "amount": 5}, "currency"),
        ({"currency": "USD", "amount": 5, "isActive": False}, "property"),
    ],
)
async def test_add_price_rejects_bad_input(
    client: httpx.AsyncClient, tenant: TenantCreds, payload: dict[str, Any], field: str
) -> None:
    plan = await create_plan(client, tenant, prices=[])
    r = await client.post(
        f"/api/plans/{plan['id']}/prices", headers=tenant.key_headers, json=payload
    )
    assert_error(r, 400, field)


async def test_add_price_unknown_or_foreign_plan_404(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    plan = await create_plan(client, tenant)
    body = {"currency": "EUR", "amount": 10}
    r = await client.post(
        f"/api/plans/{plan['id']}/prices", headers=other_tenant.key_headers, json=body
    )
    assert_error(r, 404)
    r = await client.post("/api/plans/nope/prices", headers=tenant.key_headers, json=body)
    assert_error(r, 404)


async def test_update_price(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    plan = await create_plan(client, tenant, prices=[{"currency": "USD", "amount": 10}])
    url = f"/api/plans/{plan['id']}/prices/{plan['prices'][0]['id']}"
    r = await client.patch(url, headers=tenant.key_headers, json={"amount": "49.990", "x": 1})
    assert r.status_code == 200, r.text
    assert r.json()["amount"] == "49.99"
    r = await client.patch(url, headers=tenant.key_headers, json={"currency": "EUR"})
    assert r.status_code == 200 and r.json()["amount"] == "49.99"
    assert r.json()["currency"] == "USD"
    assert_error(
        await client.patch(url, headers=tenant.key_headers, json={"amount": 1.234}), 400, "amount"
    )
    assert_error(
        await client.patch(url, headers=tenant.key_headers, json={"amount": -1}), 400, "amount"
    )
    assert_error(
        await client.patch(url, headers=tenant.key_headers, json={"amount": "x"}), 400, "amount"
    )


async def test_price_must_belong_to_plan(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    one = await create_plan(client, tenant, code="one")
    two = await create_plan(client, tenant, code="two")
    wrong = f"/api/plans/{two['id']}/prices/{one['prices'][0]['id']}"
    assert_error(await client.patch(wrong, headers=tenant.key_headers, json={"amount": 1}), 404)
    assert_error(await client.delete(wrong, headers=tenant.key_headers), 404)
    right = f"/api/plans/{one['id']}/prices/{one['prices'][0]['id']}"
    assert_error(await client.delete(right, headers=other_tenant.key_headers), 404)
    assert_error(
        await client.delete(f"/api/plans/{one['id']}/prices/nope", headers=tenant.key_headers), 404
    )


async def test_delete_price(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    plan = await create_plan(client, tenant)
    usd = next(p for p in plan["prices"] if p["currency"] == "USD")
    r = await client.delete(
        f"/api/plans/{plan['id']}/prices/{usd['id']}", headers=tenant.key_headers
    )
    assert r.status_code == 200 and isinstance(r.json()["message"], str)
    r = await client.get(f"/api/plans/{plan['id']}", headers=tenant.key_headers)
    assert [p["currency"] for p in r.json()["prices"]] == ["UGX"]
    # the currency is free again
    r = await client.post(
        f"/api/plans/{plan['id']}/prices",
        headers=tenant.key_headers,
        json={"currency": "USD", "amount": 5},
    )
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/plans"),
        ("GET", "/api/plans"),
        ("GET", "/api/plans/x"),
        ("PATCH", "/api/plans/x"),
        ("DELETE", "/api/plans/x"),
        ("POST", "/api/plans/x/prices"),
        ("PATCH", "/api/plans/x/prices/y"),
        ("DELETE", "/api/plans/x/prices/y"),
    ],
)
async def test_plans_require_auth(client: httpx.AsyncClient, method: str, path: str) -> None:
    r = await client.request(method, path, json={"bad": "body"})
    assert_error(r, 401)
    r = await client.request(
        method, path, json={}, headers={"Authorization": "Bearer sk_live_" + "0" * 64}
    )
    assert_error(r, 401)
