"""GET/PATCH /api/tenants/me and GET /api/tenants/me/usage (contract tenants.md)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, select

from novabilling.notifications.smtp_settings import open_settings
from novabilling.runtime import Runtime
from novabilling.tenancy.models import Tenant
from tests.conftest import TenantCreds, assert_error
from tests.tenancy import has_route

FULL_KEYS = {
    "id",
    "name",
    "slug",
    "email",
    "apiKey",
    "webhookUrl",
    "webhookSecret",
    "isActive",
    "settings",
    "lastLoginAt",
    "createdAt",
    "updatedAt",
}
REDUCED_KEYS = {
    "id",
    "name",
    "slug",
    "email",
    "webhookUrl",
    "isActive",
    "settings",
    "createdAt",
    "updatedAt",
}


async def _patch(client: httpx.AsyncClient, tenant: TenantCreds, body: Any) -> httpx.Response:
    return await client.patch("/api/tenants/me", json=body, headers=tenant.token_headers)


async def _stored(runtime: Runtime, tenant_id: str) -> Tenant:
    async with runtime.central() as session:
        tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    return tenant


def _opened(runtime: Runtime, tenant: Tenant) -> dict[str, Any]:
    assert tenant.settings is not None
    return open_settings(tenant.settings["smtp"], encryptor=runtime.encryptor, tenant_id=tenant.id)


# --- GET -------------------------------------------------------------------------------------


async def test_get_me(client: httpx.AsyncClient, shared_tenant: TenantCreds) -> None:
    r = await client.get("/api/tenants/me", headers=shared_tenant.token_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == FULL_KEYS
    assert body["id"] == shared_tenant.id
    assert body["apiKey"] == shared_tenant.api_key  # in full: the dashboard copies it
    assert body["webhookSecret"] == shared_tenant.body["tenant"]["webhookSecret"]
    assert body["settings"] == {"ownerName": "Ada Obi"}


async def test_get_me_needs_an_access_token(
    client: httpx.AsyncClient, shared_tenant: TenantCreds
) -> None:
    assert_error(await client.get("/api/tenants/me"), 401)
    assert_error(await client.get("/api/tenants/me", headers=shared_tenant.key_headers), 401)


# --- PATCH -----------------------------------------------------------------------------------


async def test_patch_returns_the_reduced_view(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await _patch(client, tenant, {"name": "Renamed Ltd"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == REDUCED_KEYS
    assert body["name"] == "Renamed Ltd"
    assert body["slug"] == tenant.body["tenant"]["slug"]  # the slug does not follow the name
    me = (await client.get("/api/tenants/me", headers=tenant.token_headers)).json()
    assert me["name"] == "Renamed Ltd"
    assert me["updatedAt"] >= tenant.body["tenant"]["updatedAt"]


async def test_patch_settings_is_a_shallow_merge(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await _patch(
        client,
        tenant,
        {"settings": {"netPaymentTerms": 14, "address": {"city": "Lagos", "line1": "1 Marina"}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["settings"] == {
        "ownerName": "Ada Obi",
        "netPaymentTerms": 14,
        "address": {"city": "Lagos", "line1": "1 Marina"},
    }
    r = await _patch(client, tenant, {"settings": {"address": {"city": "Abuja"}}})
    # top-level keys are replaced whole, others kept
    assert r.json()["settings"] == {
        "ownerName": "Ada Obi",
        "netPaymentTerms": 14,
        "address": {"city": "Abuja"},
    }
    r = await _patch(client, tenant, {"settings": {}})
    assert r.json()["settings"]["netPaymentTerms"] == 14


async def test_patch_empty_body_changes_nothing(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await _patch(client, tenant, {})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == tenant.body["tenant"]["name"]
    assert r.json()["settings"] == {"ownerName": "Ada Obi"}


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/novabilling",
        "http://hooks.example.co.ke:8443/x?y=1",
        "hooks.example.com/path",
        "http://10.1.2.3:8080/hook",
        "http://localhost:3000/hook",
    ],
)
async def test_patch_webhook_url_accepts_urls(
    client: httpx.AsyncClient, tenant: TenantCreds, url: str
) -> None:
    r = await _patch(client, tenant, {"webhookUrl": url})
    assert r.status_code == 200, r.text
    assert r.json()["webhookUrl"] == url
    cleared = await _patch(client, tenant, {"webhookUrl": None})
    assert cleared.status_code == 200
    assert cleared.json()["webhookUrl"] is None


@pytest.mark.parametrize(
    "url", ["not a url", "http://nodot/hook", "ftp://example.com/x", "https://", 42, ""]
)
async def test_patch_webhook_url_rejects_non_urls(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, url: Any
) -> None:
    assert_error(await _patch(client, shared_tenant, {"webhookUrl": url}), 400, "webhookUrl")


async def test_patch_email(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    new_email = "renamed-" + tenant.email
    r = await _patch(client, tenant, {"email": new_email})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == new_email
    login = await client.post(
        "/api/auth/login", json={"email": new_email, "password": tenant.password}
    )
    assert login.status_code == 200
    # keeping one's own email (any case) is not a conflict
    assert (await _patch(client, tenant, {"email": new_email.upper()})).status_code == 200


async def test_patch_email_taken_by_another_tenant_is_409(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds, runtime: Runtime
) -> None:
    assert_error(await _patch(client, tenant, {"email": other_tenant.email}), 409)
    assert_error(await _patch(client, tenant, {"email": other_tenant.email.upper()}), 409)
    assert (await _stored(runtime, tenant.id)).email == tenant.email


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "A"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": 12}, "name"),
        ({"settings": "not-an-object"}, "settings"),
        ({"settings": [1, 2]}, "settings"),
        ({"slug": "mine"}, "property"),
        ({"apiKey": "sk_live_x"}, "property"),
        ({"isActive": False}, "property"),
    ],
)
async def test_patch_validation(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, body: dict[str, Any], field: str
) -> None:
    assert_error(await _patch(client, shared_tenant, body), 400, field)


async def test_patch_auth_comes_before_validation(
    client: httpx.AsyncClient, shared_tenant: TenantCreds
) -> None:
    bad = {"name": "A", "unknown": True}
    assert_error(await client.patch("/api/tenants/me", json=bad), 401)
    assert_error(
        await client.patch("/api/tenants/me", json=bad, headers=shared_tenant.key_headers), 401
    )
    r = await client.patch(
        "/api/tenants/me",
        content=b"{broken",
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 401)


async def test_smtp_password_is_masked_but_kept(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    smtp = {
        "host": "smtp.example.com",
        "port": 587,
        "secure": False,
        "user": "mailer",
        "password": "s3cret-pass",
        "from": "billing@example.com",
        "fromName": "Acme Billing",
    }
    r = await _patch(client, tenant, {"settings": {"smtp": smtp}})
    assert r.status_code == 200, r.text
    assert "s3cret-pass" not in r.text
    assert r.json()["settings"]["smtp"]["password"] not in (None, "", "s3cret-pass")
    assert r.json()["settings"]["smtp"]["host"] == "smtp.example.com"

    me = await client.get("/api/tenants/me", headers=tenant.token_headers)
    assert "s3cret-pass" not in me.text
    assert "password" in me.json()["settings"]["smtp"]
    stored = await _stored(runtime, tenant.id)
    assert stored.settings is not None
    sealed = stored.settings["smtp"]["password"]
    assert sealed.startswith("enc:") and "s3cret-pass" not in str(stored.settings)
    assert _opened(runtime, stored)["password"] == "s3cret-pass"

    # the dashboard sends back what it read: the mask must not overwrite the password
    echoed = me.json()["settings"]
    echoed["smtp"]["host"] = "smtp2.example.com"
    r = await _patch(client, tenant, {"settings": {"smtp": echoed["smtp"]}})
    assert r.status_code == 200, r.text
    stored = await _stored(runtime, tenant.id)
    assert stored.settings is not None
    assert stored.settings["smtp"]["host"] == "smtp2.example.com"
    assert stored.settings["smtp"]["password"] == sealed


# --- usage -----------------------------------------------------------------------------------


async def _has_tables(runtime: Runtime, tenant_id: str, *names: str) -> bool:
    engine = await runtime.engines.engine(tenant_id)
    async with engine.connect() as conn:
        existing = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    return set(names) <= existing


async def test_usage(client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime) -> None:
    if not await _has_tables(runtime, tenant.id, "customers", "subscriptions", "invoices"):
        pytest.skip("usage needs the customers/subscriptions/invoices tables")
    r = await client.get("/api/tenants/me/usage", headers=tenant.token_headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "customers": 0,
        "activeSubscriptions": 0,
        "totalInvoices": 0,
        "totalRevenue": "0",
    }
    assert_error(await client.get("/api/tenants/me/usage"), 401)
    assert_error(await client.get("/api/tenants/me/usage", headers=tenant.key_headers), 401)


async def test_usage_counts_only_the_callers_data(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds, runtime: Runtime
) -> None:
    if not await _has_tables(runtime, tenant.id, "customers", "subscriptions", "invoices"):
        pytest.skip("usage needs the customers/subscriptions/invoices tables")
    if not await has_route(client, "/api/customers"):
        pytest.skip("needs POST /api/customers")
    r = await client.post(
        "/api/customers",
        json={"externalId": "ext-1", "email": "payer@test.local", "currency": "NGN"},
        headers=tenant.key_headers,
    )
    assert r.status_code == 201, r.text
    mine = await client.get("/api/tenants/me/usage", headers=tenant.token_headers)
    theirs = await client.get("/api/tenants/me/usage", headers=other_tenant.token_headers)
    assert mine.json()["customers"] == 1
    assert theirs.json()["customers"] == 0


async def test_tenant_row_is_unchanged_by_failed_patch(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    before = await _stored(runtime, tenant.id)
    assert_error(await _patch(client, tenant, {"name": "Valid Name", "bogus": 1}), 400, "property")
    after = await _stored(runtime, tenant.id)
    assert after.name == before.name
    async with runtime.central() as session:
        names = (await session.scalars(select(Tenant.name).where(Tenant.id == tenant.id))).all()
    assert names == [before.name]
