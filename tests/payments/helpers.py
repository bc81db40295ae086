"""Shared helpers: point a tenant's provider configuration at an in-process simulator."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.notifications.mailer import MemoryMailer
from novabilling.payments.credentials import provider_factory
from novabilling.runtime import Runtime
from novabilling.simulators import paystack as paystack_sim
from novabilling.worker import build_handlers

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


def use_inprocess_jobs(runtime: Runtime) -> InProcessQueue:
    """Run every job in this process on both backends (no BullMQ worker in tests)."""
    queue = InProcessQueue(build_handlers(runtime), backoff_base_seconds=0.01)
    runtime.jobs = queue
    runtime.mailer = MemoryMailer()
    return queue


async def make_invoice(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    currency: str = "NGN",
    amount: int | str = 5000,
    email: str = paystack_sim.TEST_EMAIL,
    metadata: dict[str, Any] | None = None,
    phone: str | None = None,
) -> dict[str, Any]:
    """A customer and a finalized (PENDING) invoice for ``amount`` major units."""
    customer = await client.post(
        "/api/customers",
        json={
            "externalId": f"cus-{secrets.token_hex(4)}",
            "email": email,
            "currency": currency,
            "metadata": metadata,
            "phone": phone,
        },
        headers=headers,
    )
    assert customer.status_code == 201, customer.text
    invoice = await client.post(
        "/api/invoices",
        json={
            "customerId": customer.json()["id"],
            "currency": currency,
            "dueDate": "2030-01-01",
            "items": [{"description": "Pro plan", "quantity": 1, "unitAmount": amount}],
        },
        headers=headers,
    )
    assert invoice.status_code == 201, invoice.text
    final = await client.post(f"/api/invoices/{invoice.json()['id']}/finalize", headers=headers)
    assert final.status_code == 201, final.text
    result: dict[str, Any] = final.json()
    return result


def paystack_signed(
    body: dict[str, Any], secret: str = PAYSTACK_SECRET
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, separators=(",", ":")).encode()
    return raw, {
        "x-paystack-signature": paystack_sim.sign(secret, raw),
        "content-type": "application/json",
    }
