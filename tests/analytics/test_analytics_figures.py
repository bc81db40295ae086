"""Analytics over a fixed data set (``dataset.py``), figures worked out by hand; on SQLite
and PostgreSQL. Default rates: NGN 1550, KES 153, UGX 3750, EUR 0.92 per USD.

USD value of every PAID invoice: i1 10 + i2 10 + i3 (NGN 15,500) 10 + i4 (UGX 450,000)
120 + i6 (EUR 27.60) 30 + i7 30 + i9 5.55 + i10 (KES 1,530) 10 = 225.55 (8 invoices).

Monthly value of the ACTIVE, priced subscriptions: s1 10, s2 (NGN 15,500) 10, s3 30,
s4 (NGN 15,500) 10, s5 (UGX 450,000 / 12) 10, s6 (WEEKLY 3 x 52 / 12) 13, s7 (EUR
27.60 / 3 = 9.20) 10, s12 30 = 123 (s13 has no GHS price: left out).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from novabilling.kit.clock import TestClock
from novabilling.runtime import Runtime
from tests.analytics import dataset
from tests.conftest import TenantCreds


@pytest.fixture
async def loaded(runtime: Runtime, tenant: TenantCreds) -> TenantCreds:
    runtime.clock = TestClock(dataset.NOW)
    await dataset.load(runtime, tenant.id)
    return tenant


async def _get(client: httpx.AsyncClient, creds: TenantCreds, path: str) -> Any:
    r = await client.get(f"/api/analytics/{path}", headers=creds.key_headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_revenue(client: httpx.AsyncClient, loaded: TenantCreds) -> None:
    assert await _get(client, loaded, "revenue") == {
        "totalRevenue": "225.55",
        "invoiceCount": 8,
        "mrr": "123.00",
        "arr": "1476.00",
    }
    # paid in Q1 2026: i1, i2, i3, i6, i9 (dateTo 2026-03-31 = 00:00 UTC of that day)
    q1 = await _get(client, loaded, "revenue?dateFrom=2026-01-01&dateTo=2026-03-31")
    assert (q1["totalRevenue"], q1["invoiceCount"], q1["mrr"]) == ("65.55", 5, "123.00")
    usd = await _get(client, loaded, "revenue?dateFrom=2026-01-01&dateTo=2026-03-31&currency=usd")
    assert (usd["totalRevenue"], usd["invoiceCount"]) == ("25.55", 3)  # i1, i2, i9
    # both bounds inclusive: i1 paid at 01-05 12:00, i6 01-16, i2 paid at 02-05 12:00
    edges = await _get(
        client, loaded, "revenue?dateFrom=2026-01-05T12:00:00Z&dateTo=2026-02-05T12:00:00Z"
    )
    assert (edges["totalRevenue"], edges["invoiceCount"]) == ("50.00", 3)


async def test_revenue_per_currency(client: httpx.AsyncClient, loaded: TenantCreds) -> None:
    body = await _get(client, loaded, "revenue?byCurrency=true")
    assert body["totalRevenue"] == "225.55"
    assert body["byCurrency"] == [
        {
            "currency": "EUR",
            "totalRevenue": "27.60",
            "invoiceCount": 1,
            "mrr": "9.20",
            "arr": "110.40",
            "usdRate": "0.92",
        },
        {
            "currency": "KES",
            "totalRevenue": "1530.00",
            "invoiceCount": 1,
            "mrr": "0.00",
            "arr": "0.00",
            "usdRate": "153",
        },
        {
            "currency": "NGN",
            "totalRevenue": "15500.00",
            "invoiceCount": 1,
            "mrr": "31000.00",  # s2 + s4
            "arr": "372000.00",
            "usdRate": "1550",
        },
        {
            "currency": "UGX",
            "totalRevenue": "450000",
            "invoiceCount": 1,
            "mrr": "37500",
            "arr": "450000",
            "usdRate": "3750",
        },
        {
            "currency": "USD",
            "totalRevenue": "55.55",  # i1, i2, i7, i9
            "invoiceCount": 4,
            "mrr": "83.00",  # s1 10 + s3 30 + s6 13 + s12 30
            "arr": "996.00",
            "usdRate": "1",
        },
    ]


async def test_subscriptions(client: httpx.AsyncClient, loaded: TenantCreds) -> None:
    assert await _get(client, loaded, "subscriptions") == {
        "total": 16,
        "active": 9,
        "canceled": 4,  # s8, s9, s14, s16
        "trialing": 1,
        "paused": 2,
        "newSubscriptions": 16,
        "churnRate": "25.00%",
        "retentionRate": "75.00%",
    }
    # canceled = CANCELED with createdAt in range: s8 (created 2025-11-01 00:00, the lower
    # bound itself), s14, s16; s9 was created before the range although canceled inside it
    ranged = await _get(client, loaded, "subscriptions?dateFrom=2025-11-01&dateTo=2026-03-31")
    assert ranged == {
        "total": 16,
        "active": 9,
        "canceled": 3,
        "trialing": 1,
        "paused": 2,
        "newSubscriptions": 13,
        "churnRate": "18.75%",
        "retentionRate": "81.25%",
    }
    # a bare dateTo is 00:00 UTC: s10 (created 03-12 10:00) is after it, s13 (03-01 00:00) in
    march = await _get(client, loaded, "subscriptions?dateFrom=2026-03-01&dateTo=2026-03-12")
    assert march["newSubscriptions"] == 2  # s2, s13
    assert (march["canceled"], march["churnRate"], march["retentionRate"]) == (
        0,
        "0.00%",
        "100.00%",
    )


async def test_customers(client: httpx.AsyncClient, loaded: TenantCreds) -> None:
    assert await _get(client, loaded, "customers") == {
        "totalCustomers": 10,
        "newCustomers": 10,
        "arpu": "22.56",  # 225.55 / 10 = 22.555, half up
        "totalRevenue": "225.55",
    }
    q1 = await _get(client, loaded, "customers?dateFrom=2026-01-01&dateTo=2026-03-31")
    assert q1 == {
        "totalCustomers": 10,
        "newCustomers": 6,  # c2, c4, c6, c7, c9, c10
        "arpu": "22.56",
        "totalRevenue": "225.55",
    }


async def test_payments(client: httpx.AsyncClient, loaded: TenantCreds) -> None:
    assert await _get(client, loaded, "payments") == {
        "totalPayments": 10,
        "succeeded": 5,
        "failed": 1,
        "pending": 4,  # PROCESSING, PENDING and the two REFUNDED
        "successRate": "50.00%",
    }
    q1 = await _get(client, loaded, "payments?dateFrom=2026-01-01&dateTo=2026-03-31")
    assert q1 == {
        "totalPayments": 7,
        "succeeded": 4,
        "failed": 1,
        "pending": 2,
        "successRate": "57.14%",  # 4 / 7
    }
    stripe = await _get(client, loaded, "payments?provider=stripe&dateFrom=2026-01-01")
    assert stripe == {
        "totalPayments": 4,
        "succeeded": 2,
        "failed": 1,
        "pending": 1,
        "successRate": "50.00%",
    }


async def test_mrr_breakdown(client: httpx.AsyncClient, loaded: TenantCreds) -> None:
    body = await _get(client, loaded, "mrr-breakdown?dateFrom=2020-01-01&byCurrency=true")
    assert {k: v for k, v in body.items() if k not in ("byPlan", "byCurrency")} == {
        "totalMrr": 123,
        "newMrr": 10,  # s2 (created this month; s13 has no price)
        "expansionMrr": 20,  # s3: Basic 10 -> Pro 30, changed this month
        "contractionMrr": 20,  # s4: Pro NGN 46,500 -> Basic NGN 15,500 = NGN 31,000
        "churnMrr": 43,  # canceled this month: s8 (Pro 30) and s16 (Weekly 13)
        "netNewMrr": -33,  # s12 changed plan last month: not counted
    }
    assert [(p["planName"], p["mrr"], p["subscriptionCount"]) for p in body["byPlan"][:3]] == [
        ("Pro", 60, 2),
        ("Basic", 30, 3),
        ("Weekly", 13, 1),
    ]
    rest = {(p["planName"], p["mrr"], p["subscriptionCount"]) for p in body["byPlan"][3:]}
    assert rest == {("Annual", 10, 1), ("Quarterly", 10, 1)}
    assert {p["planId"] for p in body["byPlan"]} == set(dataset.PLANS)
    per = {entry.pop("currency"): entry for entry in body["byCurrency"]}
    assert per["NGN"] == {
        "totalMrr": 31000,
        "newMrr": 15500,
        "expansionMrr": 0,
        "contractionMrr": 31000,
        "churnMrr": 0,
        "netNewMrr": -15500,
        "usdRate": "1550",
    }
    assert per["USD"] == {
        "totalMrr": 83,
        "newMrr": 0,
        "expansionMrr": 20,
        "contractionMrr": 0,
        "churnMrr": 43,
        "netNewMrr": -23,
        "usdRate": "1",
    }
    assert per["EUR"]["totalMrr"] == 9.2 and per["UGX"]["totalMrr"] == 37500
    assert set(per) == {"EUR", "NGN", "UGX", "USD"}


async def test_net_revenue(client: httpx.AsyncClient, loaded: TenantCreds) -> None:
    # refunds: the full amounts of REFUNDED payments p6 (USD 30, partly refunded) and p7
    # (EUR 27.60 = 30); credit notes: FINALIZED cn1 (NGN 1,550 = 1) and cn3 (1.25)
    assert await _get(client, loaded, "net-revenue") == {
        "grossRevenue": 225.55,
        "refunds": 60,
        "creditNotes": 2.25,
        "netRevenue": 163.3,
    }
    q1 = await _get(client, loaded, "net-revenue?dateFrom=2026-01-01&dateTo=2026-03-31")
    assert q1 == {"grossRevenue": 65.55, "refunds": 30, "creditNotes": 2.25, "netRevenue": 33.3}
    per = await _get(client, loaded, "net-revenue?byCurrency=1")
    assert per["byCurrency"] == [
        {
            "currency": "EUR",
            "grossRevenue": 27.6,
            "refunds": 27.6,
            "creditNotes": 0,
            "netRevenue": 0,
            "usdRate": "0.92",
        },
        {
            "currency": "KES",
            "grossRevenue": 1530,
            "refunds": 0,
            "creditNotes": 0,
            "netRevenue": 1530,
            "usdRate": "153",
        },
        {
            "currency": "NGN",
            "grossRevenue": 15500,
            "refunds": 0,
            "creditNotes": 1550,
            "netRevenue": 13950,
            "usdRate": "1550",
        },
        {
            "currency": "UGX",
            "grossRevenue": 450000,
            "refunds": 0,
            "creditNotes": 0,
            "netRevenue": 450000,
            "usdRate": "3750",
        },
        {
            "currency": "USD",
            "grossRevenue": 55.55,
            "refunds": 30,
            "creditNotes": 1.25,
            "netRevenue": 24.3,
            "usdRate": "1",
        },
    ]


async def test_churn_cohorts(client: httpx.AsyncClient, loaded: TenantCreds) -> None:
    # January: s4 (c4), s7 (c7), s14 (c9, canceled 02-10): all kept at January's end, c9
    # gone by February's. February: s6 (c6 kept), s15 (c10, PAUSED: never counted).
    # March: s2 + s10 (c2), s13 (c7), s16 (c5, canceled, but c5's s5 is ACTIVE).
    assert await _get(client, loaded, "churn-cohorts?months=3&dateFrom=nonsense") == {
        "months": ["2026-01", "2026-02", "2026-03"],
        "cohorts": [
            {"month": "2026-01", "totalCustomers": 3, "retentionPercentages": [100, 66.67, 66.67]},
            {"month": "2026-02", "totalCustomers": 2, "retentionPercentages": [50, 50]},
            {"month": "2026-03", "totalCustomers": 3, "retentionPercentages": [100]},
        ],
    }
    year = await _get(client, loaded, "churn-cohorts")
    assert year["months"][0] == "2025-04" and year["months"][-1] == "2026-03"
    by_month = {c["month"]: c for c in year["cohorts"]}
    assert by_month["2025-04"] == {
        "month": "2025-04",
        "totalCustomers": 0,
        "retentionPercentages": [],
    }
    # October: c1 (s1) and c8 (s9 canceled in January, but s12 ACTIVE since December)
    assert by_month["2025-10"] == {
        "month": "2025-10",
        "totalCustomers": 2,
        "retentionPercentages": [100] * 6,
    }
    assert by_month["2025-06"]["retentionPercentages"] == [100] * 10  # c5 (s5)
    for months in ("abc", "0", "-3"):
        assert len((await _get(client, loaded, f"churn-cohorts?months={months}"))["months"]) == 12
    assert (await _get(client, loaded, "churn-cohorts?months=2x"))["months"] == [
        "2026-02",
        "2026-03",
    ]


async def test_ltv(client: httpx.AsyncClient, loaded: TenantCreds) -> None:
    # PAID subscription invoices: s1 20, s2 10, s5 120, s7 30, s8 30, s9 10 = 220 over 16
    # subscriptions = 13.75. Lifespans (days, to cancellation or now, at least 1): s1 161,
    # s2 12, s3 104, s4 64, s5 268, s6 42, s7 59, s8 121, s9 82, s10 3.083, s11 85,
    # s12 100, s13 14.5, s14 21, s15 28, s16 1 (6 hours) -> 1165.58 / 16 = 72.85 -> 73.
    body = await _get(client, loaded, "ltv?anything=ignored")
    assert (body["avgLtv"], body["avgLifespanDays"]) == (13.75, 73)
    assert body["byPlan"] == [
        {"planId": "pl_annual", "planName": "Annual", "avgLtv": 120, "avgLifespanDays": 268},
        {"planId": "pl_quarter", "planName": "Quarterly", "avgLtv": 30, "avgLifespanDays": 59},
        # s3, s8 (30), s12, s15: 353 / 4 = 88.25
        {"planId": "pl_pro", "planName": "Pro", "avgLtv": 7.5, "avgLifespanDays": 88},
        # s1 (20), s2 (10), s4, s9 (10), s10, s11, s13, s14: 442.58 / 8 = 55.32
        {"planId": "pl_basic", "planName": "Basic", "avgLtv": 5, "avgLifespanDays": 55},
        # s6 42 and s16 1: 21.5 rounds half up
        {"planId": "pl_weekly", "planName": "Weekly", "avgLtv": 0, "avgLifespanDays": 22},
    ]
    per = {
        e.pop("currency"): e
        for e in (await _get(client, loaded, "ltv?byCurrency=true"))["byCurrency"]
    }
    assert per["USD"] == {"subscriptions": 10, "totalPaid": 50, "avgLtv": 5, "usdRate": "1"}
    assert per["NGN"] == {"subscriptions": 2, "totalPaid": 15500, "avgLtv": 7750, "usdRate": "1550"}
    assert per["GHS"] == {"subscriptions": 1, "totalPaid": 0, "avgLtv": 0, "usdRate": "15.5"}
    assert set(per) == {"EUR", "GHS", "KES", "NGN", "UGX", "USD"}


async def test_tenant_rates_change_the_usd_figures(
    client: httpx.AsyncClient, loaded: TenantCreds
) -> None:
    r = await client.patch(
        "/api/tenants/me",
        headers=loaded.token_headers,
        json={"settings": {"fxRates": {"ngn": 1600, "CAD": "1.36"}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["fxRates"] == {"NGN": 1600, "CAD": "1.36"}
    # NGN 15,500 / 1600 = 9.6875 instead of 10; MRR NGN 31,000 / 1600 = 19.375
    body = await _get(client, loaded, "revenue?byCurrency=true")
    assert (body["totalRevenue"], body["mrr"], body["arr"]) == ("225.24", "122.38", "1468.50")
    assert next(e for e in body["byCurrency"] if e["currency"] == "NGN")["usdRate"] == "1600"
    r = await client.patch(
        "/api/tenants/me", headers=loaded.token_headers, json={"settings": {"fxRates": None}}
    )
    assert r.status_code == 200 and "fxRates" not in r.json()["settings"]
    assert (await _get(client, loaded, "revenue"))["mrr"] == "123.00"
