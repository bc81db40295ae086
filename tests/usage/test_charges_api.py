"""/api/charges (contract charges.md), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import TenantCreds, assert_error
from tests.usage.support import UsageApi

URL = "/api/charges"
RANGES = [
    {"fromValue": 0, "toValue": 100, "perUnitAmount": "0.0025", "flatAmount": 1},
    {"fromValue": 101, "toValue": None, "perUnitAmount": 0.001},
]


async def setup(client: httpx.AsyncClient, tenant: TenantCreds) -> tuple[UsageApi, Any, Any]:
    api = UsageApi(client, tenant)
    plan = await api.plan()
    metric = await api.metric(
        "SUM", code="calls", fieldName="calls", filters=[{"key": "region", "values": ["eu", "us"]}]
    )
    return api, plan, metric


@pytest.fixture
async def shared_setup(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, shared_made: dict[str, Any]
) -> tuple[UsageApi, Any, Any]:
    """``setup`` made once per module and backend in the shared tenant, for the tests whose
    requests are all refused."""
    if "setup" not in shared_made:
        _, plan, metric = await setup(client, shared_tenant)
        shared_made["setup"] = (plan, metric)
    plan, metric = shared_made["setup"]
    return UsageApi(client, shared_tenant), plan, metric


async def test_create_standard_and_graduated(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    api, plan, metric = await setup(client, tenant)
    standard = await api.charge(
        plan["id"],
        metric["id"],
        "STANDARD",
        properties={"amount": "0.10", "note": "kept"},
        invoiceDisplayName="API calls",
        minAmountCents=500,
        filters=[{"key": "region", "values": ["eu"], "properties": {"amount": 0.2}}],
    )
    assert standard["planId"] == plan["id"] and standard["billableMetricId"] == metric["id"]
    assert standard["chargeModel"] == "STANDARD" and standard["billingTiming"] == "IN_ARREARS"
    assert standard["properties"] == {"amount": "0.10", "note": "kept"}
    assert standard["minAmountCents"] == 500 and standard["prorated"] is False
    assert standard["invoiceDisplayName"] == "API calls" and standard["graduatedRanges"] == []
    assert standard["billableMetric"]["code"] == "calls"
    assert "filters" not in standard["billableMetric"]
    [flt] = standard["filters"]
    assert (flt["key"], flt["values"], flt["properties"]) == ("region", ["eu"], {"amount": 0.2})
    assert flt["chargeId"] == standard["id"]

    other = await api.metric("COUNT", code="logins")
    graduated = await api.charge(
        plan["id"], other["id"], "GRADUATED", graduatedRanges=RANGES, billingTiming="IN_ADVANCE"
    )
    assert graduated["properties"] == {} and graduated["billingTiming"] == "IN_ADVANCE"
    assert [
        (r["fromValue"], r["toValue"], r["perUnitAmount"], r["flatAmount"], r["order"])
        for r in graduated["graduatedRanges"]
    ] == [(0, 100, "0.0025", "1", 0), (101, None, "0.001", "0", 1)]


async def test_create_checks_in_contract_order(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    api, plan, metric = await setup(client, tenant)

    async def post(**body: Any) -> httpx.Response:
        base = {"planId": plan["id"], "billableMetricId": metric["id"], "chargeModel": "STANDARD"}
        return await client.post(URL, headers=api.headers, json={**base, **body})

    r = await post(planId="missing", properties={"amount": 1})
    assert_error(r, 404)
    assert r.json()["message"] == "Plan not found"
    r = await post(billableMetricId="missing", properties={"amount": 1})
    assert_error(r, 404)
    assert r.json()["message"] == "Billable metric not found"
    r = await post(chargeModel="GRADUATED")
    assert_error(r, 400)
    assert r.json()["message"] == "GRADUATED charge model requires graduatedRanges"
    r = await post()
    assert_error(r, 400)
    assert r.json()["message"] == "STANDARD charge model requires properties"
    assert (await post(properties={"amount": 1})).status_code == 201
    r = await post(properties={"amount": 1})
    assert_error(r, 409)
    assert r.json()["message"] == "A charge for this metric already exists on this plan"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"chargeModel": "TIERED"}, "chargeModel"),
        ({"billingTiming": "LATER"}, "billingTiming"),
        ({"minAmountCents": 1.5}, "minAmountCents"),
        ({"minAmountCents": -1}, "minAmountCents"),
        ({"invoiceDisplayName": "x" * 201}, "invoiceDisplayName"),
        ({"properties": {"amount": -1}}, "properties.amount"),
        ({"properties": {"amount": "ten"}}, "properties.amount"),
        ({"properties": {"price": 1}}, "properties.amount"),
        ({"properties": {"amount": "0.0000000000001"}}, "properties.amount"),
        ({"chargeModel": "PACKAGE", "properties": {"amount": 1}}, "properties.packageSize"),
        (
            {"chargeModel": "PACKAGE", "properties": {"amount": 1, "packageSize": 0}},
            "properties.packageSize",
        ),
        (
            {"chargeModel": "PACKAGE", "properties": {"amount": 1, "packageSize": 2.5}},
            "properties.packageSize",
        ),
        ({"chargeModel": "PERCENTAGE", "properties": {"rate": 101}}, "properties.rate"),
        (
            {"chargeModel": "PERCENTAGE", "properties": {"rate": 1, "fixedAmount": -2}},
            "properties.fixedAmount",
        ),
        ({"chargeModel": "PERCENTAGE", "properties": {"fixedAmount": 2}}, "properties.rate"),
        (
            {
                "chargeModel": "GRADUATED",
                "graduatedRanges": [{"fromValue": 0.5, "perUnitAmount": 1}],
            },
            "graduatedRanges.0.fromValue",
        ),
        (
            {
                "chargeModel": "GRADUATED",
                "graduatedRanges": [{"fromValue": 5, "toValue": 2, "perUnitAmount": 1}],
            },
            "graduatedRanges.0.toValue",
        ),
        (
            {
                "chargeModel": "GRADUATED",
                "graduatedRanges": [
                    {"fromValue": 0, "perUnitAmount": 1},
                    {"fromValue": 10, "perUnitAmount": 1},
                ],
            },
            "graduatedRanges.0.toValue",
        ),
        (
            {
                "chargeModel": "VOLUME",
                "graduatedRanges": [
                    {"fromValue": 0, "toValue": 10, "perUnitAmount": 1},
                    {"fromValue": 12, "perUnitAmount": 1},
                ],
            },
            "graduatedRanges.1.fromValue",
        ),
        (
            {"chargeModel": "VOLUME", "graduatedRanges": [{"fromValue": 0, "perUnitAmount": -1}]},
            "graduatedRanges.0.perUnitAmount",
        ),
        (
            {
                "chargeModel": "VOLUME",
                "graduatedRanges": [{"fromValue": 0, "perUnitAmount": 1, "amount": 2}],
            },
            "property",
        ),
        (
            {"properties": {"amount": 1}, "filters": [{"key": "colour", "values": ["red"]}]},
            "filters.0.key",
        ),
        (
            {"properties": {"amount": 1}, "filters": [{"key": "region", "values": ["mars"]}]},
            "filters.0.values",
        ),
        (
            {
                "properties": {"amount": 1},
                "filters": [
                    {"key": "region", "values": ["eu"]},
                    {"key": "region", "values": ["us"]},
                ],
            },
            "filters.1.key",
        ),
        (
            {
                "properties": {"amount": 1},
                "filters": [{"key": "region", "values": ["eu"], "properties": {"amount": -3}}],
            },
            "filters.0.properties.amount",
        ),
        ({"properties": {"amount": 1}, "filters": [{"key": "", "values": []}]}, "filters.0.key"),
        ({"properties": 5}, "properties"),
        ({"planId": ""}, "planId"),
    ],
)
async def test_create_rejects_bad_settings(
    client: httpx.AsyncClient,
    shared_setup: tuple[UsageApi, Any, Any],
    body: dict[str, Any],
    field: str,
) -> None:
    api, plan, metric = shared_setup
    base = {"planId": plan["id"], "billableMetricId": metric["id"], "chargeModel": "STANDARD"}
    r = await client.post(URL, headers=api.headers, json={**base, **body})
    assert_error(r, 400, field)


async def test_lists_get_patch_delete(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    api, plan, metric = await setup(client, tenant)
    other_plan = await api.plan()
    logins = await api.metric("COUNT", code="logins")
    first = await api.charge(plan["id"], metric["id"], "STANDARD", properties={"amount": 1})
    second = await api.charge(plan["id"], logins["id"], "VOLUME", graduatedRanges=RANGES)
    third = await api.charge(
        other_plan["id"], logins["id"], "PACKAGE", properties={"amount": 5, "packageSize": 100}
    )
    assert [c["id"] for c in await api.get(URL)] == [third["id"], second["id"], first["id"]]
    assert [c["id"] for c in await api.get(f"{URL}?planId={plan['id']}")] == [
        second["id"],
        first["id"],
    ]
    assert await api.get(f"{URL}?planId=unknown") == []
    assert [c["id"] for c in await api.get(f"{URL}/plan/{plan['id']}")] == [
        first["id"],
        second["id"],
    ]
    assert_error(await client.get(f"{URL}/plan/unknown", headers=api.headers), 404)
    detail = await api.get(f"{URL}/{first['id']}")
    assert detail["plan"]["id"] == plan["id"] and "prices" not in detail["plan"]
    assert detail["billableMetric"]["filters"][0]["key"] == "region"

    r = await client.patch(
        f"{URL}/{second['id']}",
        headers=api.headers,
        json={
            "graduatedRanges": [{"fromValue": 0, "toValue": None, "perUnitAmount": 2}],
            "minAmountCents": 100,
            "invoiceDisplayName": "Logins",
            "billingTiming": "IN_ADVANCE",
            "prorated": True,
        },
    )
    assert r.status_code == 200, r.text
    patched = r.json()
    assert [
        (g["fromValue"], g["toValue"], g["perUnitAmount"], g["order"])
        for g in patched["graduatedRanges"]
    ] == [(0, None, "2", 0)]
    assert patched["minAmountCents"] == 100 and patched["invoiceDisplayName"] == "Logins"
    assert patched["billingTiming"] == "IN_ADVANCE" and patched["prorated"] is True
    r = await client.patch(
        f"{URL}/{first['id']}",
        headers=api.headers,
        json={
            "filters": [{"key": "region", "values": ["us"]}],
            "properties": {"amount": 3},
            "minAmountCents": None,
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["filters"][0]["values"] == ["us"] and r.json()["minAmountCents"] is None
    assert r.json()["properties"] == {"amount": 3}

    r = await client.delete(f"{URL}/{second['id']}", headers=api.headers)
    assert r.status_code == 200 and r.json() == {"message": "Charge deleted successfully"}
    assert_error(await client.get(f"{URL}/{second['id']}", headers=api.headers), 404)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"planId": "x"}, "property"),
        ({"billableMetricId": "x"}, "property"),
        ({"chargeModel": "VOLUME"}, "property"),
        ({"properties": None}, "properties"),
        ({"properties": {"amount": -5}}, "properties.amount"),
        ({"billingTiming": None}, "billingTiming"),
        ({"filters": [{"key": "nope", "values": []}]}, "filters.0.key"),
        (
            {"graduatedRanges": [{"fromValue": 3, "toValue": 1, "perUnitAmount": 1}]},
            "graduatedRanges.0.toValue",
        ),
    ],
)
async def test_patch_rejects(
    client: httpx.AsyncClient, tenant: TenantCreds, patch: dict[str, Any], field: str
) -> None:
    api, plan, metric = await setup(client, tenant)
    charge = await api.charge(plan["id"], metric["id"], "STANDARD", properties={"amount": 1})
    r = await client.patch(f"{URL}/{charge['id']}", headers=api.headers, json=patch)
    assert_error(r, 400, field)


async def test_patch_refuses_emptying_the_ranges_of_a_range_model(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    api, plan, metric = await setup(client, tenant)
    charge = await api.charge(plan["id"], metric["id"], "GRADUATED", graduatedRanges=RANGES)
    r = await client.patch(
        f"{URL}/{charge['id']}", headers=api.headers, json={"graduatedRanges": []}
    )
    assert_error(r, 400)


async def test_plan_deletion_takes_its_charges(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    api, plan, metric = await setup(client, tenant)
    charge = await api.charge(plan["id"], metric["id"], "STANDARD", properties={"amount": 1})
    r = await client.delete(f"/api/plans/{plan['id']}", headers=api.headers)
    assert r.status_code == 200, r.text
    assert_error(await client.get(f"{URL}/{charge['id']}", headers=api.headers), 404)
    r = await client.delete(f"/api/billable-metrics/{metric['id']}", headers=api.headers)
    assert r.status_code == 200, r.text


async def test_other_tenant_and_auth(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    api, plan, metric = await setup(client, tenant)
    charge = await api.charge(plan["id"], metric["id"], "STANDARD", properties={"amount": 1})
    theirs = other_tenant.key_headers
    for method in ("GET", "PATCH", "DELETE"):
        json = {"prorated": True} if method == "PATCH" else None
        r = await client.request(method, f"{URL}/{charge['id']}", headers=theirs, json=json)
        assert_error(r, 404)
    assert (await client.get(URL, headers=theirs)).json() == []
    assert_error(await client.get(f"{URL}/plan/{plan['id']}", headers=theirs), 404)
    r = await client.post(
        URL,
        headers=theirs,
        json={
            "planId": plan["id"],
            "billableMetricId": metric["id"],
            "chargeModel": "STANDARD",
            "properties": {"amount": 1},
        },
    )
    assert_error(r, 404)
    assert_error(await client.post(URL, json={"planId": ""}), 401)
    for method, path in (
        ("GET", URL),
        ("GET", f"{URL}/x"),
        ("GET", f"{URL}/plan/x"),
        ("PATCH", f"{URL}/x"),
        ("DELETE", f"{URL}/x"),
    ):
        assert_error(await client.request(method, path), 401)
