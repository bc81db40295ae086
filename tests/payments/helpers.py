"""Shared helpers: point a tenant's provider configuration at an in-process simulator."""

from __future__ import annotations

from typing import Any

import httpx

from novabilling.payments.credentials import provider_factory
from novabilling.runtime import Runtime
from novabilling.simulators import paystack as paystack_sim

PAYSTACK_URL = "http://paystack.sim"
PAYSTACK_SECRET = paystack_sim.DEFAULT_SECRET_KEY


def paystack_credentials(secret: str = PAYSTACK_SECRET) -> dict[str, Any]:
    return {"publicKey": "pk_test_sim", "secretKey": secret, "baseUrl": PAYSTACK_URL}


def attach(runtime: Runtime, base_url: str, app: Any) -> httpx.ASGITransport:
    """Route adapters whose ``baseUrl`` is ``base_url`` to ``app`` in-process."""
    transport = httpx.ASGITransport(app=app)
    provider_factory(runtime).transports[base_url] = transport
    return transport


def paystack(runtime: Runtime, **kwargs: Any) -> paystack_sim.PaystackSimulator:
    sim = paystack_sim.PaystackSimulator(secret_key=PAYSTACK_SECRET, hang_seconds=0.05, **kwargs)
    attach(runtime, PAYSTACK_URL, sim.app)
    return sim


async def configure(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    name: str = "paystack",
    credentials: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {"providerName": name, "credentials": credentials or paystack_credentials(), **extra}
    response = await client.post("/api/payment-providers", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
