"""Automatic collection with a saved payment method, end to end, for every provider that
stores a token (payment-methods.md, invoice-composition.md step 13): a method saved
through the API, set as the subscription's ``paymentMethodId``, charged off-session for
the opening invoice and again at the renewal through the provider's simulator (Paystack
authorization, Flutterwave card token, Stripe payment method + customer). The customer's
default method is a declining one: only the subscription's method is charged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from novabilling.billing.tick import run_tenant_tick
from novabilling.invoices.models import Invoice
from novabilling.payments.models import Payment
from novabilling.runtime import Runtime
from novabilling.simulators import flutterwave as flutterwave_sim
from novabilling.simulators import paystack as paystack_sim
from novabilling.simulators import stripe as stripe_sim
from tests.billing.support import Api, clocked_runtime
from tests.conftest import Backend
from tests.payments.helpers import (
    attach,
    configure,
    paystack,
    paystack_credentials,
    use_inprocess_jobs,
)

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Provider:
    name: str
    currency: str
    token: str
    declining: str
    customer_ref: str | None = None

    def start(self, runtime: Runtime) -> dict[str, Any]:
        """The simulator attached to the runtime; the credentials to configure."""
        if self.name == "paystack":
            paystack(runtime)
            return paystack_credentials()
        if self.name == "flutterwave":
            sim = flutterwave_sim.FlutterwaveSimulator(
                secret_key=flutterwave_sim.DEFAULT_SECRET_KEY
            )
            attach(runtime, "http://flutterwave.sim", sim.app)
            return {
                "secretKey": flutterwave_sim.DEFAULT_SECRET_KEY,
                "baseUrl": "http://flutterwave.sim",
            }
        sim = stripe_sim.StripeSimulator()
        attach(runtime, "http://stripe.sim", sim.app)
        return {
            "secretKey": stripe_sim.DEFAULT_SECRET_KEY,
            "webhookSecret": stripe_sim.DEFAULT_WEBHOOK_SECRET,
            "baseUrl": "http://stripe.sim",
        }


PROVIDERS = [
    Provider("paystack", "NGN", paystack_sim.AUTH_SUCCESS, paystack_sim.AUTH_DECLINE),
    Provider("flutterwave", "NGN", flutterwave_sim.TOKEN_SUCCESS, flutterwave_sim.TOKEN_DECLINE),
    Provider("stripe", "USD", stripe_sim.PM_SUCCESS, stripe_sim.PM_DECLINE, stripe_sim.CUSTOMER),
]


async def _rows(
    runtime: Runtime, tid: str, customer_id: str
) -> tuple[list[Invoice], list[Payment]]:
    maker = await runtime.engines.sessionmaker(tid)
    async with maker() as session:
        invoices = await session.scalars(
            select(Invoice)
            .where(Invoice.customer_id == customer_id)
            .order_by(Invoice.invoice_number)
        )
        payments = await session.scalars(
            select(Payment)
            .where(Payment.customer_id == customer_id)
            .order_by(Payment.created_at, Payment.id)
        )
        return list(invoices.all()), list(payments.all())


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
async def test_renewal_charges_the_subscriptions_saved_method(
    backend: Backend, provider: Provider
) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _recording):
        queue = use_inprocess_jobs(runtime)
        api = await Api.new_tenant(client)
        h, tid = api.creds.key_headers, api.creds.id
        await configure(client, h, provider.name, provider.start(runtime))
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {provider.currency: "49.99"})
        customer = await api.customer(provider.currency, email=paystack_sim.TEST_EMAIL)

        def method(token: str) -> dict[str, Any]:
            body = {"customerId": customer["id"], "provider": provider.name, "tokenId": token}
            if provider.customer_ref:
                body["providerCustomerId"] = provider.customer_ref
            return body

        declining = await api.post("/api/payment-methods", method(provider.declining))
        saved = await api.post("/api/payment-methods", method(provider.token))
        assert declining["isDefault"] and not saved["isDefault"]
        sub = await api.subscription(
            customer["id"], plan["id"], provider.currency, paymentMethodId=saved["id"]
        )
        await queue.join()

        clock.set(datetime(2026, 3, 1, tzinfo=UTC))  # the Feb 28 09:00 renewal is due
        await run_tenant_tick(runtime, tid)
        await queue.join()

        invoices, payments = await _rows(runtime, tid, customer["id"])
        assert [(i.status, i.total_minor) for i in invoices] == [("PAID", 4999), ("PAID", 4999)]
        assert [i.subscription_id for i in invoices] == [sub["id"], sub["id"]]
        assert [(p.provider, p.kind, p.status, p.amount_minor) for p in payments] == [
            (provider.name, "CHARGE", "SUCCEEDED", 4999),
            (provider.name, "CHARGE", "SUCCEEDED", 4999),
        ]
        assert [p.invoice_id for p in payments] == [i.id for i in invoices]
        r = await client.get(f"/api/subscriptions/{sub['id']}", headers=h)
        assert r.json()["status"] == "ACTIVE" and r.json()["paymentMethodId"] == saved["id"]


async def test_a_declined_renewal_charge_is_dunned(backend: Backend) -> None:
    provider = PROVIDERS[0]
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _recording):
        queue = use_inprocess_jobs(runtime)
        api = await Api.new_tenant(client)
        h, tid = api.creds.key_headers, api.creds.id
        await configure(client, h, provider.name, provider.start(runtime))
        plan = await api.plan("MONTHLY", "IN_ARREARS", {"NGN": "1000"})
        customer = await api.customer("NGN", email=paystack_sim.TEST_EMAIL)
        saved = await api.post(
            "/api/payment-methods",
            {"customerId": customer["id"], "provider": "paystack", "tokenId": provider.declining},
        )
        sub = await api.subscription(customer["id"], plan["id"], "NGN", paymentMethodId=saved["id"])
        clock.set(datetime(2026, 3, 1, tzinfo=UTC))
        await run_tenant_tick(runtime, tid)
        await queue.join()
        [invoice], [payment] = await _rows(runtime, tid, customer["id"])
        assert (invoice.status, invoice.total_minor) == ("FAILED", 100_000)
        assert invoice.next_retry_at is not None
        assert (payment.status, payment.kind) == ("FAILED", "CHARGE") and payment.failure_reason
        r = await client.get(f"/api/subscriptions/{sub['id']}", headers=h)
        assert r.json()["status"] == "PAST_DUE"
