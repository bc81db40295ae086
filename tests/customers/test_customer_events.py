"""Outbound ``customer.created`` / ``customer.updated`` (customers.md side effects,
webhooks.md data keys), signed with the tenant's webhook secret; failed requests send
nothing."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from novabilling.runtime import Runtime
from tests.conftest import TenantCreds
from tests.payments.helpers import use_inprocess_jobs
from tests.webhooks.helpers import WEBHOOK_URL, capture_outbound, point_webhooks_at_test_url


async def test_create_and_update_send_signed_events(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    sent = capture_outbound(runtime)
    secret = await point_webhooks_at_test_url(client, tenant)
    created = await client.post(
        "/api/customers",
        headers=tenant.key_headers,
        json={"externalId": "cus_ev", "email": "ev@test.local", "name": "Eve", "currency": "KES"},
    )
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    for name in ("Eve Two", "Eve Three"):
        updated = await client.patch(
            f"/api/customers/{customer_id}", headers=tenant.key_headers, json={"name": name}
        )
        assert updated.status_code == 200, updated.text
    # failures send nothing: duplicate externalId (409), bad input (400), unknown id (404)
    dup = await client.post(
        "/api/customers",
        headers=tenant.key_headers,
        json={"externalId": "cus_ev", "email": "b@test.local", "currency": "KES"},
    )
    assert dup.status_code == 409
    bad = await client.patch(
        f"/api/customers/{customer_id}", headers=tenant.key_headers, json={"email": "nope"}
    )
    assert bad.status_code == 400
    missing = await client.patch(
        "/api/customers/nobody", headers=tenant.key_headers, json={"name": "X"}
    )
    assert missing.status_code == 404
    await queue.join()

    events = [(q.headers["X-Event-Type"], json.loads(q.content)) for q in sent]
    assert [name for name, _ in events] == [
        "customer.created",
        "customer.updated",
        "customer.updated",
    ]
    expected = {"customerId": customer_id, "externalId": "cus_ev", "email": "ev@test.local"}
    assert events[0][1]["data"] == {**expected, "name": "Eve"}
    assert events[1][1]["data"] == {**expected, "name": "Eve Two"}
    assert events[2][1]["data"] == {**expected, "name": "Eve Three"}
    for request in sent:
        assert str(request.url) == WEBHOOK_URL
        digest = hmac.new(secret.encode(), request.content, hashlib.sha256).hexdigest()
        assert request.headers["X-Webhook-Signature"] == digest
    await queue.close()


async def test_no_webhook_url_means_no_delivery(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    sent = capture_outbound(runtime)
    created = await client.post(
        "/api/customers",
        headers=tenant.key_headers,
        json={"externalId": "cus_quiet", "email": "q@test.local", "currency": "NGN"},
    )
    assert created.status_code == 201
    await queue.join()
    assert sent == []
    await queue.close()


async def test_no_webhook_url_queues_nothing(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """Without a webhookUrl a write queues no delivery job at all (no outbox row, no push);
    once the tenant sets one, the next write's event is delivered."""
    queue = use_inprocess_jobs(runtime)
    sent = capture_outbound(runtime)
    created = await client.post(
        "/api/customers",
        headers=tenant.key_headers,
        json={"externalId": "cus_quiet", "email": "q@test.local", "currency": "KES"},
    )
    assert created.status_code == 201, created.text
    await queue.join()
    assert (queue.completed, queue.failed, sent) == (0, 0, [])
    await point_webhooks_at_test_url(client, tenant)
    updated = await client.patch(
        f"/api/customers/{created.json()['id']}",
        headers=tenant.key_headers,
        json={"name": "Now Heard"},
    )
    assert updated.status_code == 200, updated.text
    await queue.join()
    assert [q.headers["X-Event-Type"] for q in sent] == ["customer.updated"]
