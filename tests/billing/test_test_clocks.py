"""Test clocks (issue 14, "Beyond the original"): CRUD, attachment, advancing with the
scheduler's tick, isolation both ways. Through the API on both backends; the runtime's
own time from a TestClock far from the test clock's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from novabilling.billing.tick import run_tenant_tick
from novabilling.invoices.models import FAILED, Invoice
from novabilling.runtime import Runtime
from tests.billing.support import Api, clocked_runtime
from tests.conftest import Backend, assert_error

WALL = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # the runtime's clock
FROZEN = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)  # the test clock's


def _at(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def _invoices(runtime: Runtime, tenant_id: str, customer_id: str) -> list[Invoice]:
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        rows = await session.scalars(
            select(Invoice)
            .where(Invoice.customer_id == customer_id)
            .order_by(Invoice.period_start, Invoice.invoice_number)
        )
        return list(rows.all())


async def _new_clock(api: Api, frozen: datetime = FROZEN, **extra: Any) -> dict[str, Any]:
    return dict(await api.post("/api/test-clocks", {"frozenTime": frozen.isoformat(), **extra}))


async def _advance(api: Api, clock_id: str, to: datetime) -> Any:
    r = await api.client.post(
        f"/api/test-clocks/{clock_id}/advance",
        headers=api.creds.key_headers,
        json={"frozenTime": to.isoformat()},
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_create_get_list_delete(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, WALL) as (_runtime, _clock, client, _queue):
        api = await Api.new_tenant(client)
        made = await _new_clock(api, name="Renewals demo")
        assert made["name"] == "Renewals demo" and made["frozenTime"] == _at(FROZEN)
        assert (made["status"], made["customers"]) == ("ready", 0)
        assert made["createdAt"] == _at(WALL)
        other = await _new_clock(api, FROZEN + timedelta(days=1))
        assert other["name"] is None

        got = await client.get(f"/api/test-clocks/{made['id']}", headers=api.creds.key_headers)
        assert got.status_code == 200 and got.json() == made
        listed = await client.get("/api/test-clocks?limit=1", headers=api.creds.token_headers)
        assert listed.status_code == 200
        body = listed.json()
        assert body["meta"] == {"total": 2, "page": 1, "limit": 1, "totalPages": 2}
        assert [c["id"] for c in body["data"]] == [other["id"]]  # newest first

        r = await client.delete(f"/api/test-clocks/{made['id']}", headers=api.creds.key_headers)
        assert r.status_code == 200
        assert r.json() == {"message": "Test clock deleted successfully", "customersDeleted": 0}
        r = await client.get(f"/api/test-clocks/{made['id']}", headers=api.creds.key_headers)
        assert_error(r, 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "frozenTime"),
        ({"frozenTime": "soon"}, "frozenTime"),
        ({"frozenTime": "1999-12-31"}, "frozenTime"),
        ({"frozenTime": "2025-01-01", "name": ""}, "name"),
        ({"frozenTime": "2025-01-01", "name": "x" * 201}, "name"),
        ({"frozenTime": "2025-01-01", "speed": 2}, "property"),
    ],
)
async def test_create_bad_input_names_the_field(
    backend: Backend, body: dict[str, Any], field: str
) -> None:
    async with clocked_runtime(backend.settings, WALL) as (_runtime, _clock, client, _queue):
        api = await Api.new_tenant(client)
        r = await client.post("/api/test-clocks", headers=api.creds.key_headers, json=body)
        assert_error(r, 400, field)


async def test_advance_bad_input_names_frozen_time(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, WALL) as (_runtime, _clock, client, _queue):
        api = await Api.new_tenant(client)
        made = await _new_clock(api)
        path = f"/api/test-clocks/{made['id']}/advance"
        for to in (
            FROZEN,  # not forward
            FROZEN - timedelta(days=1),
            FROZEN + timedelta(days=2 * 365 + 2),  # more than two years
            "later",
        ):
            value = to.isoformat() if isinstance(to, datetime) else to
            r = await client.post(path, headers=api.creds.key_headers, json={"frozenTime": value})
            assert_error(r, 400, "frozenTime")
        r = await client.post(path, headers=api.creds.key_headers, json={})
        assert_error(r, 400, "frozenTime")
        latest = FROZEN.replace(year=2027)  # exactly two years: allowed
        assert (await _advance(api, made["id"], latest))["frozenTime"] == _at(latest)


async def test_another_tenants_clock_is_404_and_no_auth_is_401(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, WALL) as (_runtime, _clock, client, _queue):
        owner = await Api.new_tenant(client)
        stranger = await Api.new_tenant(client)
        made = await _new_clock(owner)
        path = f"/api/test-clocks/{made['id']}"
        headers = stranger.creds.key_headers
        later = {"frozenTime": (FROZEN + timedelta(days=1)).isoformat()}
        assert_error(await client.get(path, headers=headers), 404)
        assert_error(await client.delete(path, headers=headers), 404)
        assert_error(await client.post(f"{path}/advance", headers=headers, json=later), 404)
        r = await client.post(
            "/api/customers",
            headers=headers,
            json={
                "externalId": "c1",
                "email": "a@test.local",
                "currency": "USD",
                "testClockId": made["id"],
            },
        )
        assert_error(r, 400, "testClockId")
        for method, url, body in (
            ("POST", "/api/test-clocks", {"frozenTime": "2025-01-01"}),
            ("GET", "/api/test-clocks", None),
            ("GET", path, None),
            ("DELETE", path, None),
            ("POST", f"{path}/advance", later),
        ):
            assert_error(await client.request(method, url, json=body), 401)
        assert (await client.get(path, headers=owner.creds.key_headers)).status_code == 200


async def test_advance_bills_attached_customers_as_the_scheduler_would(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, WALL) as (runtime, _clock, client, queue):
        api = await Api.new_tenant(client)
        tid = api.creds.id
        made = await _new_clock(api)
        monthly = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "30.00"})
        weekly = await api.plan("WEEKLY", "IN_ARREARS", {"USD": "5.00"})
        on_clock = await api.customer(testClockId=made["id"])
        assert on_clock["testClockId"] == made["id"]
        assert on_clock["createdAt"] == _at(FROZEN)  # created at the clock's time
        elsewhere = await api.customer()
        assert elsewhere["testClockId"] is None

        sub = await api.subscription(on_clock["id"], monthly["id"], "USD")
        assert sub["startedAt"] == _at(FROZEN) and sub["createdAt"] == _at(FROZEN)
        trial = await api.subscription(on_clock["id"], weekly["id"], "USD", trialDays=7)
        assert trial["trialEnd"] == _at(FROZEN + timedelta(days=7))
        other = await api.subscription(elsewhere["id"], monthly["id"], "USD")
        assert other["startedAt"] == _at(WALL)
        [first] = await _invoices(runtime, tid, on_clock["id"])
        assert first.period_start == FROZEN and first.created_at == FROZEN

        target = FROZEN + timedelta(days=90)  # 2025-04-15 09:00
        out = await _advance(api, made["id"], target)
        assert out["frozenTime"] == _at(target) and out["status"] == "ready"
        assert out["customers"] == 1
        run = out["run"]
        # monthly: Feb 15, Mar 15, Apr 15; weekly in arrears after the trial: the weeks
        # ending Jan 29 ... Apr 9 (11 of them; the one ending Apr 16 is still running)
        assert run["invoiced"] == 3 + 11
        assert run["reminders"] == 1
        assert run["renewals"] == {"advanced": 1, "invoiced": 14}

        invoices = await _invoices(runtime, tid, on_clock["id"])
        monthly_invoices = [i for i in invoices if i.total_minor == 3000]
        months = [FROZEN.replace(month=m) for m in (1, 2, 3, 4)]
        assert [i.period_start for i in monthly_invoices] == months
        # each issued at the instant it fell due, as the scheduler would have issued it
        assert [i.created_at for i in monthly_invoices] == months
        weekly_invoices = [i for i in invoices if i.total_minor == 500]
        weeks = [FROZEN + timedelta(days=7 * k) for k in range(1, 12)]
        assert [i.period_start for i in weekly_invoices] == weeks
        assert [i.created_at for i in weekly_invoices] == [w + timedelta(days=7) for w in weeks]
        reminders = queue.named("email.trial_ending")
        assert reminders == [{"tenant_id": tid, "subscription_id": trial["id"]}]

        # the clock never touched the customer that is not on it
        assert len(await _invoices(runtime, tid, elsewhere["id"])) == 1
        r = await client.get(f"/api/subscriptions/{other['id']}", headers=api.creds.key_headers)
        assert r.json()["currentPeriodStart"] == _at(WALL)
        r = await client.get(f"/api/subscriptions/{sub['id']}", headers=api.creds.key_headers)
        assert r.json()["currentPeriodStart"] == _at(months[-1])

        again = await _advance(api, made["id"], target + timedelta(hours=1))
        assert again["run"]["invoiced"] == 0


async def test_the_scheduler_tick_never_bills_attached_customers(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, WALL) as (runtime, clock, client, _queue):
        api = await Api.new_tenant(client)
        tid = api.creds.id
        made = await _new_clock(api, WALL)  # frozen at the runtime's own time
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "30.00"})
        on_clock = await api.customer(testClockId=made["id"])
        elsewhere = await api.customer()
        await api.subscription(on_clock["id"], plan["id"], "USD")
        await api.subscription(elsewhere["id"], plan["id"], "USD")
        clock.set(WALL + timedelta(days=40))  # Jul 1 has passed on the wall
        result = await run_tenant_tick(runtime, tid)
        assert result.invoiced == 1  # the customer on no clock: Jul 1
        assert len(await _invoices(runtime, tid, elsewhere["id"])) == 2
        assert len(await _invoices(runtime, tid, on_clock["id"])) == 1  # frozen: untouched


async def test_advance_finalizes_drafts_and_runs_dunning_retries(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, WALL) as (runtime, _clock, client, queue):
        api = await Api.new_tenant(client)
        tid = api.creds.id
        made = await _new_clock(api)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "30.00"}, invoiceGracePeriodDays=3)
        on_clock = await api.customer(testClockId=made["id"])
        elsewhere = await api.customer()
        await api.subscription(on_clock["id"], plan["id"], "USD")
        await api.subscription(elsewhere["id"], plan["id"], "USD")
        [draft] = await _invoices(runtime, tid, on_clock["id"])
        assert draft.status == "DRAFT" and draft.grace_ends_at == FROZEN + timedelta(days=3)

        out = await _advance(api, made["id"], FROZEN + timedelta(days=4))
        assert out["run"]["finalized"] == 1
        [finalized] = await _invoices(runtime, tid, on_clock["id"])
        assert finalized.status == "PENDING"
        assert finalized.finalized_at == FROZEN + timedelta(days=3)  # at grace end
        [untouched] = await _invoices(runtime, tid, elsewhere["id"])
        assert untouched.status == "DRAFT"  # its grace ends on the wall clock

        # a failed charge waiting for its retry (the dunning step the tick takes)
        retry_at = FROZEN + timedelta(days=6)
        maker = await runtime.engines.sessionmaker(tid)
        async with maker() as session:
            await session.execute(
                update(Invoice)
                .where(Invoice.id.in_([finalized.id, untouched.id]))
                .values(status=FAILED, next_retry_at=retry_at, collection_attempts=1)
            )
            await session.commit()
        out = await _advance(api, made["id"], FROZEN + timedelta(days=7))
        # queued at the retry time, then again each time its one-hour lease ran out (the
        # recording queue never runs the charge), as the scheduler would
        assert out["run"]["retries"] == 25  # days 6 to 7, hourly, both ends included
        charges = [job["invoice_id"] for job in queue.named("payments.charge")]
        assert charges == [finalized.id]  # one job id per attempt; never the other one


async def test_deleting_a_clock_deletes_its_customers_only(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, WALL) as (runtime, _clock, client, _queue):
        api = await Api.new_tenant(client)
        tid = api.creds.id
        made = await _new_clock(api)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "30.00"})
        on_clock = await api.customer(testClockId=made["id"])
        elsewhere = await api.customer()
        await api.subscription(on_clock["id"], plan["id"], "USD")  # ACTIVE: goes too
        await api.subscription(elsewhere["id"], plan["id"], "USD")
        r = await client.delete(f"/api/test-clocks/{made['id']}", headers=api.creds.key_headers)
        assert r.status_code == 200 and r.json()["customersDeleted"] == 1
        headers = api.creds.key_headers
        assert_error(await client.get(f"/api/customers/{on_clock['id']}", headers=headers), 404)
        assert await _invoices(runtime, tid, on_clock["id"]) == []
        assert (
            await client.get(f"/api/customers/{elsewhere['id']}", headers=headers)
        ).status_code == 200
        assert len(await _invoices(runtime, tid, elsewhere["id"])) == 1
