"""Idempotency-Key on every mutating /api route (one middleware): replay within 24 h
without doing the work again, 409 for another request under the same key or while the
first is running, keys per tenant, released when the request fails, expired by the
scheduler's hook, and under concurrency."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from novabilling.billing import scheduler
from novabilling.customers import service as customer_service
from novabilling.kit.idempotency import IdempotencyRecord
from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.runtime import Runtime
from novabilling.tenants import idempotency_expiry
from novabilling.web.idempotency import BUSY_MESSAGE, MISMATCH_MESSAGE
from novabilling.worker import build_handlers
from tests.conftest import TenantCreds, assert_error


def _body(**extra: Any) -> dict[str, Any]:
    return {
        "externalId": f"cus_{secrets.token_hex(4)}",
        "email": f"b-{secrets.token_hex(3)}@test.local",
        "currency": "USD",
        **extra,
    }


def _with_key(creds: TenantCreds, key: str, *, token: bool = False) -> dict[str, str]:
    base = creds.token_headers if token else creds.key_headers
    return {**base, "Idempotency-Key": key}


async def _count(runtime: Runtime, tenant_id: str, model: Any) -> int:
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _customers(client: httpx.AsyncClient, creds: TenantCreds) -> int:
    r = await client.get("/api/customers", headers=creds.key_headers)
    return int(r.json()["meta"]["total"])


async def test_same_key_same_body_replays_without_doing_the_work_again(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    body, key = _body(), secrets.token_hex(8)
    first = await client.post("/api/customers", json=body, headers=_with_key(tenant, key))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await client.post("/api/customers", json=body, headers=_with_key(tenant, key))
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == "application/json"
    # the same JSON written differently is the same request
    reordered = dict(reversed(list(body.items())))
    third = await client.post(
        "/api/customers",
        content=httpx.Request("POST", "/", json=reordered).content + b"  ",
        headers={**_with_key(tenant, key), "content-type": "application/json"},
    )
    assert third.status_code == 201 and third.json()["id"] == first.json()["id"]
    assert await _customers(client, tenant) == 1


async def test_same_key_another_request_is_409(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    key = secrets.token_hex(8)
    first = await client.post("/api/customers", json=_body(), headers=_with_key(tenant, key))
    assert first.status_code == 201
    other = await client.post("/api/customers", json=_body(), headers=_with_key(tenant, key))
    assert_error(other, 409)
    assert other.json()["message"] == MISMATCH_MESSAGE
    elsewhere = await client.patch(
        f"/api/customers/{first.json()['id']}", json={"name": "X"}, headers=_with_key(tenant, key)
    )
    assert_error(elsewhere, 409)
    assert await _customers(client, tenant) == 1


async def test_keys_are_scoped_per_tenant(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    body, key = _body(), secrets.token_hex(8)
    mine = await client.post("/api/customers", json=body, headers=_with_key(tenant, key))
    theirs = await client.post("/api/customers", json=body, headers=_with_key(other_tenant, key))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


async def test_a_failed_request_releases_the_key(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    key = secrets.token_hex(8)
    bad = await client.post(
        "/api/customers", json={"email": "not-an-email"}, headers=_with_key(tenant, key)
    )
    assert_error(bad, 400, "email")
    good = await client.post("/api/customers", json=_body(), headers=_with_key(tenant, key))
    assert good.status_code == 201
    assert "idempotent-replayed" not in good.headers


async def test_a_request_still_running_makes_the_second_409(
    client: httpx.AsyncClient, tenant: TenantCreds, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    real_create = customer_service.create_customer

    async def slow_create(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await real_create(*args, **kwargs)

    monkeypatch.setattr(customer_service, "create_customer", slow_create)
    body, key = _body(), secrets.token_hex(8)
    first = asyncio.create_task(
        client.post("/api/customers", json=body, headers=_with_key(tenant, key))
    )
    await asyncio.wait_for(entered.wait(), timeout=10)
    second = await client.post("/api/customers", json=body, headers=_with_key(tenant, key))
    assert_error(second, 409)
    assert second.json()["message"] == BUSY_MESSAGE
    release.set()
    assert (await first).status_code == 201
    third = await client.post("/api/customers", json=body, headers=_with_key(tenant, key))
    assert third.status_code == 201 and third.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("same_body", [True, False], ids=["same body", "other bodies"])
async def test_concurrent_requests_with_one_key_do_the_work_once(
    client: httpx.AsyncClient, tenant: TenantCreds, same_body: bool
) -> None:
    key, body = secrets.token_hex(8), _body()
    bodies = [body if same_body else _body() for _ in range(12)]
    answers = await asyncio.gather(
        *(client.post("/api/customers", json=b, headers=_with_key(tenant, key)) for b in bodies)
    )
    statuses = sorted(r.status_code for r in answers)
    fresh = [r for r in answers if r.status_code == 201 and "idempotent-replayed" not in r.headers]
    assert len(fresh) == 1, statuses
    assert set(statuses) <= {201, 409}, statuses
    for r in answers:
        if r.status_code == 201:
            assert r.json()["id"] == fresh[0].json()["id"]
        else:
            assert r.json()["message"] in (BUSY_MESSAGE, MISMATCH_MESSAGE)
    assert await _customers(client, tenant) == 1


async def test_delete_and_patch_replay_too(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    created = (await client.post("/api/customers", json=_body(), headers=tenant.key_headers)).json()
    url, key = f"/api/customers/{created['id']}", secrets.token_hex(8)
    patched = await client.patch(url, json={"name": "Ada"}, headers=_with_key(tenant, key))
    again = await client.patch(url, json={"name": "Ada"}, headers=_with_key(tenant, key))
    assert patched.status_code == again.status_code == 200 and again.json() == patched.json()
    key = secrets.token_hex(8)
    deleted = await client.delete(url, headers=_with_key(tenant, key))
    assert deleted.status_code == 200
    replayed = await client.delete(url, headers=_with_key(tenant, key))
    assert replayed.status_code == 200 and replayed.json() == deleted.json()
    assert_error(await client.delete(url, headers=tenant.key_headers), 404)


async def test_a_stored_answer_holding_a_secret_is_sealed(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    key = secrets.token_hex(8)
    body = {"name": "ci", "scopes": []}
    first = await client.post(
        "/api/tenants/me/api-keys", json=body, headers=_with_key(tenant, key, token=True)
    )
    again = await client.post(
        "/api/tenants/me/api-keys", json=body, headers=_with_key(tenant, key, token=True)
    )
    assert first.status_code == again.status_code == 201
    assert again.json()["key"] == first.json()["key"]
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        stored = (await session.scalars(select(IdempotencyRecord))).all()
    assert len(stored) == 1 and stored[0].response_sealed
    assert first.json()["key"] not in stored[0].response_sealed
    listed = await client.get("/api/tenants/me/api-keys", headers=tenant.token_headers)
    assert len(listed.json()) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "é-accent", "tab\tkey"])
async def test_a_malformed_key_is_400(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, key: str
) -> None:
    headers = [(k.encode(), v.encode()) for k, v in shared_tenant.key_headers.items()]
    headers.append((b"Idempotency-Key", key.encode("utf-8")))
    r = await client.post("/api/customers", json=_body(), headers=headers)
    assert_error(r, 400, "Idempotency-Key")
    assert await _customers(client, shared_tenant) == 0


async def test_auth_comes_first_and_auth_routes_are_untouched(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await client.post("/api/customers", json=_body(), headers={"Idempotency-Key": "k1"})
    assert_error(r, 401)
    r = await client.post("/api/customers", json=_body(), headers={"Idempotency-Key": " "})
    assert_error(r, 401)
    login = {"email": tenant.email, "password": tenant.password}
    for _ in range(2):
        r = await client.post("/api/auth/login", json=login, headers={"Idempotency-Key": "k2"})
        assert r.status_code == 200 and "idempotent-replayed" not in r.headers


async def test_an_expired_key_does_the_work_again(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    body, key = _body(), secrets.token_hex(8)
    first = await client.post("/api/customers", json=body, headers=_with_key(tenant, key))
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        await session.execute(
            update(IdempotencyRecord).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    body["externalId"] = f"cus_{secrets.token_hex(4)}"  # a new customer, same key: allowed now
    again = await client.post("/api/customers", json=body, headers=_with_key(tenant, key))
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]


async def test_the_scheduler_expires_old_records_hourly(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _ in range(3):
        r = await client.post(
            "/api/customers", json=_body(), headers=_with_key(tenant, secrets.token_hex(8))
        )
        assert r.status_code == 201
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        old = select(IdempotencyRecord.id).limit(2).scalar_subquery()
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id.in_(old))
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        await session.commit()

    # the scheduler calls the hook with the tenants it schedules
    seen: list[tuple[list[str], datetime]] = []

    async def record(rt: Runtime, tenant_ids: list[str], *, at: datetime) -> int:
        seen.append((list(tenant_ids), at))
        return 0

    async def only_this_tenant(rt: Runtime) -> list[str]:
        return [tenant.id]

    if runtime.jobs is not None:
        await runtime.jobs.close()
    queue = runtime.jobs = InProcessQueue(build_handlers(runtime))
    monkeypatch.setattr(scheduler, "schedule_expiry", record)
    monkeypatch.setattr(scheduler, "active_tenant_ids", only_this_tenant)
    monkeypatch.setattr(scheduler, "sweep_unqueued", lambda rt: asyncio.sleep(0))
    on_the_hour = datetime(2031, 5, 6, 7, 0, tzinfo=UTC)
    await scheduler.schedule_once(runtime, now=on_the_hour)
    assert seen == [([tenant.id], on_the_hour)]
    await queue.close()

    # the hook: nothing at other minutes, one job per tenant on the hour
    queue = runtime.jobs = InProcessQueue(build_handlers(runtime))
    assert (
        await idempotency_expiry.schedule_expiry(
            runtime, [tenant.id], at=on_the_hour.replace(minute=1)
        )
        == 0
    )
    assert (
        await idempotency_expiry.schedule_expiry(
            runtime, [tenant.id], at=datetime.now(UTC).replace(minute=0)
        )
        == 1
    )
    await queue.join()
    assert await _count(runtime, tenant.id, IdempotencyRecord) == 1


async def test_the_openapi_document_describes_the_header_and_the_409(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    create = spec["paths"]["/api/customers"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "409" in create["responses"]
    login = spec["paths"]["/api/auth/login"]["post"]
    assert not any(p.get("name") == "Idempotency-Key" for p in login.get("parameters", []))
