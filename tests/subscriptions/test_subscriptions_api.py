"""/api/subscriptions endpoints (contract subscriptions.md), on SQLite and PostgreSQL:
success, 400 naming the field, another tenant's id -> 404, no auth -> 401, illegal
transitions -> 400."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import TenantCreds, assert_error
from tests.subscriptions.helpers import make_customer, make_plan, subscribe

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIELDS = {
    "id", "customerId", "planId", "externalId", "previousPlanId", "paymentMethodId",
    "status", "currency", "billingTiming", "currentPeriodStart", "currentPeriodEnd",
    "cancelAt", "canceledAt", "trialStart", "trialEnd", "startedAt", "createdAt",
    "updatedAt", "metadata", "lastProgressiveBillingAt",
}  # fmt: skip


@pytest.fixture
async def setup(client: httpx.AsyncClient, tenant: TenantCreds) -> dict[str, Any]:
    customer = await make_customer(client, tenant)
    plan = await make_plan(client, tenant)
    return {"customer": customer, "plan": plan}


@pytest.fixture
async def shared_setup(client: httpx.AsyncClient, shared_tenant: TenantCreds) -> dict[str, Any]:
    """``setup`` in the module's shared tenant, for the validation tests."""
    customer = await make_customer(client, shared_tenant)
    plan = await make_plan(client, shared_tenant)
    return {"customer": customer, "plan": plan}


async def _sub(client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]) -> Any:
    return await subscribe(client, tenant, setup["customer"], setup["plan"])


# --- create ----------------------------------------------------------------------------


async def test_create_active_embeds_customer_and_plan_without_prices(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    sub = await subscribe(
        client, tenant, setup["customer"], setup["plan"],
        startDate="2026-01-31T10:00:00Z", metadata={"seat": 3}, externalId="ext-1",
    )  # fmt: skip
    assert set(sub) >= FIELDS
    assert sub["status"] == "ACTIVE" and sub["currency"] == "USD"
    assert sub["billingTiming"] == "IN_ADVANCE"
    assert sub["currentPeriodStart"] == "2026-01-31T10:00:00.000Z"
    assert sub["currentPeriodEnd"] == "2026-02-28T10:00:00.000Z"
    assert sub["trialStart"] is None and sub["trialEnd"] is None
    assert sub["cancelAt"] is None and sub["previousPlanId"] is None
    assert sub["metadata"] == {"seat": 3} and sub["externalId"] == "ext-1"
    assert TIMESTAMP.match(sub["createdAt"]) and TIMESTAMP.match(sub["updatedAt"])
    assert sub["customer"]["id"] == setup["customer"]["id"]
    assert sub["customer"]["email"] == setup["customer"]["email"]
    assert sub["plan"]["id"] == setup["plan"]["id"] and "prices" not in sub["plan"]


async def test_create_with_trial_is_trialing_until_trial_end(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    sub = await subscribe(
        client, tenant, setup["customer"], setup["plan"],
        trialDays=14, startDate="2026-03-01",
    )  # fmt: skip
    assert sub["status"] == "TRIALING"
    assert sub["trialStart"] == "2026-03-01T00:00:00.000Z"
    assert sub["trialEnd"] == "2026-03-15T00:00:00.000Z"
    assert sub["currentPeriodEnd"] == sub["trialEnd"]


async def test_create_zero_trial_days_is_active(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    sub = await subscribe(client, tenant, setup["customer"], setup["plan"], trialDays=0)
    assert sub["status"] == "ACTIVE" and sub["trialEnd"] is None


async def test_create_import_helpers(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    sub = await subscribe(
        client, tenant, setup["customer"], setup["plan"],
        startDate="2025-01-01", currentPeriodEnd="2025-01-20T00:00:00+00:00",
        createdAt="2024-12-31", status="CANCELED", canceledAt="2025-01-10",
    )  # fmt: skip
    assert sub["status"] == "CANCELED"
    assert sub["currentPeriodEnd"] == "2025-01-20T00:00:00.000Z"
    assert sub["createdAt"] == "2024-12-31T00:00:00.000Z"
    assert sub["canceledAt"] == "2025-01-10T00:00:00.000Z"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"customerId": None}, "customerId"),
        ({"customerId": ""}, "customerId"),
        ({"planId": ""}, "planId"),
        ({"currency": "DOLLAR"}, "currency"),
        ({"currency": None}, "currency"),
        ({"trialDays": 366}, "trialDays"),
        ({"trialDays": -1}, "trialDays"),
        ({"trialDays": 1.5}, "trialDays"),
        ({"startDate": "yesterday"}, "startDate"),
        ({"status": "ENDED"}, "status"),
        ({"metadata": "text"}, "metadata"),
        ({"coupon": "X"}, "property"),
    ],
)
async def test_create_validation_names_the_field(
    client: httpx.AsyncClient,
    shared_tenant: TenantCreds,
    shared_setup: dict[str, Any],
    patch: dict[str, Any],
    field: str,
) -> None:
    body = {"customerId": shared_setup["customer"]["id"], "planId": shared_setup["plan"]["id"]}
    body |= {"currency": "USD", **patch}
    body = {k: v for k, v in body.items() if v is not None}
    r = await client.post("/api/subscriptions", headers=shared_tenant.key_headers, json=body)
    assert_error(r, 400, field)


async def test_create_period_end_before_start_is_400(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, shared_setup: dict[str, Any]
) -> None:
    body = {
        "customerId": shared_setup["customer"]["id"],
        "planId": shared_setup["plan"]["id"],
        "currency": "USD",
        "startDate": "2025-02-01",
        "currentPeriodEnd": "2025-01-01",
    }
    r = await client.post("/api/subscriptions", headers=shared_tenant.key_headers, json=body)
    assert_error(r, 400, "currentPeriodEnd")


async def test_create_unknown_customer_404_unknown_or_inactive_plan_400(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    base = {"customerId": setup["customer"]["id"], "planId": setup["plan"]["id"], "currency": "USD"}
    r = await client.post(
        "/api/subscriptions", headers=tenant.key_headers, json={**base, "customerId": "nope"}
    )
    assert_error(r, 404)
    assert r.json()["message"] == "Customer not found"
    r = await client.post(
        "/api/subscriptions", headers=tenant.key_headers, json={**base, "planId": "nope"}
    )
    assert_error(r, 400, "planId")
    inactive = await make_plan(client, tenant)
    r = await client.patch(
        f"/api/plans/{inactive['id']}", headers=tenant.key_headers, json={"isActive": False}
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/api/subscriptions", headers=tenant.key_headers, json={**base, "planId": inactive["id"]}
    )
    assert_error(r, 400, "planId")


async def test_create_without_price_in_currency_is_400_currency(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    body = {"customerId": setup["customer"]["id"], "planId": setup["plan"]["id"], "currency": "KES"}
    r = await client.post("/api/subscriptions", headers=tenant.key_headers, json=body)
    assert_error(r, 400, "currency")
    ugx = await client.post(
        "/api/subscriptions", headers=tenant.key_headers, json={**body, "currency": "ugx"}
    )
    assert ugx.status_code == 201 and ugx.json()["currency"] == "UGX"


async def test_create_duplicate_external_id_is_409(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    await subscribe(client, tenant, setup["customer"], setup["plan"], externalId="dup")
    body = {
        "customerId": setup["customer"]["id"],
        "planId": setup["plan"]["id"],
        "currency": "USD",
        "externalId": "dup",
    }
    r = await client.post("/api/subscriptions", headers=tenant.key_headers, json=body)
    assert_error(r, 409)


async def test_create_with_other_tenants_customer_or_plan(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    other_tenant: TenantCreds,
    setup: dict[str, Any],
) -> None:
    mine = await make_plan(client, other_tenant)
    body = {"customerId": setup["customer"]["id"], "planId": mine["id"], "currency": "USD"}
    r = await client.post("/api/subscriptions", headers=other_tenant.key_headers, json=body)
    assert_error(r, 404)
    r = await client.post(
        "/api/subscriptions", headers=tenant.key_headers, json={**body, "planId": mine["id"]}
    )
    assert_error(r, 400, "planId")


# --- read, list, update ----------------------------------------------------------------


async def test_get_embeds_plan_with_prices_and_invoices(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    sub = await _sub(client, tenant, setup)
    r = await client.get(f"/api/subscriptions/{sub['id']}", headers=tenant.token_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == sub["id"] and body["customer"]["id"] == setup["customer"]["id"]
    assert {p["currency"] for p in body["plan"]["prices"]} == {"USD", "UGX"}
    assert isinstance(body["invoices"], list)


async def test_unknown_and_other_tenants_ids_are_404(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    other_tenant: TenantCreds,
    setup: dict[str, Any],
) -> None:
    sub = await _sub(client, tenant, setup)
    headers = other_tenant.key_headers
    calls = [
        ("GET", "", None),
        ("PATCH", "", {"metadata": {}}),
        ("POST", "/cancel", {"cancelAt": "now"}),
        ("POST", "/pause", None),
        ("POST", "/resume", None),
        ("POST", "/change-plan", {"newPlanId": setup["plan"]["id"]}),
    ]
    for sub_id in (sub["id"], "nonexistent_id"):
        for method, suffix, body in calls:
            r = await client.request(
                method, f"/api/subscriptions/{sub_id}{suffix}", headers=headers, json=body
            )
            assert_error(r, 404)
    listed = await client.get("/api/subscriptions", headers=headers)
    assert listed.json()["meta"]["total"] == 0


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("POST", ""),
        ("GET", ""),
        ("GET", "/x"),
        ("PATCH", "/x"),
        ("POST", "/x/cancel"),
        ("POST", "/x/pause"),
        ("POST", "/x/resume"),
        ("POST", "/x/change-plan"),
    ],
)
async def test_no_auth_is_401_before_validation(
    client: httpx.AsyncClient, method: str, suffix: str
) -> None:
    r = await client.request(method, f"/api/subscriptions{suffix}", json={"bad": 1})
    assert_error(r, 401)


async def test_list_filters_and_lenient_paging(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    first = await _sub(client, tenant, setup)
    other_plan = await make_plan(client, tenant)
    other_customer = await make_customer(client, tenant)
    second = await subscribe(client, tenant, other_customer, other_plan, trialDays=7)
    h = tenant.key_headers
    r = await client.get("/api/subscriptions", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["meta"] == {"total": 2, "page": 1, "limit": 20, "totalPages": 1}
    assert [s["id"] for s in body["data"]] == [second["id"], first["id"]]  # newest first
    assert "prices" in body["data"][0]["plan"] and "customer" in body["data"][0]
    by_status = await client.get("/api/subscriptions?status=TRIALING", headers=h)
    assert [s["id"] for s in by_status.json()["data"]] == [second["id"]]
    by_customer = await client.get(
        f"/api/subscriptions?customerId={setup['customer']['id']}", headers=h
    )
    assert [s["id"] for s in by_customer.json()["data"]] == [first["id"]]
    by_plan = await client.get(f"/api/subscriptions?planId={other_plan['id']}", headers=h)
    assert [s["id"] for s in by_plan.json()["data"]] == [second["id"]]
    lenient = await client.get("/api/subscriptions?page=0&limit=abc&foo=bar", headers=h)
    assert lenient.status_code == 200
    assert lenient.json()["meta"] == {"total": 2, "page": 1, "limit": 20, "totalPages": 1}
    capped = await client.get("/api/subscriptions?limit=1000", headers=h)
    assert capped.json()["meta"]["limit"] == 100
    paged = await client.get("/api/subscriptions?limit=1&page=2", headers=h)
    assert [s["id"] for s in paged.json()["data"]] == [first["id"]]
    assert paged.json()["meta"]["totalPages"] == 2


async def test_list_unknown_status_is_400(
    client: httpx.AsyncClient, shared_tenant: TenantCreds
) -> None:
    r = await client.get("/api/subscriptions?status=ENDED", headers=shared_tenant.key_headers)
    assert_error(r, 400, "status")


async def test_patch_replaces_metadata_only(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    sub = await subscribe(client, tenant, setup["customer"], setup["plan"], metadata={"a": 1})
    url = f"/api/subscriptions/{sub['id']}"
    r = await client.patch(url, headers=tenant.key_headers, json={"metadata": {"b": [1, 2]}})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"] == {"b": [1, 2]} and "customer" in r.json()
    r = await client.patch(url, headers=tenant.key_headers, json={"status": "PAUSED"})
    assert_error(r, 400, "property")
    r = await client.patch(url, headers=tenant.key_headers, json={"metadata": 5})
    assert_error(r, 400, "metadata")
    r = await client.patch(url, headers=tenant.key_headers, json={})
    assert_error(r, 400, "metadata")


# --- actions ---------------------------------------------------------------------------


async def test_cancel_now_and_at_period_end(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    later = await _sub(client, tenant, setup)
    r = await client.post(
        f"/api/subscriptions/{later['id']}/cancel",
        headers=tenant.key_headers,
        json={"cancelAt": "period_end"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "ACTIVE"
    assert r.json()["cancelAt"] == later["currentPeriodEnd"]
    now = await _sub(client, tenant, setup)
    url = f"/api/subscriptions/{now['id']}/cancel"
    r = await client.post(url, headers=tenant.key_headers, json={"cancelAt": "now"})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "CANCELED" and TIMESTAMP.match(r.json()["canceledAt"])
    again = await client.post(url, headers=tenant.key_headers, json={"cancelAt": "now"})
    assert_error(again, 400)
    assert "CANCELED" in again.json()["message"]


@pytest.mark.parametrize("body", [{}, {"cancelAt": "tomorrow"}, {"cancelAt": None}])
async def test_cancel_body_is_validated(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any], body: dict[str, Any]
) -> None:
    sub = await _sub(client, tenant, setup)
    r = await client.post(
        f"/api/subscriptions/{sub['id']}/cancel", headers=tenant.key_headers, json=body
    )
    assert_error(r, 400, "cancelAt")


async def test_pause_and_resume_toggle(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    sub = await _sub(client, tenant, setup)
    base = f"/api/subscriptions/{sub['id']}"
    h = tenant.key_headers
    bad_resume = await client.post(f"{base}/resume", headers=h)
    assert_error(bad_resume, 400)
    assert "ACTIVE" in bad_resume.json()["message"]
    paused = await client.post(f"{base}/pause", headers=h)
    assert paused.status_code == 201 and paused.json()["status"] == "PAUSED"
    assert_error(await client.post(f"{base}/pause", headers=h), 400)
    resumed = await client.post(f"{base}/resume", headers=h)
    assert resumed.status_code == 201 and resumed.json()["status"] == "ACTIVE"
    assert "customer" in resumed.json() and "plan" in resumed.json()


async def test_illegal_transitions_from_trialing_and_canceled(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    h = tenant.key_headers
    trial = await subscribe(client, tenant, setup["customer"], setup["plan"], trialDays=3)
    assert_error(await client.post(f"/api/subscriptions/{trial['id']}/pause", headers=h), 400)
    assert_error(await client.post(f"/api/subscriptions/{trial['id']}/resume", headers=h), 400)
    done = await _sub(client, tenant, setup)
    base = f"/api/subscriptions/{done['id']}"
    await client.post(f"{base}/cancel", headers=h, json={"cancelAt": "now"})
    for action, body in (
        ("pause", None),
        ("resume", None),
        ("cancel", {"cancelAt": "period_end"}),
        ("change-plan", {"newPlanId": setup["plan"]["id"]}),
    ):
        r = await client.post(f"{base}/{action}", headers=h, json=body)
        assert_error(r, 400)
        assert "CANCELED" in r.json()["message"]


async def test_change_plan_upgrade_is_immediate(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    sub = await _sub(client, tenant, setup)
    bigger = await make_plan(client, tenant, usd="50")
    r = await client.post(
        f"/api/subscriptions/{sub['id']}/change-plan",
        headers=tenant.key_headers,
        json={"newPlanId": bigger["id"], "prorate": True},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["planId"] == bigger["id"] and body["plan"]["id"] == bigger["id"]
    assert body["previousPlanId"] == setup["plan"]["id"]
    assert body["currentPeriodStart"] >= sub["currentPeriodStart"]


async def test_change_plan_downgrade_is_scheduled(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    sub = await subscribe(client, tenant, setup["customer"], setup["plan"], metadata={"k": "v"})
    smaller = await make_plan(client, tenant, usd="10")
    url = f"/api/subscriptions/{sub['id']}"
    r = await client.post(
        f"{url}/change-plan", headers=tenant.key_headers, json={"newPlanId": smaller["id"]}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["planId"] == setup["plan"]["id"] and body["previousPlanId"] is None
    assert body["metadata"] == {
        "k": "v",
        "pendingPlanChange": {"newPlanId": smaller["id"], "effectiveAt": sub["currentPeriodEnd"]},
    }
    # Replacing metadata keeps the scheduled change visible.
    patched = await client.patch(url, headers=tenant.key_headers, json={"metadata": {}})
    assert patched.json()["metadata"]["pendingPlanChange"]["newPlanId"] == smaller["id"]


async def test_change_plan_errors(
    client: httpx.AsyncClient, tenant: TenantCreds, setup: dict[str, Any]
) -> None:
    sub = await _sub(client, tenant, setup)
    url = f"/api/subscriptions/{sub['id']}/change-plan"
    h = tenant.key_headers
    assert_error(await client.post(url, headers=h, json={}), 400, "newPlanId")
    assert_error(await client.post(url, headers=h, json={"newPlanId": ""}), 400, "newPlanId")
    assert_error(await client.post(url, headers=h, json={"newPlanId": "nope"}), 400, "newPlanId")
    r = await client.post(url, headers=h, json={"newPlanId": "x", "prorate": "maybe"})
    assert_error(r, 400, "prorate")
    no_usd = await make_plan(client, tenant, usd=None)
    assert_error(
        await client.post(url, headers=h, json={"newPlanId": no_usd["id"]}), 400, "currency"
    )
