"""Hostile input rejected at the edge, for every route at once (issue 14, defects 3-8):
NUL characters, free-form JSON out of bounds, dates at the calendar's edges, deeply nested
webhook bodies. Each case answered 500 before (and PATCH /api/tenants/me saved the value,
breaking GET /api/tenants/me and login for that tenant)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from novabilling.kit.jsonguard import JsonRejected, check_value, parse_body
from novabilling.kit.timestamps import parse_instant, to_wire
from novabilling.runtime import Runtime
from novabilling.tenancy.models import Tenant
from tests.conftest import TenantCreds, assert_error
from tests.subscriptions.helpers import make_customer, make_plan

NUL = "\u0000"
JSON = {"content-type": "application/json"}


def _customer(**extra: Any) -> dict[str, Any]:
    return {
        "externalId": f"cus_{secrets.token_hex(4)}",
        "email": f"b-{secrets.token_hex(3)}@test.local",
        "currency": "USD",
        **extra,
    }


# --- NUL (U+0000) -------------------------------------------------------------------------------

BODY_CASES = [
    ("POST", "/api/auth/login", "none", {"email": f"a{NUL}b@test.local", "password": "x"}, "email"),
    (
        "POST",
        "/api/auth/register",
        "none",
        {"name": "Ada", "email": "n@test.local", "password": f"pw{NUL}123456", "companyName": "C"},
        "password",
    ),
    ("POST", "/api/auth/forgot-password", "none", {"email": f"x{NUL}@test.local"}, "email"),
    ("POST", "/api/customers", "key", _customer(name=f"Ada{NUL}"), "name"),
    ("POST", "/api/customers", "key", _customer(metadata={f"k{NUL}": 1}), "metadata"),
    ("POST", "/api/plans", "key", {"name": f"P{NUL}", "code": "p1", "prices": []}, "name"),
    ("POST", "/api/invoices", "key", {"customerId": f"c{NUL}", "items": []}, "customerId"),
    ("POST", "/api/subscriptions", "key", {"customerId": "c", "planId": f"p{NUL}"}, "planId"),
    ("POST", "/api/payments", "key", {"invoiceId": f"i{NUL}"}, "invoiceId"),
    ("PATCH", "/api/tenants/me", "token", {"name": f"Acme{NUL}"}, "name"),
    ("PATCH", "/api/tenants/me", "token", {"settings": {"deep": [f"v{NUL}"]}}, "settings.deep.0"),
    ("POST", "/api/tenants/me/api-keys", "token", {"name": "k", "scopes": [f"s{NUL}"]}, "scopes.0"),
    (
        "POST",
        "/api/payment-providers",
        "key",
        {"providerName": "paystack", "credentials": {"secretKey": f"sk{NUL}"}},
        "credentials.secretKey",
    ),
]


def _headers(tenant: TenantCreds, auth: str) -> dict[str, str]:
    return {"none": {}, "key": tenant.key_headers, "token": tenant.token_headers}[auth]


@pytest.mark.parametrize(
    ("method", "path", "auth", "body", "field"),
    BODY_CASES,
    ids=[f"{c[0]} {c[1]} {c[4]}" for c in BODY_CASES],
)
async def test_nul_in_a_body_is_400_naming_the_field(
    client: httpx.AsyncClient,
    shared_tenant: TenantCreds,
    method: str,
    path: str,
    auth: str,
    body: dict[str, Any],
    field: str,
) -> None:
    r = await client.request(method, path, json=body, headers=_headers(shared_tenant, auth))
    assert_error(r, 400, field)


@pytest.mark.parametrize(
    "path",
    [
        "/api/customers?search=a%00b",
        "/api/customers?sortBy=%00",
        "/api/invoices?status=PAID%00",
        "/api/payments?provider=x%00",
        "/api/subscriptions?customerId=%00",
        "/api/plans?x%00y=1",
    ],
)
async def test_nul_in_a_query_parameter_is_400(
    client: httpx.AsyncClient, tenant: TenantCreds, path: str
) -> None:
    r = await client.get(path, headers=tenant.key_headers)
    assert_error(r, 400)
    assert "NUL" in r.json()["errors"][0]["message"]
    assert r.json()["path"] == path


async def test_nul_in_any_path_id_is_404_on_every_operation(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    """Every documented operation with an id in its path, the id carrying a NUL."""
    spec = (await client.get("/api/openapi.json")).json()
    tried = 0
    for template, operations in spec["paths"].items():
        if "{" not in template or not template.startswith("/api"):
            continue
        path = template
        while "{" in path:
            start, end = path.index("{"), path.index("}")
            path = path[:start] + "id%00x" + path[end + 1 :]
        headers = tenant.token_headers if path.startswith("/api/tenants/me") else tenant.key_headers
        for method in operations:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            r = await client.request(method.upper(), path, headers=headers)
            assert_error(r, 404)
            tried += 1
    assert tried >= 20


async def test_auth_still_comes_first(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/customers", json=_customer(name=f"x{NUL}"))
    assert_error(r, 401)
    r = await client.get("/api/customers/ab%00c")
    assert_error(r, 401)


# --- free-form JSON (settings, metadata, properties) -------------------------------------------


async def test_a_huge_integer_in_settings_is_400_and_nothing_is_saved(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    before = (await client.get("/api/tenants/me", headers=tenant.token_headers)).json()
    r = await client.patch(
        "/api/tenants/me",
        json={"name": "Renamed Ltd", "settings": {"n": 10**20}},
        headers=tenant.token_headers,
    )
    assert_error(r, 400, "settings.n")
    after = await client.get("/api/tenants/me", headers=tenant.token_headers)
    assert after.status_code == 200
    assert after.json()["settings"] == before["settings"]
    assert after.json()["name"] == before["name"]
    login = await client.post(
        "/api/auth/login", json={"email": tenant.email, "password": tenant.password}
    )
    assert login.status_code == 200


async def test_a_tenant_with_a_huge_integer_already_stored_can_still_read_and_log_in(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """Values saved before the edge rejected them must not break every read."""
    async with runtime.central() as session:
        await session.execute(
            update(Tenant)
            .where(Tenant.id == tenant.id)
            .values(settings={"ownerName": "Ada", "n": 10**20})
        )
        await session.commit()
    runtime.tenant_profiles.drop(tenant.id)
    me = await client.get("/api/tenants/me", headers=tenant.token_headers)
    assert me.status_code == 200 and me.json()["settings"]["n"] == 10**20
    login = await client.post(
        "/api/auth/login", json={"email": tenant.email, "password": tenant.password}
    )
    assert login.status_code == 200


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"settings": {"n": 100000000000000000000}}', "settings.n"),
        (b'{"settings": {"n": -9223372036854775809}}', "settings.n"),
        (b'{"settings": {"f": 1e400}}', "settings.f"),
        (b'{"settings": {"f": [1, NaN]}}', "settings.f.1"),
        (b'{"settings": {"f": -Infinity}}', "settings.f"),
        (b'{"settings": ' + b'{"a": ' * 40 + b"1" + b"}" * 41, "settings.a.a.a"),
        (b'{"settings": ' + b"[" * 5000 + b"]" * 5000 + b"}", "body"),
        (b'{"settings": {"x": "' + b"y" * 70_000 + b'"}}', "settings"),
    ],
    ids=["int>2^64", "int<-2^63", "1e400", "NaN", "-Infinity", "depth 41", "depth 5000", "70 KB"],
)
async def test_free_form_json_is_bounded(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, raw: bytes, field: str
) -> None:
    r = await client.patch(
        "/api/tenants/me", content=raw, headers={**shared_tenant.token_headers, **JSON}
    )
    assert_error(r, 400)
    fields = [e["field"] for e in r.json()["errors"]]
    assert any(f.startswith(field) for f in fields), fields
    me = (await client.get("/api/tenants/me", headers=shared_tenant.token_headers)).json()
    assert set(me["settings"]) == {"ownerName"}


async def test_free_form_json_within_bounds_is_kept_exactly(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    settings = {
        "big": 2**63 - 1,
        "small": -(2**63),
        "ratio": 0.25,
        "deep": _nested(30),
        "text": "héllo ✓",
    }
    r = await client.patch(
        "/api/tenants/me", json={"settings": settings}, headers=tenant.token_headers
    )
    assert r.status_code == 200, r.text
    assert {k: r.json()["settings"][k] for k in settings} == settings
    customer = await client.post(
        "/api/customers",
        json=_customer(metadata={"n": 2**62, "deep": _nested(20)}),
        headers=tenant.key_headers,
    )
    assert customer.status_code == 201, customer.text
    r = await client.post(
        "/api/customers", json=_customer(metadata={"n": 2**64}), headers=tenant.key_headers
    )
    assert_error(r, 400, "metadata.n")


async def test_subscription_metadata_is_bounded(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    customer = await make_customer(client, tenant)
    plan = await make_plan(client, tenant)
    body = {"customerId": customer["id"], "planId": plan["id"], "metadata": _nested(40)}
    r = await client.post("/api/subscriptions", json=body, headers=tenant.key_headers)
    assert_error(r, 400)
    assert r.json()["errors"][0]["field"].startswith("metadata.a")


# --- webhooks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [JSON, {}], ids=["json", "no content type"])
@pytest.mark.parametrize("provider", ["paystack", "flutterwave", "stripe", "mpesa"])
async def test_a_deeply_nested_webhook_body_is_400_before_any_other_work(
    client: httpx.AsyncClient, provider: str, content_type: dict[str, str]
) -> None:
    body = b'{"event": "charge.success", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    headers = {"x-paystack-signature": "x", **content_type}
    r = await client.post(f"/webhooks/{provider}", content=body, headers=headers)
    assert_error(r, 400, "body")
    shallow = b'{"data": ' + b"[" * 40 + b"]" * 40 + b"}"
    r = await client.post(f"/webhooks/{provider}/t1", content=shallow, headers=content_type)
    assert_error(r, 400)
    assert r.json()["errors"][0]["field"].startswith("data.0.0")


# --- dates --------------------------------------------------------------------------------------

EDGE_DATES = [
    "0001-01-01",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "9999-12-31",
    "9999-12-31T23:59:59-01:00",
    "2200-01-01",
    "not-a-date",
]


@pytest.mark.parametrize("value", EDGE_DATES)
async def test_request_dates_outside_the_accepted_range_are_400(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, value: str
) -> None:
    r = await client.post(
        "/api/tenants/me/api-keys",
        json={"name": "k", "scopes": [], "expiresAt": value},
        headers=shared_tenant.token_headers,
    )
    assert_error(r, 400, "expiresAt")
    customer = await make_customer(client, shared_tenant)
    plan = await make_plan(client, shared_tenant)
    r = await client.post(
        "/api/subscriptions",
        json={"customerId": customer["id"], "planId": plan["id"], "startDate": value},
        headers=shared_tenant.key_headers,
    )
    assert_error(r, 400, "startDate")


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01T00:00:00+01:00", "1970-01-01", "x"])
@pytest.mark.parametrize("path", ["/api/invoices", "/api/payments", "/api/webhooks/deliveries"])
async def test_date_filters_outside_the_range_are_400(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, path: str, value: str
) -> None:
    for name in ("dateFrom", "dateTo"):
        r = await client.get(path, params={name: value}, headers=shared_tenant.key_headers)
        assert_error(r, 400, name)
        assert r.json()["errors"] == [
            {"field": name, "message": f"{name} must be a valid ISO 8601 date string"}
        ]


async def test_dates_inside_the_range_are_accepted(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await client.post(
        "/api/tenants/me/api-keys",
        json={"name": "k", "scopes": [], "expiresAt": "2030-06-30T10:00:00+02:00"},
        headers=tenant.token_headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["expiresAt"] == "2030-06-30T08:00:00.000Z"
    r = await client.get("/api/invoices?dateFrom=2000-01-01", headers=tenant.key_headers)
    assert r.status_code == 200


async def test_the_range_is_documented_in_the_openapi_spec(client: httpx.AsyncClient) -> None:
    text = (await client.get("/api/openapi.json")).text
    assert "between 2000-01-01 and 10 years from now" in text


def test_timestamps_are_always_iso_8601() -> None:
    assert to_wire(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000Z"
    assert to_wire(datetime(999, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)) == "0999-02-03T04:05:06.789Z"
    assert to_wire(datetime(2026, 3, 1, 9, 15, 2, 123456, tzinfo=UTC)) == "2026-03-01T09:15:02.123Z"


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_instant_never_overflows(value: str) -> None:
    with pytest.raises(ValueError, match="between 2000-01-01"):
        parse_instant(value)


# --- the checker itself ------------------------------------------------------------------------


def test_check_value_names_the_path_and_never_recurses() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(JsonRejected) as caught:
        check_value({"x": deep})
    assert caught.value.field.startswith("x.0.0")
    with pytest.raises(JsonRejected, match="must be valid JSON"):
        parse_body(b"{nope")
    with pytest.raises(JsonRejected, match="must be valid JSON"):
        parse_body(b'{"a": "\xff"}')
    assert parse_body(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
