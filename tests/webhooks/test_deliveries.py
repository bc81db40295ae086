"""The outbound webhook delivery log (issue 12): GET /api/webhooks/deliveries (status,
attempts, last response code, event, timestamps; filters, pagination), GET .../{id} and
POST .../{id}/retry, on SQLite and PostgreSQL. Deliveries go through the real delivery
job (in process) to a mock receiver whose answer the test chooses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.runtime import Runtime
from novabilling.webhooks import outbound
from novabilling.webhooks.models import WebhookDelivery
from tests.conftest import TenantCreds, assert_error
from tests.payments.helpers import use_inprocess_jobs
from tests.webhooks.helpers import point_webhooks_at_test_url

BASE = "/api/webhooks/deliveries"


@dataclass
class Receiver:
    queue: InProcessQueue
    answer: int = 200
    bodies: list[bytes] = field(default_factory=list)
    signatures: list[str] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def receive(self, request: httpx.Request) -> httpx.Response:
        await self.gate.wait()  # cleared: a delivery hangs until the test lets it answer
        self.bodies.append(request.content)
        self.signatures.append(request.headers["X-Webhook-Signature"])
        return httpx.Response(self.answer)


@pytest.fixture
async def receiver(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> AsyncIterator[Receiver]:
    queue = use_inprocess_jobs(runtime)
    await point_webhooks_at_test_url(client, tenant)
    got = Receiver(queue=queue)
    outbound.use_transport(runtime, httpx.MockTransport(got.receive))
    yield got
    await queue.close()


async def _customer(client: httpx.AsyncClient, creds: TenantCreds, n: int) -> dict[str, Any]:
    r = await client.post(
        "/api/customers",
        headers=creds.key_headers,
        json={
            "externalId": f"hook-{n}",
            "email": f"c{n}@test.local",
            "name": f"Customer {n}",
            "currency": "USD",
        },
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _list(client: httpx.AsyncClient, creds: TenantCreds, **query: Any) -> dict[str, Any]:
    r = await client.get(BASE, headers=creds.key_headers, params=query)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_failed_delivery_is_logged_and_retried(
    client: httpx.AsyncClient, tenant: TenantCreds, receiver: Receiver
) -> None:
    receiver.answer = 503
    customer = await _customer(client, tenant, 1)
    await receiver.queue.drain()
    assert len(receiver.bodies) == 3  # the contract's 3 attempts
    page = await _list(client, tenant)
    assert page["meta"] == {"total": 1, "page": 1, "limit": 20, "totalPages": 1}
    [row] = page["data"]
    assert row["event"] == "customer.created"
    assert (row["status"], row["attempts"], row["lastResponseCode"], row["lastError"]) == (
        "FAILED",
        3,
        503,
        "HTTP 503",
    )
    assert row["url"] == "http://tenant-hooks.test/events"
    assert row["payload"] == json.loads(receiver.bodies[0])
    assert row["payload"]["data"]["customerId"] == customer["id"]
    assert row["deliveredAt"] is None and row["lastAttemptAt"] is not None
    assert row["createdAt"] <= row["lastAttemptAt"]

    receiver.answer = 200
    receiver.gate.clear()
    r = await client.post(f"{BASE}/{row['id']}/retry", headers=tenant.token_headers)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "PENDING" and r.json()["id"] == row["id"]
    # a second retry while the first is still pending is refused
    assert_error(await client.post(f"{BASE}/{row['id']}/retry", headers=tenant.key_headers), 400)
    receiver.gate.set()
    await receiver.queue.drain()
    assert len(receiver.bodies) == 4
    assert receiver.bodies[3] == receiver.bodies[0]  # the same bytes, the same signature
    assert receiver.signatures[3] == receiver.signatures[0]
    r = await client.get(f"{BASE}/{row['id']}", headers=tenant.key_headers)
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["status"], done["attempts"], done["lastResponseCode"], done["lastError"]) == (
        "SUCCEEDED",
        4,
        200,
        None,
    )
    assert done["deliveredAt"] is not None and done["createdAt"] == row["createdAt"]
    # a delivered one can be sent again (a receiver that lost it)
    r = await client.post(f"{BASE}/{row['id']}/retry", headers=tenant.key_headers)
    assert r.status_code == 201, r.text
    await receiver.queue.drain()
    assert len(receiver.bodies) == 5 and receiver.bodies[4] == receiver.bodies[0]
    again = (await client.get(f"{BASE}/{row['id']}", headers=tenant.key_headers)).json()
    assert (again["status"], again["attempts"]) == ("SUCCEEDED", 5)


async def test_a_delivery_stuck_pending_can_be_retried(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, receiver: Receiver
) -> None:
    """A PENDING row nothing happened to for 15 minutes lost its job: retry is allowed."""
    await _customer(client, tenant, 1)
    await receiver.queue.drain()
    [row] = (await _list(client, tenant))["data"]
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        stored = await session.get(WebhookDelivery, row["id"])
        assert stored is not None
        stored.status = "PENDING"
        stored.updated_at = runtime.clock.now() - timedelta(minutes=14)
        await session.commit()
    path = f"{BASE}/{row['id']}/retry"
    assert_error(await client.post(path, headers=tenant.key_headers), 400)  # not yet
    async with maker() as session:
        stored = await session.get(WebhookDelivery, row["id"])
        assert stored is not None
        stored.updated_at = runtime.clock.now() - timedelta(minutes=16)
        await session.commit()
    r = await client.post(path, headers=tenant.key_headers)
    assert r.status_code == 201, r.text
    await receiver.queue.drain()
    done = (await client.get(f"{BASE}/{row['id']}", headers=tenant.key_headers)).json()
    assert (done["status"], done["attempts"]) == ("SUCCEEDED", 2)
    assert receiver.bodies[1] == receiver.bodies[0]


async def test_network_error_is_logged(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, receiver: Receiver
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    outbound.use_transport(runtime, httpx.MockTransport(refuse))
    await _customer(client, tenant, 1)
    await receiver.queue.drain()
    [row] = (await _list(client, tenant))["data"]
    assert (row["status"], row["attempts"], row["lastResponseCode"]) == ("FAILED", 3, None)
    assert row["lastError"] == "ConnectError: connection refused"


async def test_filters_and_pages(
    client: httpx.AsyncClient, tenant: TenantCreds, receiver: Receiver
) -> None:
    for n in range(3):
        await _customer(client, tenant, n)
    await receiver.queue.drain()
    receiver.answer = 500
    newest = (await _list(client, tenant))["data"][0]
    r = await client.delete(
        f"/api/customers/{newest['payload']['data']['customerId']}", headers=tenant.key_headers
    )
    assert r.status_code == 200, r.text
    await receiver.queue.drain()
    everything = await _list(client, tenant)
    assert everything["meta"]["total"] == 4
    events = [row["event"] for row in everything["data"]]
    assert events[0] == "customer.deleted"  # newest first
    assert sorted(events[1:]) == ["customer.created"] * 3
    failed = await _list(client, tenant, status="FAILED")
    assert [row["event"] for row in failed["data"]] == ["customer.deleted"]
    ok = await _list(client, tenant, status="SUCCEEDED", event="customer.created")
    assert ok["meta"]["total"] == 3
    assert (await _list(client, tenant, event="invoice.paid"))["meta"]["total"] == 0
    second = await _list(client, tenant, page=2, limit=3)
    assert second["meta"] == {"total": 4, "page": 2, "limit": 3, "totalPages": 2}
    assert [row["id"] for row in second["data"]] == [everything["data"][3]["id"]]
    assert (await _list(client, tenant, dateFrom="2000-01-02"))["meta"]["total"] == 4
    assert (await _list(client, tenant, dateTo="2000-01-02"))["meta"]["total"] == 0


@pytest.mark.parametrize(
    ("query", "field_name"),
    [
        ({"status": "DONE"}, "status"),
        ({"dateFrom": "yesterday"}, "dateFrom"),
        ({"dateTo": "2026-13-45"}, "dateTo"),
        ({"limit": "0"}, "limit"),
        ({"page": "x"}, "page"),
        ({"sort": "event"}, "property"),
    ],
)
async def test_bad_query_names_the_field(
    client: httpx.AsyncClient, tenant: TenantCreds, query: dict[str, str], field_name: str
) -> None:
    assert_error(await client.get(BASE, headers=tenant.key_headers, params=query), 400, field_name)


async def test_other_tenant_and_no_auth(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds, receiver: Receiver
) -> None:
    receiver.answer = 500
    await _customer(client, tenant, 1)
    await receiver.queue.drain()
    [row] = (await _list(client, tenant))["data"]
    assert (await _list(client, other_tenant))["data"] == []
    mine = f"{BASE}/{row['id']}"
    assert_error(await client.get(mine, headers=other_tenant.key_headers), 404)
    assert_error(await client.post(f"{mine}/retry", headers=other_tenant.key_headers), 404)
    assert_error(await client.get(f"{BASE}/nope", headers=tenant.key_headers), 404)
    assert_error(await client.post(f"{BASE}/nope/retry", headers=tenant.key_headers), 404)
    for method, path in (("GET", BASE), ("GET", mine), ("POST", f"{mine}/retry")):
        assert_error(await client.request(method, path), 401)
    # the refused requests changed nothing
    r = await client.get(mine, headers=tenant.key_headers)
    assert r.json()["status"] == "FAILED" and r.json()["attempts"] == 3


async def test_retry_without_webhook_url_is_refused(
    client: httpx.AsyncClient, tenant: TenantCreds, receiver: Receiver
) -> None:
    receiver.answer = 500
    await _customer(client, tenant, 1)
    await receiver.queue.drain()
    [row] = (await _list(client, tenant))["data"]
    r = await client.patch(
        "/api/tenants/me", headers=tenant.token_headers, json={"webhookUrl": None}
    )
    assert r.status_code == 200, r.text
    assert_error(await client.post(f"{BASE}/{row['id']}/retry", headers=tenant.key_headers), 400)
