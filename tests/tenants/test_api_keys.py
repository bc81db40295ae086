"""/api/tenants/me/api-keys: create (full key once), list (masked, newest first, primary
not listed), delete (404 for another tenant's key) — contract tenants.md."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import TenantCreds, assert_error
from tests.tenancy import PROBE, client_app, install_probe

KEYS = "/api/tenants/me/api-keys"
API_KEY = re.compile(r"^sk_live_[0-9a-f]{64}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def _create(client: httpx.AsyncClient, tenant: TenantCreds, **body: Any) -> httpx.Response:
    payload = {"name": "ci key", "scopes": ["customers:read", "invoices:write"], **body}
    return await client.post(KEYS, json=payload, headers=tenant.token_headers)


async def test_create_shows_the_full_key_once(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await _create(client, tenant)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "key", "name", "scopes", "expiresAt", "createdAt"}
    assert API_KEY.match(body["key"]) and body["key"] != tenant.api_key
    assert body["name"] == "ci key"
    assert body["scopes"] == ["customers:read", "invoices:write"]
    assert body["expiresAt"] is None
    assert TS.match(body["createdAt"])

    listed = (await client.get(KEYS, headers=tenant.token_headers)).json()
    [entry] = [k for k in listed if k["id"] == body["id"]]
    assert entry["key"] == "****" + body["key"][-4:]
    assert body["key"] not in str(listed)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("2031-06-30", "2031-06-30T00:00:00.000Z"),
        ("2031-06-30T10:15:00Z", "2031-06-30T10:15:00.000Z"),
        ("2031-06-30T12:15:00.5+02:00", "2031-06-30T10:15:00.500Z"),
    ],
)
async def test_create_with_expiry(
    client: httpx.AsyncClient, tenant: TenantCreds, given: str, shown: str
) -> None:
    r = await _create(client, tenant, expiresAt=given)
    assert r.status_code == 201, r.text
    assert r.json()["expiresAt"] == shown
    listed = (await client.get(KEYS, headers=tenant.token_headers)).json()
    assert [k["expiresAt"] for k in listed if k["id"] == r.json()["id"]] == [shown]


async def test_create_with_empty_scopes_and_null_expiry(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await _create(client, tenant, scopes=[], expiresAt=None)
    assert r.status_code == 201, r.text
    assert r.json()["scopes"] == [] and r.json()["expiresAt"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": []}, "name"),
        ({"name": "", "scopes": []}, "name"),
        ({"name": "x"}, "scopes"),
        ({"name": "x", "scopes": "customers:read"}, "scopes"),
        ({"name": "x", "scopes": [1, 2]}, "scopes.0"),
        ({"name": "x", "scopes": [], "expiresAt": "not-a-date"}, "expiresAt"),
        ({"name": "x", "scopes": [], "expiresAt": "2031-13-45"}, "expiresAt"),
        ({"name": "x", "scopes": [], "expiresAt": ""}, "expiresAt"),
        ({"name": "x", "scopes": [], "expiresAt": 12}, "expiresAt"),
        ({"name": "x", "scopes": [], "key": "sk_live_mine"}, "property"),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, body: dict[str, Any], field: str
) -> None:
    r = await client.post(KEYS, json=body, headers=shared_tenant.token_headers)
    assert_error(r, 400, field)


async def test_list_is_newest_first_without_the_primary_key(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    assert (await client.get(KEYS, headers=tenant.token_headers)).json() == []
    ids = []
    for name in ("first", "second", "third"):
        ids.append((await _create(client, tenant, name=name)).json()["id"])
    r = await client.get(KEYS, headers=tenant.token_headers)
    assert r.status_code == 200
    listed = r.json()
    assert isinstance(listed, list)  # bare array
    assert [k["id"] for k in listed] == list(reversed(ids))
    assert [k["name"] for k in listed] == ["third", "second", "first"]
    for entry in listed:
        assert set(entry) == {"id", "key", "name", "scopes", "lastUsed", "expiresAt", "createdAt"}
        assert re.fullmatch(r"\*\*\*\*[0-9a-f]{4}", entry["key"])
        assert entry["lastUsed"] is None


async def test_list_shows_only_the_callers_keys(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    mine = (await _create(client, tenant)).json()["id"]
    theirs = (await _create(client, other_tenant)).json()["id"]
    listed = [k["id"] for k in (await client.get(KEYS, headers=tenant.token_headers)).json()]
    assert listed == [mine]
    listed = [k["id"] for k in (await client.get(KEYS, headers=other_tenant.token_headers)).json()]
    assert listed == [theirs]


async def test_delete(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    install_probe(client_app(client))
    created = (await _create(client, tenant)).json()
    r = await client.delete(f"{KEYS}/{created['id']}", headers=tenant.token_headers)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"message"}
    assert (await client.get(KEYS, headers=tenant.token_headers)).json() == []
    assert_error(
        await client.get(PROBE, headers={"Authorization": f"Bearer {created['key']}"}), 401
    )
    # already revoked: gone
    assert_error(await client.delete(f"{KEYS}/{created['id']}", headers=tenant.token_headers), 404)


async def test_delete_unknown_or_foreign_key_is_404(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    install_probe(client_app(client))
    theirs = (await _create(client, other_tenant)).json()
    assert_error(await client.delete(f"{KEYS}/{theirs['id']}", headers=tenant.token_headers), 404)
    assert_error(await client.delete(f"{KEYS}/nonexistent_id", headers=tenant.token_headers), 404)
    # their key still works and is still listed for them
    r = await client.get(PROBE, headers={"Authorization": f"Bearer {theirs['key']}"})
    assert r.status_code == 200 and r.json()["tenantId"] == other_tenant.id
    listed = (await client.get(KEYS, headers=other_tenant.token_headers)).json()
    assert [k["id"] for k in listed] == [theirs["id"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", KEYS), ("POST", KEYS), ("DELETE", f"{KEYS}/whatever")],
)
async def test_api_keys_need_an_access_token(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, method: str, path: str
) -> None:
    body = {"name": "x", "scopes": []} if method == "POST" else None
    for headers in ({}, shared_tenant.key_headers, {"Authorization": shared_tenant.api_key}):
        r = await client.request(method, path, json=body, headers=headers)
        assert_error(r, 401)
    # auth before validation
    r = await client.request(method, path, json={"bogus": True}, headers=shared_tenant.key_headers)
    assert_error(r, 401)


async def test_extra_key_cannot_manage_keys(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    created = (await _create(client, tenant)).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert_error(await client.post(KEYS, json={"name": "x", "scopes": []}, headers=headers), 401)
    assert_error(await client.delete(f"{KEYS}/{created['id']}", headers=headers), 401)
