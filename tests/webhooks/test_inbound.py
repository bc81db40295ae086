"""Inbound webhook intake: signature over raw bytes, inbox row, 401s change nothing,
duplicates stored once, tenant routing by path or by our reference."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from novabilling.runtime import Runtime
from novabilling.tenancy.models import WebhookInbox
from tests.conftest import TenantCreds, assert_error
from tests.payments.helpers import configure, paystack_signed, use_inprocess_jobs


def charge_success(tenant_id: str, tx_id: int = 4099260516) -> dict[str, Any]:
    return {
        "event": "charge.success",
        "data": {
            "id": tx_id,
            "reference": f"cnotapayment0000000000000-{tenant_id}",
            "amount": 500000,
            "currency": "NGN",
            "status": "success",
        },
    }


async def inbox_rows(runtime: Runtime, tenant_id: str) -> list[WebhookInbox]:
    async with runtime.central() as session:
        rows = await session.scalars(
            select(WebhookInbox).where(WebhookInbox.tenant_id == tenant_id)
        )
        return list(rows)


async def test_good_signature_is_stored_once(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    await configure(client, tenant.key_headers)
    body, headers = paystack_signed(charge_success(tenant.id))
    first = await client.post("/webhooks/paystack", content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "success"}
    again = await client.post(f"/webhooks/paystack/{tenant.id}", content=body, headers=headers)
    assert again.status_code == 200 and again.json() == {"status": "success"}
    await queue.join()
    rows = await inbox_rows(runtime, tenant.id)
    assert len(rows) == 1
    assert rows[0].provider == "paystack" and rows[0].body == body.decode()
    assert rows[0].event_id == f"{tenant.id}:charge.success:4099260516"
    assert rows[0].status == "IGNORED"  # no such payment: nothing changed


async def test_bad_signatures_are_401_and_store_nothing(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    await configure(client, tenant.key_headers)
    body, headers = paystack_signed(charge_success(tenant.id))
    tampered = body.replace(b"500000", b"900000")
    assert_error(await client.post("/webhooks/paystack", content=tampered, headers=headers), 401)
    _, wrong = paystack_signed(charge_success(tenant.id), secret="sk_test_wrong")
    assert_error(await client.post("/webhooks/paystack", content=body, headers=wrong), 401)
    bare = {"content-type": "application/json"}
    assert_error(await client.post("/webhooks/paystack", content=body, headers=bare), 401)
    assert_error(
        await client.post(f"/webhooks/paystack/{tenant.id}", content=body, headers=bare), 401
    )
    # Re-serialised JSON (spaces) breaks the signature: verification is over raw bytes.
    spaced = body.replace(b",", b", ")
    assert_error(await client.post("/webhooks/paystack", content=spaced, headers=headers), 401)
    assert await inbox_rows(runtime, tenant.id) == []


async def test_unknown_tenant_or_provider(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds, runtime: Runtime
) -> None:
    await configure(client, tenant.key_headers)
    body, headers = paystack_signed(charge_success(tenant.id))
    # The other tenant has no Paystack configuration: its path cannot verify anything.
    path = f"/webhooks/paystack/{other_tenant.id}"
    assert_error(await client.post(path, content=body, headers=headers), 401)
    assert_error(
        await client.post("/webhooks/paystack/nonexistent", content=body, headers=headers), 401
    )
    assert_error(await client.post("/webhooks/acmepay", content=body, headers=headers), 404)
    async with runtime.central() as session:
        total = await session.scalar(
            select(func.count())
            .select_from(WebhookInbox)
            .where(WebhookInbox.tenant_id.in_([tenant.id, other_tenant.id]))
        )
    assert total == 0


async def test_stripe_answer_shape(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    import hashlib
    import hmac
    import json
    import time

    use_inprocess_jobs(runtime)
    secret = "whsec_test_inbound"
    creds = {"secretKey": "sk_test_x", "webhookSecret": secret}
    await configure(client, tenant.key_headers, name="stripe", credentials=creds)
    event = {
        "id": "evt_1",
        "type": "customer.created",
        "data": {"object": {"id": "cus_1", "metadata": {"nb_reference": f"cx-{tenant.id}"}}},
    }
    raw = json.dumps(event).encode()
    t = int(time.time())
    sig = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    ok = await client.post(
        "/webhooks/stripe", content=raw, headers={"stripe-signature": f"t={t},v1={sig}"}
    )
    assert ok.status_code == 200 and ok.json() == {"received": True}
    stale = await client.post(
        "/webhooks/stripe", content=raw, headers={"stripe-signature": f"t={t - 900},v1={sig}"}
    )
    assert_error(stale, 401)
