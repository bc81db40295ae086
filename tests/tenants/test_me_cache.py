"""The cached tenant profile (``runtime.tenant_profiles``) never outlives a PATCH: it is dropped
after the commit, and a GET that read the row before the commit cannot re-cache it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.runtime import Runtime
from novabilling.tenants import service
from tests.conftest import TenantCreds, assert_error, register_tenant


async def _me(client: httpx.AsyncClient, tenant: TenantCreds) -> dict[str, object]:
    r = await client.get("/api/tenants/me", headers=tenant.token_headers)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


async def test_get_after_patch_returns_the_new_values(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    await _me(client, tenant)
    assert runtime.tenant_profiles.peek(tenant.id) is not None  # warm cache
    patch = {
        "name": "Renamed Ltd",
        "webhookUrl": "https://hooks.example.com/nb",
        "settings": {"netPaymentTerms": 14},
    }
    r = await client.patch("/api/tenants/me", json=patch, headers=tenant.token_headers)
    assert r.status_code == 200, r.text
    body = await _me(client, tenant)
    assert body["name"] == "Renamed Ltd"
    assert body["webhookUrl"] == "https://hooks.example.com/nb"
    assert body["settings"] == {"ownerName": "Ada Obi", "netPaymentTerms": 14}
    assert (await _me(client, tenant))["name"] == "Renamed Ltd"
    cached = runtime.tenant_profiles.peek(tenant.id)
    assert cached is not None and cached.name == "Renamed Ltd"


async def test_failed_patch_keeps_the_cached_view(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    other = await register_tenant(client, "Other Co")
    before = await _me(client, tenant)
    r = await client.patch(
        "/api/tenants/me",
        json={"name": "Not Applied", "email": other.email},
        headers=tenant.token_headers,
    )
    assert_error(r, 409)
    assert await _me(client, tenant) == before


async def test_view_read_before_the_commit_is_not_cached(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A GET reads the old row, the PATCH commits and answers, then the GET stores what it
    read: the cache must refuse it, so the next GET shows the PATCH."""
    profiles = runtime.tenant_profiles
    real = profiles.central
    read_done, release = asyncio.Event(), asyncio.Event()
    calls = 0

    @asynccontextmanager
    async def gated() -> AsyncIterator[AsyncSession]:
        nonlocal calls
        calls += 1
        first = calls == 1
        async with real() as session:
            yield session
        if first:  # the racing GET: its read is done, it has not cached yet
            read_done.set()
            await release.wait()

    monkeypatch.setattr(profiles, "central", gated)
    racing = asyncio.create_task(service.tenant_view(runtime, tenant.id))
    await asyncio.wait_for(read_done.wait(), 10)
    r = await client.patch(
        "/api/tenants/me", json={"name": "After Patch"}, headers=tenant.token_headers
    )
    assert r.status_code == 200 and r.json()["name"] == "After Patch"
    release.set()
    stale = await racing
    assert stale["name"] == "Acme Ltd"  # what that GET read, before the commit
    monkeypatch.setattr(profiles, "central", real)
    assert (await _me(client, tenant))["name"] == "After Patch"


async def test_concurrent_gets_during_patches_end_on_the_last_patch(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    for n in range(8):
        gets = [asyncio.create_task(_me(client, tenant)) for _ in range(4)]
        r = await client.patch(
            "/api/tenants/me", json={"name": f"Name {n}"}, headers=tenant.token_headers
        )
        assert r.status_code == 200, r.text
        await asyncio.gather(*gets)
        assert (await _me(client, tenant))["name"] == f"Name {n}"
