"""Who may call what (contract README §2): data routes take an API key (with or without
``Bearer``) or an access token; session routes (``/api/tenants/me*``) only the access token.
Extra keys, revocation, expiry and deactivation take effect at once in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from novabilling.kit.clock import TestClock
from novabilling.runtime import Runtime
from novabilling.tenancy.models import Tenant
from tests.conftest import Backend, TenantCreds, assert_error, register_tenant
from tests.tenancy import PROBE, app_client, client_app, has_route, install_probe


@pytest.fixture
def probe(client: httpx.AsyncClient) -> str:
    install_probe(client_app(client))
    return PROBE


async def _new_key(
    client: httpx.AsyncClient, tenant: TenantCreds, expires_at: str | None = None
) -> dict:
    body: dict = {"name": "ci", "scopes": ["customers:read"]}
    if expires_at is not None:
        body["expiresAt"] = expires_at
    r = await client.post("/api/tenants/me/api-keys", json=body, headers=tenant.token_headers)
    assert r.status_code == 201, r.text
    return r.json()


async def _deactivate(runtime: Runtime, tenant_id: str) -> None:
    async with runtime.central() as session:
        await session.execute(update(Tenant).where(Tenant.id == tenant_id).values(is_active=False))
        await session.commit()
    runtime.principals.forget_tenant(tenant_id)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer {key}",
        "{key}",
        "bearer {key}",
        "BEARER {key}",
        "  Bearer   {key}  ",
        "Bearer {token}",
        "bearer {token}",
    ],
)
async def test_data_route_credentials(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, probe: str, header: str
) -> None:
    value = header.format(key=shared_tenant.api_key, token=shared_tenant.access_token)
    r = await client.get(probe, headers={"Authorization": value})
    assert r.status_code == 200, r.text
    assert r.json()["tenantId"] == shared_tenant.id
    assert r.json()["db"] == 1


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer sk_live_" + "0" * 64,
        "sk_live_" + "0" * 64,
        "Bearer not-a-key",
        "Bearer a.b.c",
        "Token {key}",
    ],
)
async def test_data_route_rejects_bad_credentials(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, probe: str, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header.format(key=shared_tenant.api_key)}
    r = await client.get(probe, headers=headers)
    assert_error(r, 401)


async def test_tampered_access_token_is_401(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, probe: str
) -> None:
    head, payload, sig = shared_tenant.access_token.split(".")
    forged = ".".join([head, payload, sig[:-3] + ("AAA" if not sig.endswith("AAA") else "BBB")])
    assert_error(await client.get(probe, headers={"Authorization": f"Bearer {forged}"}), 401)
    assert_error(
        await client.get("/api/tenants/me", headers={"Authorization": f"Bearer {forged}"}), 401
    )


@pytest.mark.parametrize("path", ["/api/tenants/me", "/api/tenants/me/api-keys"])
async def test_session_routes_refuse_api_keys(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, path: str
) -> None:
    for value in (
        f"Bearer {shared_tenant.api_key}",
        shared_tenant.api_key,
        shared_tenant.access_token,
    ):
        r = await client.get(path, headers={"Authorization": value})
        assert_error(r, 401)
        assert r.json()["message"] == "Unauthorized"
    assert_error(await client.get(path), 401)
    ok = await client.get(path, headers=shared_tenant.token_headers)
    assert ok.status_code == 200


async def test_session_routes_refuse_extra_api_keys(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    key = (await _new_key(client, tenant))["key"]
    assert_error(
        await client.get("/api/tenants/me", headers={"Authorization": f"Bearer {key}"}), 401
    )


async def test_extra_key_works_and_records_last_used(
    client: httpx.AsyncClient, tenant: TenantCreds, probe: str
) -> None:
    created = await _new_key(client, tenant)
    listed = (await client.get("/api/tenants/me/api-keys", headers=tenant.token_headers)).json()
    assert [k["lastUsed"] for k in listed if k["id"] == created["id"]] == [None]

    r = await client.get(probe, headers={"Authorization": f"Bearer {created['key']}"})
    assert r.status_code == 200, r.text
    assert r.json() == {"tenantId": tenant.id, "kind": "api_key", "db": 1}
    r = await client.get(probe, headers={"Authorization": created["key"]})
    assert r.status_code == 200

    listed = (await client.get("/api/tenants/me/api-keys", headers=tenant.token_headers)).json()
    [entry] = [k for k in listed if k["id"] == created["id"]]
    assert entry["lastUsed"] is not None and entry["lastUsed"].endswith("Z")


async def test_primary_key_is_the_primary_principal(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, probe: str
) -> None:
    r = await client.get(probe, headers=shared_tenant.key_headers)
    assert r.json()["kind"] == "primary_key"
    r = await client.get(probe, headers=shared_tenant.token_headers)
    assert r.json()["kind"] == "access"


async def test_revoked_key_stops_working_at_once(
    client: httpx.AsyncClient, tenant: TenantCreds, probe: str
) -> None:
    created = await _new_key(client, tenant)
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert (await client.get(probe, headers=headers)).status_code == 200  # now cached
    r = await client.delete(
        f"/api/tenants/me/api-keys/{created['id']}", headers=tenant.token_headers
    )
    assert r.status_code == 200, r.text
    assert_error(await client.get(probe, headers=headers), 401)
    # the primary key is untouched
    assert (await client.get(probe, headers=tenant.key_headers)).status_code == 200


async def test_key_with_past_expiry_is_401(
    client: httpx.AsyncClient, tenant: TenantCreds, probe: str
) -> None:
    created = await _new_key(client, tenant, expires_at="2020-01-01T00:00:00Z")
    r = await client.get(probe, headers={"Authorization": f"Bearer {created['key']}"})
    assert_error(r, 401)
    assert "expired" in r.json()["message"].lower()


@dataclass
class Clocked:
    client: httpx.AsyncClient
    clock: TestClock
    runtime: Runtime


@pytest.fixture
async def clocked(backend: Backend) -> AsyncIterator[Clocked]:
    clock = TestClock(datetime.now(UTC))
    async with app_client(backend.settings, clock=clock) as (c, rt):
        yield Clocked(c, clock, rt)


async def test_key_expires_while_cached(clocked: Clocked) -> None:
    creds = await register_tenant(clocked.client)
    expires = (clocked.clock.now() + timedelta(hours=1)).isoformat()
    created = await _new_key(clocked.client, creds, expires_at=expires)
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert (await clocked.client.get(PROBE, headers=headers)).status_code == 200
    clocked.clock.advance(timedelta(hours=1, seconds=1))
    assert_error(await clocked.client.get(PROBE, headers=headers), 401)


async def test_deactivated_tenant_is_401_everywhere(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, probe: str
) -> None:
    extra = (await _new_key(client, tenant))["key"]
    for headers in (tenant.key_headers, tenant.token_headers, {"Authorization": extra}):
        assert (await client.get(probe, headers=headers)).status_code == 200
    await _deactivate(runtime, tenant.id)
    for headers in (tenant.key_headers, tenant.token_headers, {"Authorization": extra}):
        assert_error(await client.get(probe, headers=headers), 401)
    assert_error(await client.get("/api/tenants/me", headers=tenant.token_headers), 401)


async def test_each_key_reaches_only_its_own_tenant(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds, probe: str
) -> None:
    a = await client.get(probe, headers=tenant.key_headers)
    b = await client.get(probe, headers=other_tenant.key_headers)
    assert a.json()["tenantId"] == tenant.id
    assert b.json()["tenantId"] == other_tenant.id
    me = await client.get("/api/tenants/me", headers=other_tenant.token_headers)
    assert me.json()["id"] == other_tenant.id and me.json()["apiKey"] == other_tenant.api_key


async def test_real_data_route_when_present(
    client: httpx.AsyncClient, shared_tenant: TenantCreds
) -> None:
    if not await has_route(client, "/api/customers"):
        pytest.skip("no /api/customers router mounted yet")
    for headers in (
        shared_tenant.key_headers,
        {"Authorization": shared_tenant.api_key},
        shared_tenant.token_headers,
    ):
        r = await client.get("/api/customers", headers=headers)
        assert r.status_code == 200, r.text
    assert_error(await client.get("/api/customers"), 401)
    assert_error(
        await client.get(
            "/api/customers", headers={"Authorization": f"Bearer {shared_tenant.refresh_token}"}
        ),
        401,
    )
