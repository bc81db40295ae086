"""/api/analytics wire rules (contract analytics.md): empty tenants, the strict query
check, authentication, tenant isolation, the ``fxRates`` setting's validation."""

from __future__ import annotations

import httpx
import pytest

from novabilling.kit.clock import TestClock
from novabilling.runtime import Runtime
from tests.analytics import dataset
from tests.conftest import TenantCreds, assert_error

STRICT = ("revenue", "subscriptions", "customers", "payments", "mrr-breakdown", "net-revenue")
ALL = (*STRICT, "churn-cohorts", "ltv")

EMPTY = {
    "revenue": {"totalRevenue": "0.00", "invoiceCount": 0, "mrr": "0.00", "arr": "0.00"},
    "subscriptions": {
        "total": 0,
        "active": 0,
        "canceled": 0,
        "trialing": 0,
        "paused": 0,
        "newSubscriptions": 0,
        "churnRate": "0%",
        "retentionRate": "100.00%",
    },
    "customers": {"totalCustomers": 0, "newCustomers": 0, "arpu": "0.00", "totalRevenue": "0.00"},
    "payments": {
        "totalPayments": 0,
        "succeeded": 0,
        "failed": 0,
        "pending": 0,
        "successRate": "0%",
    },
    "mrr-breakdown": {
        "totalMrr": 0,
        "newMrr": 0,
        "expansionMrr": 0,
        "contractionMrr": 0,
        "churnMrr": 0,
        "netNewMrr": 0,
        "byPlan": [],
    },
    "net-revenue": {"grossRevenue": 0, "refunds": 0, "creditNotes": 0, "netRevenue": 0},
    "ltv": {"avgLtv": 0, "avgLifespanDays": 0, "byPlan": []},
}


@pytest.mark.parametrize("path", sorted(EMPTY))
async def test_empty_tenant_answers_zeros(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, path: str
) -> None:
    for headers in (shared_tenant.key_headers, shared_tenant.token_headers):
        r = await client.get(f"/api/analytics/{path}", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == EMPTY[path]


async def test_empty_cohorts(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, runtime: Runtime
) -> None:
    runtime.clock = TestClock(dataset.NOW)
    r = await client.get("/api/analytics/churn-cohorts?months=2", headers=shared_tenant.key_headers)
    assert r.json() == {
        "months": ["2026-02", "2026-03"],
        "cohorts": [
            {"month": "2026-02", "totalCustomers": 0, "retentionPercentages": []},
            {"month": "2026-03", "totalCustomers": 0, "retentionPercentages": []},
        ],
    }


@pytest.mark.parametrize("path", ALL)
async def test_missing_or_bad_credentials_are_401(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, path: str
) -> None:
    assert_error(await client.get(f"/api/analytics/{path}?groupBy=year"), 401)
    bad = {"Authorization": "Bearer sk_live_" + "0" * 64}
    assert_error(await client.get(f"/api/analytics/{path}", headers=bad), 401)


@pytest.mark.parametrize("path", STRICT)
async def test_strict_query_check(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, path: str
) -> None:
    get = client.get
    h = shared_tenant.key_headers
    assert_error(await get(f"/api/analytics/{path}?foo=1", headers=h), 400, "property")
    assert_error(await get(f"/api/analytics/{path}?groupBy=year", headers=h), 400, "groupBy")
    assert_error(await get(f"/api/analytics/{path}?dateFrom=yesterday", headers=h), 400, "dateFrom")
    assert_error(await get(f"/api/analytics/{path}?dateTo=1999-01-01", headers=h), 400, "dateTo")
    assert_error(await get(f"/api/analytics/{path}?byCurrency=maybe", headers=h), 400, "byCurrency")
    ok = await get(
        f"/api/analytics/{path}?groupBy=week&dateFrom=2025-01-01&dateTo=2026-12-31T10:00:00%2B01:00"
        "&currency=NGN",
        headers=h,
    )
    assert ok.status_code == 200, ok.text


async def test_provider_is_accepted_on_payments_only(
    client: httpx.AsyncClient, shared_tenant: TenantCreds
) -> None:
    h = shared_tenant.key_headers
    r = await client.get("/api/analytics/payments?provider=stripe", headers=h)
    assert r.status_code == 200  # the contract's Improve (the original answered 400)
    assert_error(await client.get("/api/analytics/revenue?provider=x", headers=h), 400, "property")


async def test_cohorts_and_ltv_ignore_other_parameters(
    client: httpx.AsyncClient, shared_tenant: TenantCreds
) -> None:
    h = shared_tenant.key_headers
    for path in ("churn-cohorts?groupBy=year&foo=1", "ltv?dateFrom=garbage&byCurrency=maybe"):
        r = await client.get(f"/api/analytics/{path}", headers=h)
        assert r.status_code == 200, r.text


async def test_another_tenant_sees_only_its_own_data(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds, runtime: Runtime
) -> None:
    runtime.clock = TestClock(dataset.NOW)
    await dataset.load(runtime, tenant.id)
    mine = await client.get("/api/analytics/revenue", headers=tenant.key_headers)
    assert mine.json()["invoiceCount"] == 8
    for path, empty in EMPTY.items():
        r = await client.get(f"/api/analytics/{path}", headers=other_tenant.key_headers)
        assert r.json() == empty, path


@pytest.mark.parametrize(
    ("rates", "field"),
    [
        ({"NGN": -1}, "settings.fxRates.NGN"),
        ({"NGN": 0}, "settings.fxRates.NGN"),
        ({"NGN": "abc"}, "settings.fxRates.NGN"),
        ({"NGN": True}, "settings.fxRates.NGN"),
        ({"NGNX": 1}, "settings.fxRates.NGNX"),
        ("1550", "settings.fxRates"),
        ([1550], "settings.fxRates"),
    ],
)
async def test_fx_rates_setting_is_validated(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, rates: object, field: str
) -> None:
    r = await client.patch(
        "/api/tenants/me",
        headers=shared_tenant.token_headers,
        json={"settings": {"fxRates": rates}},
    )
    assert_error(r, 400, field)
    me = await client.get("/api/tenants/me", headers=shared_tenant.token_headers)
    assert "fxRates" not in me.json()["settings"]
