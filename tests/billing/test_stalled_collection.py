"""The tick recovers automatic collection whose job was lost, and never charges twice.

A renewal invoice handed to collection stays PENDING forever when its ``payments.charge``
job is lost (Redis down at enqueue, worker killed) or when the provider's answer was lost
(charge PROCESSING, nobody asks again). The tick finds both from DB state and queues the
existing jobs again (``payments.charge`` / ``payments.reconcile``); the Paystack simulator
counts what was really charged. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from novabilling.billing import tick
from novabilling.billing.jobs import RECONCILE_JOB
from novabilling.billing.tick import STALLED_AFTER, run_tenant_tick
from novabilling.invoices.lifecycle import CHARGE_JOB
from novabilling.invoices.models import Invoice
from novabilling.kit.clock import TestClock
from novabilling.kit.jobs import QUEUE_PAYMENTS, job_buffer
from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.payments import charge, failover, service
from novabilling.payments.credentials import provider_factory
from novabilling.payments.models import Payment
from novabilling.runtime import Runtime
from novabilling.simulators import paystack as paystack_sim
from novabilling.subscriptions.models import Subscription
from tests.billing.support import Api, RecordingQueue, clocked_runtime, invoices_of
from tests.conftest import Backend
from tests.payments.helpers import configure, paystack, use_inprocess_jobs

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


@dataclass
class World:
    runtime: Runtime
    clock: TestClock
    client: httpx.AsyncClient
    recorded: RecordingQueue
    sim: paystack_sim.PaystackSimulator
    tenant_id: str
    invoice_id: str

    async def invoice(self) -> Invoice:
        maker = await self.runtime.engines.sessionmaker(self.tenant_id)
        async with maker() as session:
            found = await session.get(Invoice, self.invoice_id)
            assert found is not None
            return found

    async def payments(self) -> list[Payment]:
        maker = await self.runtime.engines.sessionmaker(self.tenant_id)
        async with maker() as session:
            rows = await session.scalars(
                select(Payment).where(Payment.invoice_id == self.invoice_id)
            )
            return list(rows.all())

    def charged(self) -> int:
        """Successful charges at the provider (the money that really moved)."""
        return sum(tx["status"] == "success" for tx in self.sim.transactions.values())

    async def tick(self, queue: InProcessQueue | None = None) -> None:
        await run_tenant_tick(self.runtime, self.tenant_id)
        if queue is not None:
            await queue.join()


@asynccontextmanager
async def world(
    backend: Backend, token: str = paystack_sim.AUTH_SUCCESS, *, auto: bool = True
) -> AsyncIterator[World]:
    """A tenant with Paystack (simulated), a NGN subscription whose customer has a saved
    authorization (``payment_method_id`` set when ``auto``) and its first invoice, issued
    when the subscription was created - before the method was saved, so no charge was
    ever queued for it: the same state as a charge job that was lost."""
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, recorded):
        api = await Api.new_tenant(client)
        sim = paystack(runtime)
        await configure(client, api.creds.key_headers)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"NGN": 5000})
        cust = await api.customer("NGN", email=paystack_sim.TEST_EMAIL)
        sub = await api.subscription(cust["id"], plan["id"], "NGN")
        tid = api.creds.id
        maker = await runtime.engines.sessionmaker(tid)
        async with maker() as session:
            method = await service.save_method(
                session,
                tenant_id=tid,
                customer_id=cust["id"],
                provider="paystack",
                token=token,
                raw={"customer": {"email": paystack_sim.TEST_EMAIL}},
                encryptor=runtime.encryptor,
                clock=clock,
            )
            if auto:
                await session.execute(
                    update(Subscription)
                    .where(Subscription.id == sub["id"])
                    .values(payment_method_id=method.id)
                )
            await session.commit()
        await run_tenant_tick(runtime, tid)
        [invoice] = await invoices_of(runtime, tid)
        assert invoice.status == "PENDING" and invoice.total_minor == 500000
        assert recorded.named("payments.charge") == []  # not stalled for 15 minutes yet
        yield World(runtime, clock, client, recorded, sim, tid, invoice.id)


async def test_lost_charge_job_is_queued_again_once_and_pays(backend: Backend) -> None:
    async with world(backend) as w:
        queue = use_inprocess_jobs(w.runtime)
        w.clock.advance(STALLED_AFTER - timedelta(minutes=1))
        await w.tick(queue)
        assert (await w.invoice()).status == "PENDING" and w.charged() == 0  # not stalled yet
        w.clock.advance(timedelta(minutes=2))
        await w.tick(queue)
        assert (await w.invoice()).status == "PAID"
        [payment] = await w.payments()
        assert payment.status == "SUCCEEDED" and payment.kind == "CHARGE"
        assert payment.id == failover.attempt_payment_id(w.invoice_id, 0, "paystack")
        assert w.charged() == 1 and w.sim.charges_for(payment.reference or "") == 1
        # more ticks, and the lost job finally showing up, change nothing
        for _ in range(2):
            w.clock.advance(STALLED_AFTER)
            await w.tick(queue)
        await queue.enqueue(
            QUEUE_PAYMENTS,
            CHARGE_JOB,
            {"tenant_id": w.tenant_id, "invoice_id": w.invoice_id, "attempt": 0},
        )
        await queue.join()
        assert [p.id for p in await w.payments()] == [payment.id] and w.charged() == 1
        await queue.close()


async def test_requeue_is_at_most_hourly_per_invoice(backend: Backend) -> None:
    async with world(backend) as w:
        before = len(w.recorded.named("payments.charge"))
        w.clock.advance(STALLED_AFTER + timedelta(minutes=1))
        for _ in range(3):  # the scheduler ticks every minute
            await w.tick()
            w.clock.advance(timedelta(minutes=1))
        again = w.recorded.named("payments.charge")[before:]
        assert again == [{"tenant_id": w.tenant_id, "invoice_id": w.invoice_id, "attempt": 0}]
        w.clock.advance(timedelta(hours=1))
        await w.tick()
        assert len(w.recorded.named("payments.charge")) == before + 2


async def test_manual_collection_is_not_charged(backend: Backend) -> None:
    """No saved payment method on the subscription: the customer pays by link or transfer."""
    async with world(backend, auto=False) as w:
        w.clock.advance(STALLED_AFTER * 10)
        await w.tick()
        assert w.recorded.named("payments.charge") == []
        assert w.recorded.named("payments.reconcile") == []


async def test_lost_provider_answer_is_reconciled_not_charged_again(backend: Backend) -> None:
    """AUTH_TIMEOUT: the money moves, the answer is lost (504): the payment stays PROCESSING
    until the tick hands it to ``payments.reconcile``, which verifies by reference."""
    async with world(backend, paystack_sim.AUTH_TIMEOUT) as w:
        queue = use_inprocess_jobs(w.runtime)
        w.clock.advance(STALLED_AFTER + timedelta(minutes=1))
        await w.tick(queue)  # the lost charge job, queued again: runs into the timeout
        [payment] = await w.payments()
        assert payment.status == "PROCESSING" and payment.next_check_at is not None
        assert (await w.invoice()).status == "PENDING" and w.charged() == 1
        await w.tick(queue)  # check not due yet, and an attempt exists: nothing queued
        assert [p.status for p in await w.payments()] == ["PROCESSING"]
        w.clock.set(payment.next_check_at)
        await w.tick(queue)
        [payment] = await w.payments()
        assert payment.status == "SUCCEEDED" and (await w.invoice()).status == "PAID"
        assert w.charged() == 1
        await queue.close()


async def test_crash_after_the_provider_charged_never_charges_twice(backend: Backend) -> None:
    """The worker dies between the provider's answer and recording it: the attempt was
    committed as PROCESSING before the call, so nothing is charged again - the charge job
    queued again sees the attempt in flight, and reconcile settles it by its reference."""
    async with world(backend) as w:
        queue = use_inprocess_jobs(w.runtime)
        maker = await w.runtime.engines.sessionmaker(w.tenant_id)
        async with job_buffer(queue) as buffer:
            started = await failover.begin_next(
                maker,
                tenant_id=w.tenant_id,
                invoice_id=w.invoice_id,
                factory=provider_factory(w.runtime),
                encryptor=w.runtime.encryptor,
                clock=w.clock,
                order={},
                attempt=0,
            )
            assert started is not None
            await charge.send_charge(started.charge)  # the money moves; then the crash
            buffer.discard()
        assert w.charged() == 1
        [payment] = await w.payments()
        assert payment.status == "PROCESSING" and payment.next_check_at is not None
        w.clock.advance(STALLED_AFTER + timedelta(minutes=1))
        await w.tick(queue)
        assert w.charged() == 1 and len(w.sim.transactions) == 1
        w.clock.set(max(w.clock.now(), payment.next_check_at) + timedelta(minutes=1))
        await w.tick(queue)
        [payment] = await w.payments()
        assert payment.status == "SUCCEEDED" and (await w.invoice()).status == "PAID"
        assert w.charged() == 1 and len(w.sim.transactions) == 1
        await queue.close()


async def test_stale_charge_job_does_not_bypass_dunning(backend: Backend) -> None:
    """A declined charge moves dunning on (attempt 1, retry in a day); the original
    attempt-0 job turning up late must not charge again before the retry date."""
    async with world(backend, paystack_sim.AUTH_DECLINE) as w:
        queue = use_inprocess_jobs(w.runtime)
        w.clock.advance(STALLED_AFTER + timedelta(minutes=1))
        await w.tick(queue)
        invoice = await w.invoice()
        assert invoice.status == "FAILED" and invoice.collection_attempts == 1
        tried = sum(w.sim.attempts.values())
        await queue.enqueue(
            QUEUE_PAYMENTS,
            CHARGE_JOB,
            {"tenant_id": w.tenant_id, "invoice_id": w.invoice_id, "attempt": 0},
        )
        await queue.join()
        assert sum(w.sim.attempts.values()) == tried and len(await w.payments()) == 1
        # the dunning retry (attempt 1) does charge, with the next derived reference
        w.clock.set(T0 + timedelta(days=1, minutes=1))
        await w.tick(queue)
        assert sum(w.sim.attempts.values()) == tried + 1
        ids = {p.id for p in await w.payments()}
        assert failover.attempt_payment_id(w.invoice_id, 1, "paystack") in ids and len(ids) == 2
        await queue.close()


def test_the_tick_queues_the_jobs_billing_handles() -> None:
    assert tick.RECONCILE_JOB == RECONCILE_JOB == "payments.reconcile"
    assert CHARGE_JOB == "payments.charge"
