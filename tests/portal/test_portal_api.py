"""Customer portal (contract portal.md) and its customer-scoped portal tokens, on SQLite
and PostgreSQL: every route with the tenant's credential and with a portal token, and the
token's isolation (other customer 404, other tenant 404, expired 401, other routes 401)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest

from novabilling.kit.tokens import PortalClaims
from novabilling.runtime import Runtime
from tests.conftest import TenantCreds, assert_error
from tests.payments.helpers import configure, paystack

INVOICE_KEYS = {
    "id",
    "invoiceNumber",
    "amount",
    "currency",
    "status",
    "dueDate",
    "paidAt",
    "pdfUrl",
    "createdAt",
}


async def _post(client: httpx.AsyncClient, path: str, h: dict[str, str], body: Any) -> Any:
    r = await client.post(path, headers=h, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _invoice(
    client: httpx.AsyncClient, h: dict[str, str], customer_id: str, amount: str, currency: str
) -> dict[str, Any]:
    """A PENDING (finalized) one-line invoice."""
    body = {
        "customerId": customer_id,
        "currency": currency,
        "dueDate": "2030-01-01",
        "items": [{"description": "Service", "quantity": 1, "unitAmount": amount}],
    }
    invoice = await _post(client, "/api/invoices", h, body)
    return dict(await _post(client, f"/api/invoices/{invoice['id']}/finalize", h, {}))


async def _world(client: httpx.AsyncClient, creds: TenantCreds, external_id: str) -> dict[str, Any]:
    """Customer ``external_id`` (NGN) with: a TRIALING subscription (plan with NGN and USD
    prices), a CANCELED one, an ACTIVE one (yearly plan, billed in arrears), invoices PAID
    1,500.50 NGN + PAID 20.25 USD (manual payments), PENDING 800 NGN, voided 300 NGN; and
    a second customer with an invoice."""
    h = creds.key_headers
    plan = await _post(
        client,
        "/api/plans",
        h,
        {
            "name": "Pro",
            "code": f"pro_{secrets.token_hex(3)}",
            "billingInterval": "MONTHLY",
            "prices": [{"currency": "NGN", "amount": 5000}, {"currency": "USD", "amount": 20}],
        },
    )
    customer = await _post(
        client,
        "/api/customers",
        h,
        {
            "externalId": external_id,
            "email": "ada@test.local",
            "name": "Ada",
            "currency": "NGN",
            "country": "NG",
        },
    )
    sub_body = {"customerId": customer["id"], "planId": plan["id"], "currency": "NGN"}
    canceled = await _post(client, "/api/subscriptions", h, {**sub_body, "trialDays": 7})
    await _post(client, f"/api/subscriptions/{canceled['id']}/cancel", h, {"cancelAt": "now"})
    trialing = await _post(client, "/api/subscriptions", h, {**sub_body, "trialDays": 14})
    # IN_ARREARS plan (the default): ACTIVE at once, nothing invoiced before its period end
    basic = await _post(
        client,
        "/api/plans",
        h,
        {
            "name": "Basic",
            "code": f"basic_{secrets.token_hex(3)}",
            "billingInterval": "YEARLY",
            "prices": [{"currency": "NGN", "amount": 1000}],
        },
    )
    active = await _post(
        client,
        "/api/subscriptions",
        h,
        {"customerId": customer["id"], "planId": basic["id"], "currency": "NGN"},
    )
    paid = await _invoice(client, h, customer["id"], "1500.50", "NGN")
    await _post(client, f"/api/invoices/{paid['id']}/mark-paid", h, {"paymentMethod": "cash"})
    paid_usd = await _invoice(client, h, customer["id"], "20.25", "USD")
    await _post(client, f"/api/invoices/{paid_usd['id']}/mark-paid", h, {})
    pending = await _invoice(client, h, customer["id"], "800", "NGN")
    voided = await _invoice(client, h, customer["id"], "300", "NGN")
    await _post(client, f"/api/invoices/{voided['id']}/void", h, {})
    other = await _post(
        client,
        "/api/customers",
        h,
        {"externalId": f"{external_id}-other", "email": "b@test.local", "currency": "NGN"},
    )
    other_invoice = await _invoice(client, h, other["id"], "99", "NGN")
    return {
        "plan": plan,
        "customer": customer,
        "trialing": trialing,
        "active": active,
        "canceled": canceled,
        "paid": paid,
        "paid_usd": paid_usd,
        "pending": pending,
        "voided": voided,
        "other": other,
        "other_invoice": other_invoice,
    }


async def _token(
    client: httpx.AsyncClient, creds: TenantCreds, external_id: str, **body: Any
) -> str:
    r = await client.post(
        f"/api/portal/customers/{external_id}/token", headers=creds.key_headers, json=body
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_billing_view(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    world = await _world(client, tenant, "cus_a")
    token = await _token(client, tenant, "cus_a")
    for headers in (tenant.key_headers, tenant.token_headers, _bearer(token)):
        r = await client.get("/api/portal/customers/cus_a/billing", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["customer"] == {
            "id": world["customer"]["id"],
            "externalId": "cus_a",
            "name": "Ada",
            "email": "ada@test.local",
            "currency": "NGN",
            "country": "NG",
        }
        # only ACTIVE / TRIALING / PAUSED subscriptions, newest first: not the canceled one
        assert [(s["id"], s["status"]) for s in body["subscriptions"]] == [
            (world["active"]["id"], "ACTIVE"),
            (world["trialing"]["id"], "TRIALING"),
        ]
        assert body["subscriptions"][0]["plan"]["billingInterval"] == "YEARLY"
        sub = body["subscriptions"][1]
        assert sub["status"] == "TRIALING" and sub["trialEnd"] is not None
        assert sub["plan"]["name"] == "Pro" and sub["plan"]["billingInterval"] == "MONTHLY"
        assert sorted((p["currency"], p["amount"]) for p in sub["plan"]["prices"]) == [
            ("NGN", "5000"),
            ("USD", "20"),
        ]
        # newest first, money as JSON numbers
        invoices = body["invoices"]
        assert [i["id"] for i in invoices] == [
            world[k]["id"] for k in ("voided", "pending", "paid_usd", "paid")
        ]
        assert all(set(i) == INVOICE_KEYS for i in invoices)
        assert [(i["amount"], i["status"]) for i in invoices] == [
            (300, "CANCELED"),
            (800, "PENDING"),
            (20.25, "PAID"),
            (1500.5, "PAID"),
        ]
        payments = body["payments"]
        assert [(p["amount"], p["currency"], p["status"], p["provider"]) for p in payments] == [
            (20.25, "USD", "SUCCEEDED", "manual"),
            (1500.5, "NGN", "SUCCEEDED", "cash"),
        ]
        assert payments[1]["invoiceNumber"] == world["paid"]["invoiceNumber"]
        # 1500.50 + 20.25 = 1520.75 (currencies mixed, as the contract says)
        assert body["summary"] == {
            "activeSubscriptions": 1,
            "totalSpent": 1520.75,
            "currency": "NGN",
            "pendingInvoices": 1,
        }


async def test_subscriptions_invoices_payments(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    world = await _world(client, tenant, "cus_a")
    token = await _token(client, tenant, "cus_a")
    for headers in (tenant.key_headers, _bearer(token)):
        r = await client.get("/api/portal/customers/cus_a/subscriptions", headers=headers)
        assert r.status_code == 200, r.text
        subs = r.json()
        assert [(s["id"], s["status"]) for s in subs] == [
            (world["active"]["id"], "ACTIVE"),
            (world["trialing"]["id"], "TRIALING"),
            (world["canceled"]["id"], "CANCELED"),
        ]
        assert subs[1]["plan"]["id"] == world["plan"]["id"]
        assert len(subs[1]["plan"]["prices"]) == 2

        r = await client.get("/api/portal/customers/cus_a/invoices", headers=headers)
        assert r.status_code == 200
        assert r.json()["meta"] == {"total": 4, "page": 1, "limit": 20, "totalPages": 1}
        r = await client.get(
            "/api/portal/customers/cus_a/invoices?status=PAID&limit=1&page=2", headers=headers
        )
        page = r.json()
        assert page["meta"] == {"total": 2, "page": 2, "limit": 1, "totalPages": 2}
        assert [i["id"] for i in page["data"]] == [world["paid"]["id"]]
        assert page["data"][0]["amount"] == 1500.5

        r = await client.get("/api/portal/customers/cus_a/payments", headers=headers)
        assert r.status_code == 200
        payments = r.json()
        assert payments["meta"]["total"] == 2
        assert [(p["invoiceId"], p["amount"]) for p in payments["data"]] == [
            (world["paid_usd"]["id"], 20.25),
            (world["paid"]["id"], 1500.5),
        ]
        assert set(payments["data"][0]) == {
            "id",
            "amount",
            "currency",
            "status",
            "provider",
            "invoiceId",
            "invoiceNumber",
            "createdAt",
        }


async def test_unknown_status_filter_is_400(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    await _world(client, tenant, "cus_a")
    r = await client.get(
        "/api/portal/customers/cus_a/invoices?status=BOGUS", headers=tenant.key_headers
    )
    assert_error(r, 400, "status")


async def test_unknown_customer_is_404(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    h = tenant.key_headers
    for path in ("billing", "subscriptions", "invoices", "payments"):
        r = await client.get(f"/api/portal/customers/nobody/{path}", headers=h)
        assert_error(r, 404)
        assert r.json()["message"] == "Customer not found"
    r = await client.post("/api/portal/customers/nobody/invoices/x/checkout", headers=h)
    assert r.json()["message"] == "Customer not found"
    r = await client.post("/api/portal/customers/nobody/token", headers=h)
    assert_error(r, 404)
    r = await client.post("/api/customers/nobody/portal-token", headers=h)
    assert_error(r, 404)


async def test_missing_or_wrong_auth_is_401(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    await _world(client, tenant, "cus_a")
    for path in ("billing", "subscriptions", "invoices", "payments"):
        assert_error(await client.get(f"/api/portal/customers/cus_a/{path}"), 401)
        r = await client.get(f"/api/portal/customers/cus_a/{path}", headers=_bearer("a.b.c"))
        assert_error(r, 401)
    assert_error(await client.post("/api/portal/customers/cus_a/token"), 401)
    assert_error(await client.post("/api/portal/customers/cus_a/invoices/x/checkout"), 401)


async def test_token_shape_and_lifetime(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    world = await _world(client, tenant, "cus_a")
    h = tenant.key_headers
    before = runtime.clock.now()
    r = await client.post("/api/portal/customers/cus_a/token", headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"token", "expiresAt", "customerId", "externalId"}
    assert body["customerId"] == world["customer"]["id"] and body["externalId"] == "cus_a"
    # default NB_PORTAL_TOKEN_MINUTES = 60
    expires = runtime.signer.read_portal(body["token"], now=before)
    assert expires.customer_id == world["customer"]["id"]
    later = before + timedelta(minutes=59)
    runtime.signer.read_portal(body["token"], now=later)
    r = await client.post(
        f"/api/customers/{world['customer']['id']}/portal-token",
        headers=tenant.token_headers,
        json={"expiresInMinutes": 5},
    )
    assert r.status_code == 201, r.text
    assert r.json()["externalId"] == "cus_a"
    short = r.json()["token"]
    assert (
        await client.get("/api/portal/customers/cus_a/billing", headers=_bearer(short))
    ).status_code == 200


@pytest.mark.parametrize("minutes", [0, 1441, "ten", 1.5, True])
async def test_token_bad_lifetime_is_400(
    client: httpx.AsyncClient,
    shared_tenant: TenantCreds,
    shared_made: dict[str, Any],
    minutes: Any,
) -> None:
    if "world" not in shared_made:
        shared_made["world"] = await _world(client, shared_tenant, "cus_a")
    r = await client.post(
        "/api/portal/customers/cus_a/token",
        headers=shared_tenant.key_headers,
        json={"expiresInMinutes": minutes},
    )
    assert_error(r, 400, "expiresInMinutes")


async def test_token_reaches_only_its_customer(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    world = await _world(client, tenant, "cus_a")
    token = _bearer(await _token(client, tenant, "cus_a"))
    other = world["other"]["externalId"]
    for path in ("billing", "subscriptions", "invoices", "payments"):
        r = await client.get(f"/api/portal/customers/{other}/{path}", headers=token)
        assert_error(r, 404)
        assert r.json()["message"] == "Customer not found"
        r = await client.get(f"/api/portal/customers/nobody/{path}", headers=token)
        assert_error(r, 404)
    r = await client.post(
        f"/api/portal/customers/{other}/invoices/{world['other_invoice']['id']}/checkout",
        headers=token,
    )
    assert_error(r, 404)
    # another customer's invoice through its own externalId: Invoice not found
    r = await client.post(
        f"/api/portal/customers/cus_a/invoices/{world['other_invoice']['id']}/checkout",
        headers=token,
    )
    assert_error(r, 404)
    assert r.json()["message"] == "Invoice not found"


async def test_token_is_refused_everywhere_else(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    world = await _world(client, tenant, "cus_a")
    token = _bearer(await _token(client, tenant, "cus_a"))
    customer_id = world["customer"]["id"]
    for method, path in (
        ("GET", f"/api/customers/{customer_id}"),
        ("GET", "/api/customers"),
        ("GET", "/api/invoices"),
        ("GET", f"/api/invoices/{world['pending']['id']}"),
        ("GET", "/api/analytics/revenue"),
        ("GET", "/api/tenants/me"),
        ("POST", f"/api/invoices/{world['pending']['id']}/mark-paid"),
        ("POST", "/api/portal/customers/cus_a/token"),
        ("POST", f"/api/customers/{customer_id}/portal-token"),
    ):
        r = await client.request(method, path, headers=token)
        assert_error(r, 401)


async def test_token_of_another_tenant_is_404(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    """Same externalId in two tenants: each token opens its own tenant's customer only."""
    mine = await _world(client, tenant, "cus_a")
    theirs = await _world(client, other_tenant, "cus_a")
    their_token = _bearer(await _token(client, other_tenant, "cus_a"))
    r = await client.get("/api/portal/customers/cus_a/billing", headers=their_token)
    assert r.status_code == 200
    assert r.json()["customer"]["id"] == theirs["customer"]["id"] != mine["customer"]["id"]
    # my invoice id through their token: not found
    r = await client.post(
        f"/api/portal/customers/cus_a/invoices/{mine['pending']['id']}/checkout",
        headers=their_token,
    )
    assert_error(r, 404)
    assert r.json()["message"] == "Invoice not found"
    # the other tenant's API key on my customer's externalId-only: their own data
    r = await client.get(
        f"/api/portal/customers/{mine['other']['externalId']}/billing",
        headers=other_tenant.key_headers,
    )
    assert r.json()["customer"]["id"] == theirs["other"]["id"]
    # a token for a customer of mine issued with their key does not exist: 404
    r = await client.post(
        f"/api/customers/{mine['customer']['id']}/portal-token", headers=other_tenant.key_headers
    )
    assert_error(r, 404)


async def test_expired_or_forged_token_is_401(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    world = await _world(client, tenant, "cus_a")
    claims = PortalClaims(tenant.id, world["customer"]["id"], "cus_a")
    now = runtime.clock.now()
    expired = runtime.signer.portal_token(
        claims, now=now - timedelta(hours=2), expires=now - timedelta(seconds=1)
    )
    r = await client.get("/api/portal/customers/cus_a/billing", headers=_bearer(expired))
    assert_error(r, 401)
    # an access token's signature does not make a portal token
    forged = runtime.signer.access_token(tenant_id=tenant.id, email="x@test.local", now=now)
    r = await client.get("/api/portal/customers/cus_a/billing", headers=_bearer(forged))
    assert r.status_code == 200  # an access token is a data credential: whole tenant
    tampered = (await _token(client, tenant, "cus_a"))[:-2] + "xx"
    r = await client.get("/api/portal/customers/cus_a/billing", headers=_bearer(tampered))
    assert_error(r, 401)


async def test_recreated_customer_is_not_reached(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    h = tenant.key_headers
    customer = await _post(
        client,
        "/api/customers",
        h,
        {"externalId": "cus_z", "email": "z@t.local", "currency": "USD"},
    )
    token = _bearer(await _token(client, tenant, "cus_z"))
    r = await client.delete(f"/api/customers/{customer['id']}", headers=h)
    assert r.status_code == 200
    await _post(
        client,
        "/api/customers",
        h,
        {"externalId": "cus_z", "email": "z2@t.local", "currency": "USD"},
    )
    r = await client.get("/api/portal/customers/cus_z/billing", headers=token)
    assert_error(r, 404)


async def test_checkout(client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime) -> None:
    world = await _world(client, tenant, "cus_a")
    token = _bearer(await _token(client, tenant, "cus_a"))
    base = "/api/portal/customers/cus_a/invoices"
    r = await client.post(f"{base}/{world['paid']['id']}/checkout", headers=token)
    assert_error(r, 400)
    assert r.json()["message"] == "Invoice is already paid"
    r = await client.post(f"{base}/{world['voided']['id']}/checkout", headers=token)
    assert r.json()["message"] == "Invoice has been voided"
    r = await client.post(f"{base}/{world['pending']['id']}/checkout", headers=token)
    assert_error(r, 400)
    assert r.json()["message"] == "No active payment provider configured"

    paystack(runtime)
    await configure(client, tenant.key_headers)
    r = await client.post(
        f"{base}/{world['pending']['id']}/checkout",
        headers=token,
        json={"callbackUrl": "https://shop.example/back"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {
        "checkoutUrl",
        "paymentId",
        "provider",
        "invoiceNumber",
        "amount",
        "currency",
    }
    assert body["provider"] == "paystack" and body["checkoutUrl"].startswith("http")
    assert body["invoiceNumber"] == world["pending"]["invoiceNumber"]
    assert (body["amount"], body["currency"]) == (800, "NGN")
    r = await client.get("/api/portal/customers/cus_a/payments", headers=token)
    processing = [p for p in r.json()["data"] if p["id"] == body["paymentId"]]
    assert processing and processing[0]["status"] == "PROCESSING"
    assert processing[0]["amount"] == 800


async def test_checkout_with_a_portal_token_honours_idempotency_key(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    world = await _world(client, tenant, "cus_a")
    token = _bearer(await _token(client, tenant, "cus_a"))
    paystack(runtime)
    await configure(client, tenant.key_headers)
    url = f"/api/portal/customers/cus_a/invoices/{world['pending']['id']}/checkout"
    headers = {**token, "Idempotency-Key": "portal-checkout-1"}
    first = await client.post(url, headers=headers, json={"callbackUrl": "https://a.example/"})
    assert first.status_code == 201, first.text
    again = await client.post(url, headers=headers, json={"callbackUrl": "https://a.example/"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = await client.post(url, headers=headers, json={"callbackUrl": "https://b.example/"})
    assert_error(other, 409)
