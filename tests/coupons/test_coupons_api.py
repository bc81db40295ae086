"""/api/coupons (contract coupons.md) on SQLite and PostgreSQL: the catalogue, apply and
remove with the contract's checks in order, and bad input, other tenants, missing auth."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.conftest import TenantCreds, assert_error

URL = "/api/coupons"


class Api:
    def __init__(self, client: httpx.AsyncClient, creds: TenantCreds) -> None:
        self.client = client
        self.h = creds.key_headers

    async def post(self, path: str, body: dict[str, Any], status: int = 201) -> Any:
        r = await self.client.post(path, headers=self.h, json=body)
        assert r.status_code == status, r.text
        return r.json()

    async def coupon(self, **body: Any) -> Any:
        body.setdefault("code", f"c{secrets.token_hex(3)}")
        body.setdefault("name", "Promo")
        body.setdefault("discountType", "PERCENTAGE")
        body.setdefault("discountValue", 10)
        return await self.post(URL, body)

    async def customer(self) -> str:
        body = {
            "externalId": f"k{secrets.token_hex(4)}",
            "email": "c@test.local",
            "currency": "USD",
        }
        return str((await self.post("/api/customers", body))["id"])

    async def subscription(self, customer: str, plan_id: str | None = None) -> Any:
        if plan_id is None:
            plan_id = await self.plan()
        body = {"customerId": customer, "planId": plan_id, "currency": "USD"}
        return await self.post("/api/subscriptions", body)

    async def plan(self) -> str:
        body = {
            "name": "Basic",
            "code": f"p{secrets.token_hex(3)}",
            "billingInterval": "MONTHLY",
            "billingTiming": "IN_ARREARS",
            "prices": [{"currency": "USD", "amount": 10}],
        }
        return str((await self.post("/api/plans", body))["id"])


async def test_create_read_update(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    api = Api(client, tenant)
    pct = await api.coupon(code="spring", discountValue="12.5", appliesToPlanIds=["p1"])
    assert (pct["code"], pct["discountType"], pct["discountValue"]) == (
        "SPRING",
        "PERCENTAGE",
        "12.5",
    )
    assert (pct["isActive"], pct["redemptionCount"], pct["maxRedemptions"]) == (True, 0, None)
    assert pct["appliesToPlanIds"] == ["p1"] and pct["expiresAt"] is None
    fixed = await api.coupon(
        code="five",
        discountType="FIXED_AMOUNT",
        discountValue=5.5,
        currency="usd",
        maxRedemptions=3,
    )
    assert (fixed["discountValue"], fixed["currency"], fixed["maxRedemptions"]) == ("5.5", "USD", 3)
    r = await client.patch(
        f"{URL}/{fixed['id']}",
        headers=api.h,
        json={"name": "Five off", "isActive": False, "expiresAt": "2031-01-01", "description": "d"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["isActive"], r.json()["description"]) == (
        "Five off",
        False,
        "d",
    )
    assert r.json()["expiresAt"] == "2031-01-01T00:00:00.000Z"
    r = await client.patch(f"{URL}/{fixed['id']}", headers=api.h, json={"expiresAt": None})
    assert r.json()["expiresAt"] is None  # null clears (Improve)
    r = await client.patch(f"{URL}/{fixed['id']}", headers=api.h, json={"code": "X"})
    assert_error(r, 400, "property")
    r = await client.get(f"{URL}?isActive=true", headers=api.h)
    assert [c["id"] for c in r.json()["data"]] == [pct["id"]]
    assert r.json()["data"][0]["_count"] == {"appliedCoupons": 0}
    r = await client.get(f"{URL}?isActive=no", headers=api.h)
    assert [c["id"] for c in r.json()["data"]] == [fixed["id"]]
    r = await client.get(f"{URL}?limit=1", headers=api.h)
    assert r.json()["meta"] == {"total": 2, "page": 1, "limit": 1, "totalPages": 2}
    assert r.json()["data"][0]["id"] == fixed["id"]  # newest first


async def test_create_bad_input(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    api = Api(client, tenant)
    await api.coupon(code="TAKEN")
    base = {"name": "N", "discountType": "PERCENTAGE", "discountValue": 5}
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({**base, "code": ""}, "code", "Validation failed"),
        ({**base, "code": "taken"}, "code", "A coupon with this code already exists"),
        (
            {**base, "code": "A1", "discountValue": 100.01},
            "discountValue",
            "Percentage discount must be between 0 and 100",
        ),
        (
            {**base, "code": "A2", "discountType": "FIXED_AMOUNT"},
            "currency",
            "Currency is required for fixed amount discounts",
        ),
        (
            {
                **base,
                "code": "A3",
                "discountType": "FIXED_AMOUNT",
                "currency": "USD",
                "discountValue": 5.555,
            },
            "discountValue",
            "Validation failed",
        ),
        ({**base, "code": "A4", "discountValue": -1}, "discountValue", "Validation failed"),
        ({**base, "code": "A5", "maxRedemptions": 1.5}, "maxRedemptions", "Validation failed"),
        ({**base, "code": "A6", "maxRedemptions": 0}, "maxRedemptions", "Validation failed"),
        ({**base, "code": "A7", "discountType": "BOGUS"}, "discountType", "Validation failed"),
        (
            {"code": "A8", "discountType": "PERCENTAGE", "discountValue": 5},
            "name",
            "Validation failed",
        ),
    ]
    for body, field, message in cases:
        r = await client.post(URL, headers=api.h, json=body)
        assert_error(r, 400)
        assert r.json()["message"] == message, (body, r.json())
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.json())
    r = await client.get(URL, headers=api.h)
    assert r.json()["meta"]["total"] == 1  # nothing created


async def test_apply_checks_in_order(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    api = Api(client, tenant)
    plan = await api.plan()
    other_plan = await api.plan()
    cust = await api.customer()
    sub = await api.subscription(cust, plan)
    coupon = await api.coupon(maxRedemptions=2, appliesToPlanIds=[plan])
    applied = await api.post(
        f"{URL}/apply",
        {
            "couponId": coupon["id"],
            "customerId": cust,
            "subscriptionId": sub["id"],
            "usesRemaining": 3,
        },
    )
    assert (applied["couponId"], applied["customerId"], applied["subscriptionId"]) == (
        coupon["id"],
        cust,
        sub["id"],
    )
    assert applied["usesRemaining"] == 3 and applied["amountOff"] is None
    assert applied["coupon"]["redemptionCount"] == 1 and applied["customer"]["id"] == cust

    async def refused(body: dict[str, Any], status: int, message: str) -> None:
        r = await client.post(f"{URL}/apply", headers=api.h, json=body)
        assert_error(r, status)
        assert r.json()["message"] == message, r.json()

    await refused(
        {"couponId": coupon["id"], "customerId": cust},
        400,
        "Coupon already applied to this customer",
    )
    cust2 = await api.customer()
    other_sub = await api.subscription(cust2, other_plan)
    await refused(
        {"couponId": coupon["id"], "customerId": cust2, "subscriptionId": other_sub["id"]},
        400,
        "Coupon does not apply to this plan",
    )
    await refused(
        {"couponId": coupon["id"], "customerId": cust2, "subscriptionId": sub["id"]},
        400,
        "Subscription does not belong to this customer",
    )
    await refused(
        {"couponId": coupon["id"], "customerId": cust2, "subscriptionId": "nope"},
        404,
        "Subscription not found",
    )
    await refused({"couponId": coupon["id"], "customerId": "nope"}, 404, "Customer not found")
    await refused({"couponId": "nope", "customerId": cust}, 404, "Coupon not found")
    await api.post(f"{URL}/apply", {"couponId": coupon["id"], "customerId": cust2})
    await refused(
        {"couponId": coupon["id"], "customerId": await api.customer()},
        400,
        "Coupon has reached maximum redemptions",
    )
    expired = await api.coupon(expiresAt="2001-01-01")
    await refused({"couponId": expired["id"], "customerId": cust}, 400, "Coupon has expired")
    inactive = await api.coupon()
    await client.patch(f"{URL}/{inactive['id']}", headers=api.h, json={"isActive": False})
    await refused(
        {"couponId": inactive["id"], "customerId": cust}, 400, "Coupon is no longer active"
    )
    for body, field in (
        ({"couponId": coupon["id"]}, "customerId"),
        ({"couponId": coupon["id"], "customerId": cust, "usesRemaining": 0}, "usesRemaining"),
    ):
        assert_error(await client.post(f"{URL}/apply", headers=api.h, json=body), 400, field)

    r = await client.get(f"{URL}/{coupon['id']}", headers=api.h)
    detail = r.json()
    assert detail["redemptionCount"] == 2 and detail["_count"] == {"appliedCoupons": 2}
    assert [a["customer"]["id"] for a in detail["appliedCoupons"]] == [cust2, cust]
    assert set(detail["appliedCoupons"][0]["customer"]) == {"id", "name", "email"}

    r = await client.delete(f"{URL}/applied/{applied['id']}", headers=api.h)
    assert r.status_code == 200 and r.json() == {"message": "Coupon removed from customer"}
    assert_error(await client.delete(f"{URL}/applied/{applied['id']}", headers=api.h), 404)
    r = await client.get(f"{URL}/{coupon['id']}", headers=api.h)
    assert r.json()["redemptionCount"] == 2  # never decremented
    # still applied to cust2: soft delete
    r = await client.delete(f"{URL}/{coupon['id']}", headers=api.h)
    assert r.status_code == 200 and r.json()["isActive"] is False and r.json()["id"] == coupon["id"]
    unused = await api.coupon()
    r = await client.delete(f"{URL}/{unused['id']}", headers=api.h)
    assert r.json() == {"message": "Coupon deleted"}
    assert_error(await client.get(f"{URL}/{unused['id']}", headers=api.h), 404)


async def test_other_tenant_and_no_auth(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    api = Api(client, tenant)
    coupon = await api.coupon()
    cust = await api.customer()
    applied = await api.post(f"{URL}/apply", {"couponId": coupon["id"], "customerId": cust})
    h = other_tenant.key_headers
    assert_error(await client.get(f"{URL}/{coupon['id']}", headers=h), 404)
    assert_error(await client.patch(f"{URL}/{coupon['id']}", headers=h, json={"name": "x"}), 404)
    assert_error(await client.delete(f"{URL}/{coupon['id']}", headers=h), 404)
    assert_error(await client.delete(f"{URL}/applied/{applied['id']}", headers=h), 404)
    r = await client.post(
        f"{URL}/apply", headers=h, json={"couponId": coupon["id"], "customerId": cust}
    )
    assert_error(r, 404)
    assert (await client.get(URL, headers=h)).json()["data"] == []
    for method, path in (
        ("POST", URL),
        ("GET", URL),
        ("GET", f"{URL}/{coupon['id']}"),
        ("PATCH", f"{URL}/{coupon['id']}"),
        ("DELETE", f"{URL}/{coupon['id']}"),
        ("POST", f"{URL}/apply"),
        ("DELETE", f"{URL}/applied/{applied['id']}"),
    ):
        r = await client.request(method, path, json={} if method in ("POST", "PATCH") else None)
        assert_error(r, 401)
    r = await client.get(f"{URL}/{coupon['id']}", headers=tenant.token_headers)
    assert r.json()["isActive"] is True and r.json()["_count"] == {"appliedCoupons": 1}
