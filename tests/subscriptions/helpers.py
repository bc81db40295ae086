"""Shared setup for subscription tests: customers and plans made through the API."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.conftest import TenantCreds


async def make_customer(client: httpx.AsyncClient, creds: TenantCreds) -> dict[str, Any]:
    body = {
        "externalId": f"cus_{secrets.token_hex(4)}",
        "email": f"buyer-{secrets.token_hex(3)}@test.local",
        "name": "Buyer",
        "currency": "USD",
    }
    r = await client.post("/api/customers", headers=creds.key_headers, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def make_plan(
    client: httpx.AsyncClient,
    creds: TenantCreds,
    *,
    usd: str | None = "30",
    interval: str = "MONTHLY",
    timing: str = "IN_ADVANCE",
    **extra: Any,
) -> dict[str, Any]:
    prices = [{"currency": "UGX", "amount": 90000}]
    if usd is not None:
        prices.append({"currency": "USD", "amount": usd})
    body = {
        "name": f"Plan {secrets.token_hex(2)}",
        "code": f"plan_{secrets.token_hex(4)}",
        "billingInterval": interval,
        "billingTiming": timing,
        "prices": prices,
        **extra,
    }
    r = await client.post("/api/plans", headers=creds.key_headers, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def subscribe(
    client: httpx.AsyncClient,
    creds: TenantCreds,
    customer: dict[str, Any],
    plan: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    body = {"customerId": customer["id"], "planId": plan["id"], "currency": "usd", **extra}
    r = await client.post("/api/subscriptions", headers=creds.key_headers, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())
