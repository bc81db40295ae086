"""/api/billable-metrics (contract billable-metrics.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import TenantCreds, assert_error
from tests.usage.support import UsageApi

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
URL = "/api/billable-metrics"


def body(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "API calls",
        "code": "api_calls",
        "aggregationType": "SUM",
        "fieldName": "calls",
    }
    out.update(overrides)
    return out


async def test_create_metric_with_filters(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    r = await client.post(
        URL,
        headers=tenant.key_headers,
        json=body(
            description="Calls to the API",
            recurring=True,
            filters=[{"key": "region", "values": ["eu", "us"]}, {"key": "tier", "values": []}],
        ),
    )
    assert r.status_code == 201, r.text
    metric = r.json()
    assert metric["name"] == "API calls" and metric["code"] == "api_calls"
    assert metric["aggregationType"] == "SUM" and metric["fieldName"] == "calls"
    assert metric["recurring"] is True and metric["description"] == "Calls to the API"
    assert TIMESTAMP.match(metric["createdAt"]) and TIMESTAMP.match(metric["updatedAt"])
    assert [(f["key"], f["values"]) for f in metric["filters"]] == [
        ("region", ["eu", "us"]),
        ("tier", []),
    ]
    assert all(f["billableMetricId"] == metric["id"] and f["id"] for f in metric["filters"])


async def test_defaults_and_count_without_field(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await client.post(
        URL,
        headers=tenant.token_headers,
        json={"name": "Logins", "code": "logins", "aggregationType": "COUNT"},
    )
    assert r.status_code == 201, r.text
    metric = r.json()
    assert metric["fieldName"] is None and metric["recurring"] is False
    assert metric["description"] is None and metric["filters"] == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"code": "Bad-Code"}, "code"),
        ({"code": ""}, "code"),
        ({"aggregationType": "AVERAGE"}, "aggregationType"),
        ({"description": "x" * 501}, "description"),
        ({"recurring": "maybe"}, "recurring"),
        ({"fieldName": 'a"b'}, "fieldName"),
        ({"filters": [{"key": "", "values": []}]}, "filters.0.key"),
        ({"filters": [{"key": "k", "values": "eu"}]}, "filters.0.values"),
        ({"filters": [{"key": "k", "values": ["a"], "extra": 1}]}, "property"),
        ({"filters": [{"key": "k", "values": []}, {"key": "k", "values": []}]}, "filters.1.key"),
        ({"colour": "red"}, "property"),
        ({"fieldName": None}, "fieldName"),
        ({"aggregationType": "MAX", "fieldName": None}, "fieldName"),
        ({"aggregationType": "LATEST", "fieldName": None}, "fieldName"),
        ({"aggregationType": "WEIGHTED_SUM", "fieldName": None}, "fieldName"),
        ({"aggregationType": "UNIQUE_COUNT", "fieldName": None}, "fieldName"),
    ],
)
async def test_create_rejects_bad_input(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, overrides: dict[str, Any], field: str
) -> None:
    r = await client.post(URL, headers=shared_tenant.key_headers, json=body(**overrides))
    assert_error(r, 400, field)


async def test_code_conflict_comes_after_field_rules(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    assert (await client.post(URL, headers=tenant.key_headers, json=body())).status_code == 201
    r = await client.post(URL, headers=tenant.key_headers, json=body(fieldName=None))
    assert_error(r, 400, "fieldName")
    r = await client.post(URL, headers=tenant.key_headers, json=body(name="Again"))
    assert_error(r, 409)


async def test_list_get_patch_delete(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    api = UsageApi(client, tenant)
    first = await api.metric("COUNT", code="first")
    second = await api.metric("SUM", code="second", filters=[{"key": "r", "values": ["x"]}])
    plan = await api.plan()
    charge = await api.charge(plan["id"], second["id"], "STANDARD", properties={"amount": 1})
    listed = await api.get(URL)
    assert [m["code"] for m in listed] == ["second", "first"]
    assert [m["_count"] for m in listed] == [{"charges": 1}, {"charges": 0}]
    assert listed[0]["filters"][0]["values"] == ["x"]
    detail = await api.get(f"{URL}/{second['id']}")
    assert [c["id"] for c in detail["charges"]] == [charge["id"]]
    assert detail["charges"][0]["chargeModel"] == "STANDARD"
    assert detail["filters"][0]["key"] == "r"

    r = await client.patch(
        f"{URL}/{second['id']}",
        headers=tenant.key_headers,
        json={"name": "Renamed", "recurring": True, "filters": [{"key": "z", "values": ["1"]}]},
    )
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["name"] == "Renamed" and patched["recurring"] is True
    assert [(f["key"], f["values"]) for f in patched["filters"]] == [("z", ["1"])]
    assert patched["code"] == "second" and patched["aggregationType"] == "SUM"

    r = await client.delete(f"{URL}/{second['id']}", headers=tenant.key_headers)
    assert_error(r, 400)  # a charge uses it
    r = await client.delete(f"{URL}/{first['id']}", headers=tenant.key_headers)
    assert r.status_code == 200 and r.json() == {"message": "Billable metric deleted successfully"}
    assert (await client.get(f"{URL}/{first['id']}", headers=tenant.key_headers)).status_code == 404


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"code": "other"}, "property"),
        ({"aggregationType": "MAX"}, "property"),
        ({"fieldName": None}, "fieldName"),
        ({"name": None}, "name"),
        ({"recurring": None}, "recurring"),
        ({"filters": None}, "filters"),
        ({"name": ""}, "name"),
    ],
)
async def test_patch_rejects(
    client: httpx.AsyncClient,
    shared_tenant: TenantCreds,
    shared_made: dict[str, Any],
    patch: dict[str, Any],
    field: str,
) -> None:
    if "metric" not in shared_made:
        shared_made["metric"] = await UsageApi(client, shared_tenant).metric("SUM")
    metric = shared_made["metric"]
    r = await client.patch(f"{URL}/{metric['id']}", headers=shared_tenant.key_headers, json=patch)
    assert_error(r, 400, field)
    unchanged = await UsageApi(client, shared_tenant).get(f"{URL}/{metric['id']}")
    for key in ("code", "name", "aggregationType", "fieldName", "recurring", "filters"):
        assert unchanged[key] == metric[key], key  # refused: the shared metric is as made


async def test_other_tenant_and_unknown_ids_are_404(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    metric = await UsageApi(client, tenant).metric("COUNT")
    theirs = other_tenant.key_headers
    for method in ("GET", "PATCH", "DELETE"):
        for metric_id in (metric["id"], "nonexistent_id"):
            json = {"name": "x"} if method == "PATCH" else None
            r = await client.request(method, f"{URL}/{metric_id}", headers=theirs, json=json)
            assert_error(r, 404)
    assert (await client.get(URL, headers=theirs)).json() == []


async def test_missing_auth_is_401_before_validation(client: httpx.AsyncClient) -> None:
    assert_error(await client.post(URL, json={"name": ""}), 401)
    assert_error(await client.get(URL), 401)
    assert_error(await client.get(f"{URL}/x"), 401)
    assert_error(await client.patch(f"{URL}/x", json={}), 401)
    assert_error(await client.delete(f"{URL}/x"), 401)
