"""Renewals, trials, cancellations, grace periods and dunning through the tenant tick,
driven by a TestClock, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from novabilling.billing import dunning, renewals
from novabilling.billing.tick import run_tenant_tick
from novabilling.invoices.models import Invoice, InvoiceLine
from novabilling.kit.jobs import job_buffer
from novabilling.subscriptions.models import PendingInvoiceItem, Subscription, SubscriptionEvent
from tests.billing.support import Api, clocked_runtime, invoices_of
from tests.conftest import Backend

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


async def test_in_advance_first_invoice_then_renewals(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "29.99"})
        cust = await api.customer(netPaymentTerms=7)
        sub = await api.subscription(cust["id"], plan["id"], "usd")
        tid = api.creds.id
        for _ in range(2):
            await run_tenant_tick(runtime, tid)
        [first] = await invoices_of(runtime, tid)
        assert (first.invoice_number, first.status, first.total_minor) == (
            "INV-00001",
            "PENDING",
            2999,
        )
        assert first.period_start == T0 and first.due_date == T0 + timedelta(days=7)
        assert first.metadata_ and first.metadata_["planName"] == plan["name"]
        assert [j["invoice_id"] for j in queue.named("email.invoice_issued")] == [first.id]

        clock.set(datetime(2026, 3, 1, tzinfo=UTC))  # Feb 28 09:00 has passed
        for _ in range(2):
            await run_tenant_tick(runtime, tid)
        invoices = await invoices_of(runtime, tid)
        assert [(i.invoice_number, i.period_start, i.period_end) for i in invoices] == [
            ("INV-00001", T0, datetime(2026, 2, 28, 9, tzinfo=UTC)),
            (
                "INV-00002",
                datetime(2026, 2, 28, 9, tzinfo=UTC),
                datetime(2026, 3, 31, 9, tzinfo=UTC),
            ),
        ]
        r = await client.get(f"/api/subscriptions/{sub['id']}", headers=api.creds.key_headers)
        body = r.json()
        assert body["currentPeriodEnd"] == "2026-03-31T09:00:00.000Z"
        assert [i["invoiceNumber"] for i in body["invoices"]] == ["INV-00002", "INV-00001"]


async def test_in_arrears_trial_and_cancel_at_period_end(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        plan = await api.plan("WEEKLY", "IN_ARREARS", {"KES": 500})
        cust = await api.customer("KES")
        sub = await api.subscription(cust["id"], plan["id"], "KES", trialDays=3)
        tid = api.creds.id
        clock.advance(timedelta(days=1))
        await run_tenant_tick(runtime, tid)
        assert queue.named("email.trial_ending") == [
            {"tenant_id": tid, "subscription_id": sub["id"]}
        ]
        clock.set(T0 + timedelta(days=3, minutes=1))
        await run_tenant_tick(runtime, tid)
        assert await invoices_of(runtime, tid) == []  # a trial bills nothing in arrears
        clock.set(T0 + timedelta(days=10, minutes=1))
        await run_tenant_tick(runtime, tid)
        [inv] = await invoices_of(runtime, tid)
        assert inv.period_start == T0 + timedelta(days=3) and inv.total_minor == 50000
        assert len(queue.named("email.trial_ending")) == 1
        await api.post(f"/api/subscriptions/{sub['id']}/cancel", {"cancelAt": "period_end"})
        clock.set(T0 + timedelta(days=17, minutes=1))
        for _ in range(2):
            await run_tenant_tick(runtime, tid)
        invoices = await invoices_of(runtime, tid)
        assert [i.period_start for i in invoices] == [
            T0 + timedelta(days=3),
            T0 + timedelta(days=10),
        ]
        r = await client.get(f"/api/subscriptions/{sub['id']}", headers=api.creds.key_headers)
        assert r.json()["status"] == "CANCELED"
        assert len(queue.named("email.subscription_canceled")) == 1
        clock.set(T0 + timedelta(days=60))
        await run_tenant_tick(runtime, tid)
        assert len(await invoices_of(runtime, tid)) == 2


async def test_proration_lines_are_consumed_once(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _):
        api = await Api.new_tenant(client)
        basic = await api.plan("MONTHLY", "IN_ARREARS", {"USD": 10})
        pro = await api.plan("MONTHLY", "IN_ARREARS", {"USD": 40})
        cust = await api.customer()
        sub = await api.subscription(cust["id"], basic["id"], "USD")
        tid = api.creds.id
        clock.set(datetime(2026, 2, 14, 9, tzinfo=UTC))
        await api.post(
            f"/api/subscriptions/{sub['id']}/change-plan", {"newPlanId": pro["id"], "prorate": True}
        )
        maker = await runtime.engines.sessionmaker(tid)
        async with maker() as session:
            pending = (await session.scalars(select(PendingInvoiceItem))).all()
            expected_extra = sum(p.amount_minor for p in pending)
        assert expected_extra > 0
        clock.set(datetime(2026, 3, 15, tzinfo=UTC))
        for _ in range(2):
            await run_tenant_tick(runtime, tid)
        [inv] = await invoices_of(runtime, tid)
        assert inv.total_minor == 4000 + expected_extra
        async with maker() as session:
            lines = (
                await session.scalars(
                    select(InvoiceLine)
                    .where(InvoiceLine.invoice_id == inv.id)
                    .order_by(InvoiceLine.position)
                )
            ).all()
            assert [ln.type for ln in lines] == ["plan", "proration_charge"]
            left = (
                await session.scalars(
                    select(PendingInvoiceItem).where(PendingInvoiceItem.invoice_id.is_(None))
                )
            ).all()
            assert left == []


async def test_grace_period_draft_then_finalized(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        plan = await api.plan(
            "DAILY", "IN_ARREARS", {"USD": 5}, invoiceGracePeriodDays=2, netPaymentTerms=10
        )
        cust = await api.customer()
        await api.subscription(cust["id"], plan["id"], "USD")
        tid = api.creds.id
        clock.set(T0 + timedelta(days=1))
        await run_tenant_tick(runtime, tid)
        [draft] = await invoices_of(runtime, tid)
        assert draft.status == "DRAFT" and draft.metadata_
        assert draft.metadata_["gracePeriodEndsAt"] == "2026-02-03T09:00:00.000Z"
        assert queue.named("email.invoice_issued") == []
        clock.set(T0 + timedelta(days=3))
        await run_tenant_tick(runtime, tid)
        invoices = {i.id: i for i in await invoices_of(runtime, tid)}
        assert invoices[draft.id].status == "PENDING"
        assert invoices[draft.id].due_date == T0 + timedelta(days=1 + 10)  # issued at creation
        assert draft.id in [j["invoice_id"] for j in queue.named("email.invoice_issued")]


async def test_dunning_retries_then_cancels(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": 20})
        cust = await api.customer()
        sub = await api.subscription(cust["id"], plan["id"], "USD")
        tid = api.creds.id
        await run_tenant_tick(runtime, tid)
        [inv] = await invoices_of(runtime, tid)
        maker = await runtime.engines.sessionmaker(tid)
        from novabilling.kit.jobs import job_buffer

        async def fail() -> None:
            async with job_buffer(queue) as buffer, maker() as session:
                await dunning.record_failure(
                    session, tenant_id=tid, invoice_id=inv.id, reason="card declined", clock=clock
                )
                await session.commit()
                await buffer.flush()

        await fail()
        async with maker() as session:
            s = await session.get(Subscription, sub["id"])
            i = await session.get(Invoice, inv.id)
            assert s is not None and i is not None
            assert s.status == "PAST_DUE" and i.status == "FAILED"
            assert i.next_retry_at == T0 + timedelta(days=1)
        await run_tenant_tick(runtime, tid)
        assert queue.named("payments.charge") == []  # not due yet
        for day, attempt in ((1, 1), (3, 2), (5, 3)):
            clock.set(T0 + timedelta(days=day))
            for _ in range(2):
                await run_tenant_tick(runtime, tid)
            assert queue.named("payments.charge")[-1] == {
                "tenant_id": tid,
                "invoice_id": inv.id,
                "attempt": attempt,
            }
            await fail()
        assert len(queue.named("payments.charge")) == 3
        async with maker() as session:
            s = await session.get(Subscription, sub["id"])
            assert s is not None and s.status == "CANCELED"
            reasons = (
                await session.scalars(
                    select(SubscriptionEvent.reason)
                    .where(SubscriptionEvent.subscription_id == sub["id"])
                    .order_by(SubscriptionEvent.at, SubscriptionEvent.id)
                )
            ).all()
            assert reasons.count("payment_failed") == 3 and reasons[-1] == "dunning_exhausted"
        assert len(queue.named("email.payment_failed")) == 4
        [canceled] = [
            job for job in queue.named("webhook.deliver") if job["event"] == "subscription.canceled"
        ]
        assert canceled["data"] == {
            "subscriptionId": sub["id"],
            "customerId": cust["id"],
            "cancelAt": "immediate",
        }


async def test_payment_reactivates_past_due(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": 20})
        sub = await api.subscription((await api.customer())["id"], plan["id"], "USD")
        tid = api.creds.id
        await run_tenant_tick(runtime, tid)
        [inv] = await invoices_of(runtime, tid)
        maker = await runtime.engines.sessionmaker(tid)
        from novabilling.kit.jobs import job_buffer

        async with job_buffer(queue) as buffer, maker() as session:
            await dunning.record_failure(
                session, tenant_id=tid, invoice_id=inv.id, reason="insufficient funds", clock=clock
            )
            await session.commit()
            await buffer.flush()
        r = await client.post(f"/api/invoices/{inv.id}/mark-paid", headers=api.creds.key_headers)
        assert r.status_code == 201 and r.json()["status"] == "PAID"
        r = await client.get(f"/api/subscriptions/{sub['id']}", headers=api.creds.key_headers)
        assert r.json()["status"] == "ACTIVE"


async def test_racing_renewal_conflict_rolls_back(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        plan = await api.plan("MONTHLY", "IN_ARREARS", {"USD": 20})
        sub = await api.subscription((await api.customer())["id"], plan["id"], "USD")
        tid = api.creds.id
        clock.set(datetime(2026, 3, 1, tzinfo=UTC))
        maker = await runtime.engines.sessionmaker(tid)
        ctx = renewals.TickContext(
            tenant=await runtime.tenant_profiles.get(tid), now=clock.now(), clock=clock
        )
        # another worker's invoice for the same period
        async with job_buffer(queue) as buffer, maker() as session:
            s = await session.get(Subscription, sub["id"])
            assert s is not None
            await renewals.issue_period_invoice(
                session,
                ctx,
                s,
                period=(s.current_period_start, s.current_period_end),
                amount_minor=2000,
                plan=None,
            )
            await session.commit()
            await buffer.flush()
        assert await renewals.process(maker, ctx, sub["id"]) is renewals.Outcome.CONFLICT
        async with maker() as session:
            s = await session.get(Subscription, sub["id"])
            assert s is not None and s.current_period_start == T0  # not advanced
        assert [i.invoice_number for i in await invoices_of(runtime, tid)] == ["INV-00001"]


async def test_scheduler_single_flight_enqueues_one_tick_per_tenant(backend: Backend) -> None:
    from novabilling.billing import scheduler

    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        if runtime.redis is not None:  # a fresh lock key per test run
            runtime.settings = runtime.settings.model_copy(
                update={"redis_prefix": f"{runtime.settings.redis_prefix}:{api.creds.id}"}
            )
        counts = await asyncio.gather(*(scheduler.schedule_once(runtime) for _ in range(3)))
        assert sorted(counts)[:2] == [0, 0] and max(counts) >= 1  # one process scheduled
        ticks = [d for _, name, d, _ in queue.jobs if name == scheduler.TICK_JOB]
        assert [t["tenant_id"] for t in ticks].count(api.creds.id) == 1
