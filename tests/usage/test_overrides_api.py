"""/api/plan-overrides (contract plan-overrides.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests.conftest import TenantCreds, assert_error
from tests.usage.support import UsageApi

URL = "/api/plan-overrides"


async def setup(client: httpx.AsyncClient, tenant: TenantCreds) -> tuple[UsageApi, Any, Any, Any]:
    api = UsageApi(client, tenant)
    plan = await api.plan(prices={"USD": 49, "UGX": 100000})
    metric = await api.metric("SUM", code="gb", fieldName="gb")
    charge = await api.charge(plan["id"], metric["id"], "STANDARD", properties={"amount": 2})
    customer = await api.customer()
    return api, plan, charge, customer


@pytest.fixture
async def shared_setup(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, shared_made: dict[str, Any]
) -> tuple[UsageApi, Any, Any, Any]:
    """``setup`` made once per module and backend in the shared tenant, for the tests whose
    requests are all refused."""
    if "setup" not in shared_made:
        shared_made["setup"] = (await setup(client, shared_tenant))[1:]
    plan, charge, customer = shared_made["setup"]
    return UsageApi(client, shared_tenant), plan, charge, customer


async def test_create_get_patch_delete(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    api, plan, charge, customer = await setup(client, tenant)
    created = await api.post(
        URL,
        {
            "customerId": customer["id"],
            "planId": plan["id"],
            "overriddenPrices": [
                {"currency": "usd", "amount": 39.5},
                {"currency": "UGX", "amount": "90000"},
            ],
            "overriddenMinimumCommitment": 150.5,
            "overriddenCharges": [
                {"chargeId": charge["id"], "properties": {"amount": "1.5", "note": "vip"}}
            ],
            "metadata": {"deal": "Q4"},
        },
    )
    assert created["customerId"] == customer["id"] and created["planId"] == plan["id"]
    assert created["overriddenPrices"] == [
        {"currency": "USD", "amount": 39.5},
        {"currency": "UGX", "amount": 90000},
    ]
    assert created["overriddenMinimumCommitment"] == "150.5"
    assert created["overriddenCharges"] == [
        {"chargeId": charge["id"], "properties": {"amount": "1.5", "note": "vip"}}
    ]
    assert created["metadata"] == {"deal": "Q4"}
    assert "customer" not in created and "plan" not in created

    detail = await api.get(f"{URL}/{created['id']}")
    assert detail["customer"] == {
        "id": customer["id"],
        "name": "Meter Reader",
        "email": "meter@test.local",
    }
    assert detail["plan"] == {"id": plan["id"], "name": plan["name"], "code": plan["code"]}

    r = await client.patch(
        f"{URL}/{created['id']}",
        headers=api.headers,
        json={
            "overriddenMinimumCommitment": None,
            "overriddenPrices": None,
            "overriddenCharges": [
                {
                    "chargeId": charge["id"],
                    "graduatedRanges": [{"fromValue": 0, "toValue": None, "perUnitAmount": 1}],
                },
            ],
        },
    )
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["overriddenMinimumCommitment"] is None and patched["overriddenPrices"] is None
    assert patched["overriddenCharges"][0]["graduatedRanges"] == [
        {"fromValue": 0, "toValue": None, "perUnitAmount": 1, "flatAmount": 0}
    ]
    assert patched["metadata"] == {"deal": "Q4"}  # not sent: kept
    r = await client.delete(f"{URL}/{created['id']}", headers=api.headers)
    assert r.status_code == 200
    assert r.json() == {"message": "Plan override deleted successfully"}
    assert_error(await client.get(f"{URL}/{created['id']}", headers=api.headers), 404)


async def test_checks_in_contract_order(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    api, plan, _, customer = await setup(client, tenant)

    async def post(**body: Any) -> httpx.Response:
        base = {"customerId": customer["id"], "planId": plan["id"]}
        return await client.post(URL, headers=api.headers, json={**base, **body})

    r = await post(customerId="missing", planId="missing")
    assert_error(r, 404)
    assert r.json()["message"] == "Customer not found"
    r = await post(planId="missing")
    assert_error(r, 404)
    assert r.json()["message"] == "Plan not found"
    assert (await post()).status_code == 201
    r = await post()
    assert_error(r, 409)
    assert r.json()["message"] == "A plan override already exists for this customer and plan"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customerId": ""}, "customerId"),
        ({"overriddenPrices": [{"currency": "USD", "amount": 1.234}]}, "overriddenPrices.0.amount"),
        ({"overriddenPrices": [{"currency": "USD", "amount": -1}]}, "overriddenPrices.0.amount"),
        (
            {
                "overriddenPrices": [
                    {"currency": "USD", "amount": 1},
                    {"currency": "usd", "amount": 2},
                ]
            },
            "overriddenPrices.1.currency",
        ),
        (
            {"overriddenPrices": [{"currency": "DOLLARS", "amount": 1}]},
            "overriddenPrices.0.currency",
        ),
        ({"overriddenPrices": [{"currency": "USD", "amount": 1, "note": "x"}]}, "property"),
        ({"overriddenMinimumCommitment": -1}, "overriddenMinimumCommitment"),
        ({"overriddenMinimumCommitment": "1.23456"}, "overriddenMinimumCommitment"),
        ({"overriddenCharges": [{"chargeId": "not_on_plan"}]}, "overriddenCharges.0.chargeId"),
        ({"overriddenCharges": [{"properties": {}}]}, "overriddenCharges.0.chargeId"),
        (
            {"overriddenCharges": [{"chargeId": "CHARGE", "properties": {"amount": -1}}]},
            "overriddenCharges.0.properties.amount",
        ),
        (
            {
                "overriddenCharges": [
                    {
                        "chargeId": "CHARGE",
                        "graduatedRanges": [{"fromValue": 0, "perUnitAmount": 1}],
                    }
                ]
            },
            "overriddenCharges.0.graduatedRanges.0.toValue",
        ),
        (
            {"overriddenCharges": [{"chargeId": "CHARGE"}, {"chargeId": "CHARGE"}]},
            "overriddenCharges.1.chargeId",
        ),
        ({"overriddenCharges": [{"chargeId": "CHARGE", "extra": 1}]}, "property"),
        ({"metadata": [1]}, "metadata"),
    ],
)
async def test_create_rejects_bad_input(
    client: httpx.AsyncClient,
    shared_setup: tuple[UsageApi, Any, Any, Any],
    body: dict[str, Any],
    field: str,
) -> None:
    api, plan, charge, customer = shared_setup
    body = copy.deepcopy(body)  # the parameters are shared by both backends' runs
    for entry in body.get("overriddenCharges", []):
        if entry.get("chargeId") == "CHARGE":
            entry["chargeId"] = charge["id"]
    base = {"customerId": customer["id"], "planId": plan["id"]}
    r = await client.post(URL, headers=api.headers, json={**base, **body})
    assert_error(r, 400, field)


async def test_list_embeds_filters_and_pages(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    api, plan, _, customer = await setup(client, tenant)
    other_plan = await api.plan()
    first = await api.post(URL, {"customerId": customer["id"], "planId": plan["id"]})
    second = await api.post(URL, {"customerId": customer["id"], "planId": other_plan["id"]})
    page = await api.get(URL)
    assert [o["id"] for o in page["data"]] == [second["id"], first["id"]]
    assert page["meta"] == {"total": 2, "page": 1, "limit": 50, "totalPages": 1}
    assert page["data"][0]["customer"]["id"] == customer["id"]
    assert page["data"][0]["plan"]["code"] == other_plan["code"]
    only = await api.get(f"{URL}?planId={plan['id']}&customerId={customer['id']}")
    assert [o["id"] for o in only["data"]] == [first["id"]]
    paged = await api.get(f"{URL}?limit=1&page=2&unknown=1")
    assert [o["id"] for o in paged["data"]] == [first["id"]]
    assert paged["meta"]["limit"] == 1 and paged["meta"]["totalPages"] == 2
    assert (await api.get(f"{URL}?limit=abc"))["meta"]["limit"] == 50
    assert (await api.get(f"{URL}?limit=1000"))["meta"]["limit"] == 100


async def test_patch_rejects_and_customer_deletion_removes(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    api, plan, _, customer = await setup(client, tenant)
    created = await api.post(URL, {"customerId": customer["id"], "planId": plan["id"]})
    for patch, field in (
        ({"customerId": "x"}, "property"),
        ({"planId": "x"}, "property"),
        ({"overriddenCharges": [{"chargeId": "nope"}]}, "overriddenCharges.0.chargeId"),
    ):
        r = await client.patch(f"{URL}/{created['id']}", headers=api.headers, json=patch)
        assert_error(r, 400, field)
    r = await client.delete(f"/api/customers/{customer['id']}", headers=api.headers)
    assert r.status_code == 200, r.text
    assert_error(await client.get(f"{URL}/{created['id']}", headers=api.headers), 404)


async def test_other_tenant_and_auth(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    api, plan, _, customer = await setup(client, tenant)
    created = await api.post(URL, {"customerId": customer["id"], "planId": plan["id"]})
    theirs = other_tenant.key_headers
    for method in ("GET", "PATCH", "DELETE"):
        json = {"metadata": {}} if method == "PATCH" else None
        r = await client.request(method, f"{URL}/{created['id']}", headers=theirs, json=json)
        assert_error(r, 404)
    assert (await client.get(URL, headers=theirs)).json()["data"] == []
    r = await client.post(
        URL, headers=theirs, json={"customerId": customer["id"], "planId": plan["id"]}
    )
    assert_error(r, 404)
    assert_error(await client.post(URL, json={"customerId": ""}), 401)
    for method, path in (
        ("GET", URL),
        ("GET", f"{URL}/x"),
        ("PATCH", f"{URL}/x"),
        ("DELETE", f"{URL}/x"),
    ):
        assert_error(await client.request(method, path), 401)
