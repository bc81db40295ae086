"""Subscription lifecycle through the API and the engine functions, with a TestClock:
period arithmetic from the anchor (Jan 31 -> Feb 28 -> Mar 31), trials, pause/resume
re-anchoring, plan changes and their proration lines (exact integer sums)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.errors import BusinessRule
from novabilling.invoices.models import Invoice
from novabilling.kit.clock import TestClock
from novabilling.kit.periods import period_end
from novabilling.kit.proration import unused_credit
from novabilling.runtime import Runtime
from novabilling.subscriptions import service
from novabilling.subscriptions.models import Subscription, SubscriptionEvent
from novabilling.subscriptions.prorations import PlanTarget, proration_lines
from novabilling.subscriptions.transitions import RULES, Action, Status, check
from tests.conftest import TenantCreds
from tests.subscriptions.helpers import make_customer, make_plan, subscribe

T0 = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)


@pytest.fixture
def clock(runtime: Runtime) -> TestClock:
    test_clock = TestClock(T0)
    runtime.clock = test_clock
    return test_clock


@pytest.fixture
async def db(runtime: Runtime, tenant: TenantCreds) -> AsyncIterator[AsyncSession]:
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        yield session


async def _load(db: AsyncSession, sub_id: str) -> Subscription:
    db.expire_all()
    sub = await db.get(Subscription, sub_id, populate_existing=True)
    assert sub is not None
    return sub


async def _events(db: AsyncSession, sub_id: str) -> list[SubscriptionEvent]:
    rows = await db.scalars(
        select(SubscriptionEvent)
        .where(SubscriptionEvent.subscription_id == sub_id)
        .order_by(SubscriptionEvent.at, SubscriptionEvent.id)
    )
    return list(rows)


async def _post(client: httpx.AsyncClient, creds: TenantCreds, path: str, body: Any = None) -> Any:
    r = await client.post(f"/api/subscriptions/{path}", headers=creds.key_headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_jan31_anchor_renews_on_month_ends(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock, db: AsyncSession
) -> None:
    customer, plan = await make_customer(client, tenant), await make_plan(client, tenant)
    created = await subscribe(client, tenant, customer, plan)
    assert created["currentPeriodStart"] == "2026-01-31T09:30:00.000Z"
    assert created["currentPeriodEnd"] == "2026-02-28T09:30:00.000Z"
    expected = [(2, 28, 3, 31), (3, 31, 4, 30), (4, 30, 5, 31), (5, 31, 6, 30)]
    for m1, d1, m2, d2 in expected:
        now = datetime(2026, m1, d1, 9, 30, tzinfo=UTC)
        assert await service.due_for_renewal(db, now=now - timedelta(seconds=1), limit=10) == []
        due = await service.due_for_renewal(db, now=now, limit=10)
        assert [s.id for s in due] == [created["id"]]
        assert service.due_action(due[0], now=now) == "renew"
        start, end = await service.advance_period(db, due[0], now=now)
        assert (start, end) == (now, datetime(2026, m2, d2, 9, 30, tzinfo=UTC))
        with pytest.raises(BusinessRule):  # same period twice: refused, not skipped
            await service.advance_period(db, due[0], now=now)
        await db.commit()
    r = await client.get(f"/api/subscriptions/{created['id']}", headers=tenant.key_headers)
    assert r.json()["currentPeriodStart"] == "2026-05-31T09:30:00.000Z"
    assert r.json()["currentPeriodEnd"] == "2026-06-30T09:30:00.000Z"
    reasons = [e.reason for e in await _events(db, created["id"])]
    assert reasons == ["created"] + ["renewed"] * 4


async def test_trial_end_starts_first_paid_period(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock, db: AsyncSession
) -> None:
    customer, plan = await make_customer(client, tenant), await make_plan(client, tenant)
    sub = await subscribe(client, tenant, customer, plan, trialDays=14)
    assert sub["trialEnd"] == "2026-02-14T09:30:00.000Z" == sub["currentPeriodEnd"]
    trial_end = T0 + timedelta(days=14)
    assert await service.due_for_renewal(db, now=trial_end - timedelta(minutes=1), limit=5) == []
    (due,) = await service.due_for_renewal(db, now=trial_end, limit=5)
    assert service.due_action(due, now=trial_end) == "trial_end"
    start, end = await service.advance_period(db, due, now=trial_end)
    await db.commit()
    assert (start, end) == (trial_end, datetime(2026, 3, 14, 9, 30, tzinfo=UTC))
    assert due.status == "ACTIVE" and due.billing_anchor == trial_end
    (created, ended) = await _events(db, sub["id"])
    assert (ended.reason, ended.from_status, ended.to_status) == (
        "trial_ended",
        "TRIALING",
        "ACTIVE",
    )


async def _invoices(db: AsyncSession, sub_id: str) -> list[tuple[datetime | None, int]]:
    db.expire_all()
    rows = await db.execute(
        select(Invoice.period_start, Invoice.total_minor)
        .where(Invoice.subscription_id == sub_id)
        .order_by(Invoice.period_start)
    )
    return [(start, total) for start, total in rows.tuples().all()]


async def test_pause_resume_keeps_period_dates_and_bills_once_in_advance(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock, db: AsyncSession
) -> None:
    """Regression: pause then resume moved currentPeriodStart and recorded proration lines
    (a credit for time never paid when the period was not invoiced). The contract keeps
    the period dates; a period that ended while paused is skipped, and the period the
    subscription resumes in is billed once, at its full price, with nothing credited."""
    march = datetime(2026, 3, 1, tzinfo=UTC)
    clock.set(march)
    customer = await make_customer(client, tenant)
    plan = await make_plan(client, tenant, usd="30", timing="IN_ADVANCE")
    sub = await subscribe(client, tenant, customer, plan)
    assert await _invoices(db, sub["id"]) == [(march, 3000)]  # issued with the subscription
    clock.set(datetime(2026, 3, 11, tzinfo=UTC))  # 10 of 31 days used
    paused = await _post(client, tenant, f"{sub['id']}/pause")
    assert paused["status"] == "PAUSED"
    assert paused["currentPeriodEnd"] == "2026-04-01T00:00:00.000Z"  # untouched by pause
    clock.set(datetime(2026, 3, 20, tzinfo=UTC))
    resumed = await _post(client, tenant, f"{sub['id']}/resume")  # within the period
    assert (resumed["currentPeriodStart"], resumed["currentPeriodEnd"]) == (
        "2026-03-01T00:00:00.000Z",
        "2026-04-01T00:00:00.000Z",
    )
    await _post(client, tenant, f"{sub['id']}/pause")
    clock.set(datetime(2026, 4, 20, 12, tzinfo=UTC))
    # A paused subscription is not renewed even though its period ended.
    assert await service.due_for_renewal(db, now=clock.now(), limit=5) == []
    resumed = await _post(client, tenant, f"{sub['id']}/resume")
    assert resumed["status"] == "ACTIVE"
    assert resumed["currentPeriodStart"] == "2026-04-01T00:00:00.000Z"  # on its schedule
    assert resumed["currentPeriodEnd"] == "2026-05-01T00:00:00.000Z"
    assert await service.pending_items(db, sub["id"]) == []  # no proration, no credit
    april = datetime(2026, 4, 1, tzinfo=UTC)
    assert await _invoices(db, sub["id"]) == [(march, 3000), (april, 3000)]


async def test_resume_after_a_paused_period_bills_the_period_in_use_in_arrears(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock, db: AsyncSession
) -> None:
    march = datetime(2026, 3, 1, tzinfo=UTC)
    clock.set(march)
    customer = await make_customer(client, tenant)
    plan = await make_plan(client, tenant, usd="30", timing="IN_ARREARS")
    sub = await subscribe(client, tenant, customer, plan)
    assert await _invoices(db, sub["id"]) == []  # in arrears: billed at the period end
    clock.set(datetime(2026, 3, 11, tzinfo=UTC))
    await _post(client, tenant, f"{sub['id']}/pause")
    clock.set(datetime(2026, 5, 2, tzinfo=UTC))
    resumed = await _post(client, tenant, f"{sub['id']}/resume")
    assert resumed["currentPeriodStart"] == "2026-05-01T00:00:00.000Z"
    # March was in use when it was paused: billed once; April (all paused) never
    assert await _invoices(db, sub["id"]) == [(march, 3000)]
    assert await service.pending_items(db, sub["id"]) == []


async def test_upgrade_in_advance_prorates_exactly(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock, db: AsyncSession
) -> None:
    customer = await make_customer(client, tenant)
    old = await make_plan(client, tenant, usd="29.99", timing="IN_ADVANCE")
    new = await make_plan(client, tenant, usd="49.99", interval="YEARLY")
    sub = await subscribe(client, tenant, customer, old)
    clock.set(datetime(2026, 2, 10, 17, 45, 12, tzinfo=UTC))
    changed = await _post(
        client, tenant, f"{sub['id']}/change-plan", {"newPlanId": new["id"], "prorate": True}
    )
    assert changed["planId"] == new["id"] and changed["previousPlanId"] == old["id"]
    assert changed["currentPeriodStart"] == "2026-02-10T17:45:12.000Z"
    assert changed["currentPeriodEnd"] == "2027-02-10T17:45:12.000Z"
    credit = unused_credit(2999, T0, datetime(2026, 2, 28, 9, 30, tzinfo=UTC), clock.now())
    lines = await service.pending_items(db, sub["id"])
    assert sorted(x.amount_minor for x in lines) == [-credit, 4999]
    assert sum(x.amount_minor for x in lines) == 4999 - credit
    row = await _load(db, sub["id"])
    assert row.amount_minor == 4999 and row.billing_interval == "YEARLY"


async def test_upgrade_without_prorate_records_only_the_credit(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock, db: AsyncSession
) -> None:
    customer = await make_customer(client, tenant)
    old = await make_plan(client, tenant, usd="30")
    new = await make_plan(client, tenant, usd="60")
    sub = await subscribe(client, tenant, customer, old)
    clock.advance(timedelta(days=7))
    await _post(client, tenant, f"{sub['id']}/change-plan", {"newPlanId": new["id"]})
    lines = await service.pending_items(db, sub["id"])
    assert [x.kind for x in lines] == ["proration_credit"]
    assert lines[0].amount_minor < 0


async def test_upgrade_in_arrears_charges_the_used_part(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock, db: AsyncSession
) -> None:
    clock.set(datetime(2026, 4, 1, tzinfo=UTC))
    customer = await make_customer(client, tenant)
    old = await make_plan(client, tenant, usd="30", timing="IN_ARREARS")
    new = await make_plan(client, tenant, usd="90", timing="IN_ARREARS")
    sub = await subscribe(client, tenant, customer, old)
    clock.set(datetime(2026, 4, 11, tzinfo=UTC))  # 10 of 30 days used
    await _post(
        client, tenant, f"{sub['id']}/change-plan", {"newPlanId": new["id"], "prorate": True}
    )
    (line,) = await service.pending_items(db, sub["id"])
    assert (line.kind, line.amount_minor) == ("proration_charge", 1000)
    assert line.period_start == datetime(2026, 4, 1, tzinfo=UTC)
    assert line.period_end == datetime(2026, 4, 11, tzinfo=UTC)


async def test_downgrade_applies_at_renewal(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock, db: AsyncSession
) -> None:
    customer = await make_customer(client, tenant)
    old = await make_plan(client, tenant, usd="30")
    new = await make_plan(client, tenant, usd="10", interval="WEEKLY")
    sub = await subscribe(client, tenant, customer, old, metadata={"k": 1})
    await _post(client, tenant, f"{sub['id']}/change-plan", {"newPlanId": new["id"]})
    assert await service.pending_items(db, sub["id"]) == []
    boundary = datetime(2026, 2, 28, 9, 30, tzinfo=UTC)
    (due,) = await service.due_for_renewal(db, now=boundary, limit=5)
    start, end = await service.advance_period(db, due, now=boundary)
    await db.commit()
    assert (start, end) == (boundary, boundary + timedelta(weeks=1))
    assert due.plan_id == new["id"] and due.previous_plan_id == old["id"]
    assert due.amount_minor == 1000 and due.billing_anchor == boundary
    assert due.meta == {"k": 1} and due.scheduled_plan_id is None


async def test_cancel_at_period_end_becomes_due_cancellation(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock, db: AsyncSession
) -> None:
    customer, plan = await make_customer(client, tenant), await make_plan(client, tenant)
    sub = await subscribe(client, tenant, customer, plan)
    await _post(client, tenant, f"{sub['id']}/cancel", {"cancelAt": "period_end"})
    boundary = datetime(2026, 2, 28, 9, 30, tzinfo=UTC)
    (due,) = await service.due_for_renewal(db, now=boundary, limit=5)
    assert service.due_action(due, now=boundary) == "cancel"
    with pytest.raises(BusinessRule):
        await service.advance_period(db, due, now=boundary)
    await service.cancel_now(db, due, now=boundary, reason="canceled_at_period_end")
    await db.commit()
    assert due.status == "CANCELED" and due.canceled_at == boundary
    assert await service.due_for_renewal(db, now=boundary + timedelta(days=90), limit=5) == []
    last = (await _events(db, sub["id"]))[-1]
    assert last.reason == "canceled_at_period_end" and last.data is not None
    assert last.data["unusedCreditMinor"] == 0


async def test_cancel_now_reports_unused_credit(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock, db: AsyncSession
) -> None:
    customer, plan = await make_customer(client, tenant), await make_plan(client, tenant)
    sub = await subscribe(client, tenant, customer, plan)
    clock.set(datetime(2026, 2, 14, 9, 30, tzinfo=UTC))  # 14 of 28 days used
    await _post(client, tenant, f"{sub['id']}/cancel", {"cancelAt": "now"})
    last = (await _events(db, sub["id"]))[-1]
    assert last.data is not None and last.data["unusedCreditMinor"] == 1500


async def test_dunning_past_due_and_reactivation(
    client: httpx.AsyncClient, tenant: TenantCreds, clock: TestClock, db: AsyncSession
) -> None:
    customer, plan = await make_customer(client, tenant), await make_plan(client, tenant)
    sub = await subscribe(client, tenant, customer, plan)
    row = await _load(db, sub["id"])
    assert await service.count_active(db) == 1
    retry = T0 + timedelta(days=3)
    await service.mark_past_due(db, row, now=T0, next_retry_at=retry)
    await db.commit()
    assert row.status == "PAST_DUE" and await service.count_active(db) == 0
    assert await service.due_for_retry(db, now=retry - timedelta(seconds=1), limit=5) == []
    assert [s.id for s in await service.due_for_retry(db, now=retry, limit=5)] == [sub["id"]]
    await service.reactivate(db, row, now=retry)
    await db.commit()
    assert row.status == "ACTIVE" and row.next_retry_at is None
    ours, nobody = (
        service.active_count_of(literal(customer["id"])),
        service.active_count_of(literal("nobody")),
    )
    assert tuple((await db.execute(select(ours, nobody))).one()) == (1, 0)
    listed = await service.list_for_customer(db, customer["id"])
    assert [s["id"] for s in listed] == [sub["id"]] and "prices" not in listed[0]["plan"]
    moves = [(e.from_status, e.to_status) for e in await _events(db, sub["id"])]
    assert moves == [(None, "ACTIVE"), ("ACTIVE", "PAST_DUE"), ("PAST_DUE", "ACTIVE")]
    with pytest.raises(BusinessRule):
        await service.lifecycle.pause(db, row, now=retry) if False else check(
            Action.RESUME, "ACTIVE"
        )


# --- pure properties -------------------------------------------------------------------


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("status", list(Status))
def test_transition_table_is_the_only_rule(action: Action, status: Status) -> None:
    rule = RULES[action]
    if status in rule.sources:
        assert check(action, status.value) == (rule.target or status)
    else:
        with pytest.raises(BusinessRule):
            check(action, status.value)


def _sub(amount: int, timing: str, start: datetime, interval: str) -> Subscription:
    return Subscription(
        id="s", customer_id="c", currency="USD", amount_minor=amount, billing_timing=timing,
        current_period_start=start, current_period_end=period_end(start, interval, 1),
    )  # fmt: skip


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    old=st.integers(0, 10**12),
    new=st.integers(0, 10**12),
    start=instants,
    offset=st.floats(0, 1),
    timing=st.sampled_from(["IN_ADVANCE", "IN_ARREARS"]),
    interval=st.sampled_from(["DAILY", "MONTHLY", "YEARLY"]),
)
def test_proration_lines_settle_the_old_period_exactly(
    old: int, new: int, start: datetime, offset: float, timing: str, interval: str
) -> None:
    sub = _sub(old, timing, start, interval)
    span = sub.current_period_end - sub.current_period_start
    cut = start + timedelta(microseconds=int(span / timedelta(microseconds=1) * offset))
    target = PlanTarget("p2", "New", new, "MONTHLY")
    lines = proration_lines(sub, now=cut, cut=cut, target=target, old_name="Old", charge=True)
    unused = unused_credit(old, start, sub.current_period_end, cut)
    credits = [x.amount_minor for x in lines if x.kind == "proration_credit"]
    charges = [x.amount_minor for x in lines if x.kind == "proration_charge"]
    assert all(x.amount_minor != 0 for x in lines)
    assert all(c < 0 for c in credits) and all(c > 0 for c in charges)
    if timing == "IN_ADVANCE":
        assert sum(credits) == -unused and -sum(credits) <= old
        assert sum(charges) == new
    else:
        assert credits == [] and sum(charges) + unused == old
