"""Bounded catch-up (issue 14, defect 5): a subscription far behind is billed for its
current period only; the tenant setting ``backBilling`` bills every missed period. Through
the API and the tenant tick on both backends, time from a TestClock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from novabilling.billing.tick import run_tenant_tick
from novabilling.subscriptions.models import SubscriptionEvent
from tests.billing.support import Api, clocked_runtime, invoices_of
from tests.conftest import Backend, assert_error

T0 = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TWO_YEARS_BACK = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)


def _month(k: int) -> datetime:
    """Boundary k of the monthly schedule anchored at TWO_YEARS_BACK (day 10 every month)."""
    total = 2024 * 12 + 5 + k
    return TWO_YEARS_BACK.replace(year=total // 12, month=total % 12 + 1)


async def _settings(api: Api, **settings: object) -> None:
    r = await api.client.patch(
        "/api/tenants/me", headers=api.creds.token_headers, json={"settings": settings}
    )
    assert r.status_code == 200, r.text


async def _events(api: Api, runtime: object, sub_id: str) -> list[SubscriptionEvent]:
    maker = await runtime.engines.sessionmaker(api.creds.id)  # type: ignore[attr-defined]
    async with maker() as session:
        rows = await session.scalars(
            select(SubscriptionEvent).where(SubscriptionEvent.subscription_id == sub_id)
        )
        return list(rows.all())


async def test_two_years_behind_is_billed_for_the_current_period_only(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, _clock, client, queue):
        api = await Api.new_tenant(client)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "30.00"})
        cust = await api.customer()
        sub = await api.subscription(cust["id"], plan["id"], "USD", startDate="2024-06-10T12:00Z")
        tid = api.creds.id
        assert await invoices_of(runtime, tid) == []  # its first period ended two years ago

        first = await run_tenant_tick(runtime, tid)
        second = await run_tenant_tick(runtime, tid)
        [invoice] = await invoices_of(runtime, tid)
        assert first.invoiced == 1 and second.invoiced == 0 and not second.outcomes
        assert (invoice.period_start, invoice.period_end) == (_month(24), _month(25))
        assert invoice.period_start <= T0 < invoice.period_end
        assert (invoice.total_minor, invoice.invoice_number) == (3000, "INV-00001")
        assert len(queue.named("email.invoice_issued")) == 1

        r = await client.get(f"/api/subscriptions/{sub['id']}", headers=api.creds.key_headers)
        body = r.json()
        assert body["currentPeriodStart"] == "2026-06-10T12:00:00.000Z"
        assert body["currentPeriodEnd"] == "2026-07-10T12:00:00.000Z"
        assert body["startedAt"] == "2024-06-10T12:00:00.000Z"
        [skipped] = [
            e for e in await _events(api, runtime, sub["id"]) if e.reason == "periods_skipped"
        ]
        assert skipped.data == {
            "skippedFrom": ["2024-06-10T12:00:00.000Z", "2024-07-10T12:00:00.000Z"],
            "period": ["2026-05-10T12:00:00.000Z", "2026-06-10T12:00:00.000Z"],
            "periodsSkipped": 23,
        }


async def test_back_billing_setting_bills_every_missed_period(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, _clock, client, _queue):
        api = await Api.new_tenant(client)
        await _settings(api, backBilling=True)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "30.00"})
        cust = await api.customer()
        await api.subscription(cust["id"], plan["id"], "USD", startDate="2024-06-10T12:00Z")
        tid = api.creds.id
        assert len(await invoices_of(runtime, tid)) == 1  # period 0, with the subscription
        await run_tenant_tick(runtime, tid)
        again = await run_tenant_tick(runtime, tid)
        invoices = await invoices_of(runtime, tid)
        assert again.invoiced == 0
        assert [(i.period_start, i.period_end) for i in invoices] == [
            (_month(k), _month(k + 1)) for k in range(25)
        ]
        assert {i.total_minor for i in invoices} == {3000}
        assert [i.invoice_number for i in invoices] == [f"INV-{n:05d}" for n in range(1, 26)]

        await _settings(api, backBilling=None)  # null clears it: bounded again
        r = await api.client.get("/api/tenants/me", headers=api.creds.token_headers)
        assert "backBilling" not in r.json()["settings"]


async def test_in_arrears_far_behind_bills_the_period_that_just_ended(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, _clock, client, _queue):
        api = await Api.new_tenant(client)
        plan = await api.plan("MONTHLY", "IN_ARREARS", {"USD": "12.50"})
        cust = await api.customer()
        await api.subscription(cust["id"], plan["id"], "USD", startDate="2024-06-10T12:00Z")
        tid = api.creds.id
        await run_tenant_tick(runtime, tid)
        await run_tenant_tick(runtime, tid)
        [invoice] = await invoices_of(runtime, tid)
        assert (invoice.period_start, invoice.period_end) == (_month(23), _month(24))
        assert invoice.total_minor == 1250


async def test_a_trial_that_ended_long_ago_bills_the_current_period_only(
    backend: Backend,
) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, _clock, client, _queue):
        api = await Api.new_tenant(client)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "30.00"})
        cust = await api.customer()
        sub = await api.subscription(
            cust["id"], plan["id"], "USD", startDate="2024-06-10T12:00Z", trialDays=14
        )
        tid = api.creds.id
        await run_tenant_tick(runtime, tid)
        await run_tenant_tick(runtime, tid)
        [invoice] = await invoices_of(runtime, tid)
        anchor = TWO_YEARS_BACK + timedelta(days=14)  # the 24th of each month
        assert invoice.period_start == anchor.replace(year=2026, month=5)
        assert invoice.period_end == anchor.replace(year=2026, month=6)
        r = await client.get(f"/api/subscriptions/{sub['id']}", headers=api.creds.key_headers)
        assert r.json()["status"] == "ACTIVE"


async def test_within_the_window_every_missed_period_is_billed(backend: Backend) -> None:
    """An outage of the billing engine shorter than the catch-up window is made good."""
    async with clocked_runtime(backend.settings, T0) as (runtime, _clock, client, _queue):
        api = await Api.new_tenant(client)
        plan = await api.plan("WEEKLY", "IN_ADVANCE", {"USD": "7.00"})
        cust = await api.customer()
        start = T0 - timedelta(days=20)
        await api.subscription(cust["id"], plan["id"], "USD", startDate=start.isoformat())
        tid = api.creds.id
        await run_tenant_tick(runtime, tid)
        invoices = await invoices_of(runtime, tid)
        assert [i.period_start for i in invoices] == [
            start + timedelta(days=7 * k) for k in range(3)
        ]
        assert sum(i.total_minor for i in invoices) == 2100


async def test_back_billing_setting_must_be_a_boolean(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (_runtime, _clock, client, _queue):
        api = await Api.new_tenant(client)
        r = await client.patch(
            "/api/tenants/me",
            headers=api.creds.token_headers,
            json={"settings": {"backBilling": "yes", "other": 1}},
        )
        assert_error(r, 400, "settings.backBilling")
        r = await client.get("/api/tenants/me", headers=api.creds.token_headers)
        assert "other" not in (r.json()["settings"] or {})  # nothing saved
