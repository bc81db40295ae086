"""Outbound tenant webhooks in tests: a webhook URL for the tenant, and every delivery
captured instead of sent (no network)."""

from __future__ import annotations

import httpx

from novabilling.runtime import Runtime
from novabilling.webhooks import outbound
from tests.conftest import TenantCreds

WEBHOOK_URL = "http://tenant-hooks.test/events"


async def point_webhooks_at_test_url(client: httpx.AsyncClient, creds: TenantCreds) -> str:
    """Set the tenant's ``webhookUrl`` to ``WEBHOOK_URL``; returns its webhookSecret."""
    r = await client.patch(
        "/api/tenants/me", headers=creds.token_headers, json={"webhookUrl": WEBHOOK_URL}
    )
    assert r.status_code == 200, r.text
    me = await client.get("/api/tenants/me", headers=creds.token_headers)
    assert me.status_code == 200 and me.json()["webhookUrl"] == WEBHOOK_URL, me.text
    secret: str = me.json()["webhookSecret"]
    assert secret
    return secret


def capture_outbound(runtime: Runtime) -> list[httpx.Request]:
    """Every delivery of ``runtime`` lands in the returned list and is answered 200."""
    sent: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    outbound.use_transport(runtime, httpx.MockTransport(receive))
    return sent
