"""Outbound tenant webhooks of /api/subscriptions (contract webhooks.md, "Outbound tenant
webhooks"), on SQLite and PostgreSQL: the event name and its exact data per endpoint, the
X-Webhook-Signature (hex HMAC-SHA256 of the body with the tenant's webhookSecret), one
webhook per action (a re-queued one is sent once), nothing for a refused request, and the
billing engine's own cancellation at the period end next to the API's scheduling one."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from novabilling.billing.tick import run_tenant_tick
from novabilling.kit.jobs import job_buffer
from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.kit.timestamps import to_wire
from novabilling.runtime import Runtime
from novabilling.subscriptions import outbound_events
from novabilling.subscriptions.models import Subscription, SubscriptionEvent
from novabilling.webhooks import outbound
from tests.billing.support import Api, clocked_runtime
from tests.conftest import Backend, TenantCreds, assert_error
from tests.payments.helpers import use_inprocess_jobs
from tests.subscriptions.helpers import make_customer, make_plan, subscribe
from tests.webhooks.helpers import WEBHOOK_URL, point_webhooks_at_test_url

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

Event = tuple[str, dict[str, Any]]


@dataclass
class Hooks:
    """Every outbound POST of the in-process job queue, checked and read back."""

    queue: InProcessQueue
    secret: str
    sent: list[httpx.Request] = field(default_factory=list)

    def receive(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(200)

    def _read(self, request: httpx.Request) -> Event:
        assert str(request.url) == WEBHOOK_URL and request.method == "POST"
        assert request.headers["Content-Type"] == "application/json"
        expected = hmac.new(self.secret.encode(), request.content, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-Webhook-Signature"], expected)
        body = json.loads(request.content)
        assert set(body) == {"event", "data", "timestamp"}
        assert request.headers["X-Event-Type"] == body["event"]
        assert TIMESTAMP.match(body["timestamp"]), body
        return body["event"], body["data"]

    async def take(self) -> list[Event]:
        """The subscription.* webhooks sent since the last call (jobs finished first)."""
        await self.queue.join()
        taken, self.sent[:] = list(self.sent), []
        events = [self._read(request) for request in taken]
        return [(name, data) for name, data in events if name.startswith("subscription.")]


@pytest.fixture
async def hooks(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> AsyncIterator[Hooks]:
    queue = use_inprocess_jobs(runtime)
    captured = Hooks(queue=queue, secret=await point_webhooks_at_test_url(client, tenant))
    outbound.use_transport(runtime, httpx.MockTransport(captured.receive))
    yield captured
    await queue.close()


@pytest.fixture
async def setup(client: httpx.AsyncClient, tenant: TenantCreds, hooks: Hooks) -> dict[str, Any]:
    customer = await make_customer(client, tenant)
    plan = await make_plan(client, tenant, usd="30")
    return {"customer": customer, "plan": plan}


async def _post(client: httpx.AsyncClient, creds: TenantCreds, path: str, body: Any = None) -> Any:
    r = await client.post(f"/api/subscriptions/{path}", headers=creds.key_headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _ids(sub: dict[str, Any]) -> dict[str, Any]:
    return {"subscriptionId": sub["id"], "customerId": sub["customerId"]}


# --- one webhook per endpoint ------------------------------------------------------------


async def test_create_emits_created_signed(
    client: httpx.AsyncClient, tenant: TenantCreds, hooks: Hooks, setup: dict[str, Any]
) -> None:
    active = await subscribe(client, tenant, setup["customer"], setup["plan"])
    trial = await subscribe(client, tenant, setup["customer"], setup["plan"], trialDays=7)
    plan_id = setup["plan"]["id"]
    assert await hooks.take() == [
        (
            "subscription.created",
            {**_ids(active), "planId": plan_id, "status": "ACTIVE", "currency": "USD"},
        ),
        (
            "subscription.created",
            {**_ids(trial), "planId": plan_id, "status": "TRIALING", "currency": "USD"},
        ),
    ]


async def test_cancel_now_emits_canceled_immediate(
    client: httpx.AsyncClient, tenant: TenantCreds, hooks: Hooks, setup: dict[str, Any]
) -> None:
    sub = await subscribe(client, tenant, setup["customer"], setup["plan"])
    await hooks.take()
    canceled = await _post(client, tenant, f"{sub['id']}/cancel", {"cancelAt": "now"})
    assert canceled["status"] == "CANCELED"
    assert await hooks.take() == [
        ("subscription.canceled", {**_ids(sub), "cancelAt": "immediate"}),
    ]


async def test_cancel_at_period_end_emits_canceled_with_the_period_end(
    client: httpx.AsyncClient, tenant: TenantCreds, hooks: Hooks, setup: dict[str, Any]
) -> None:
    sub = await subscribe(client, tenant, setup["customer"], setup["plan"])
    await hooks.take()
    scheduled = await _post(client, tenant, f"{sub['id']}/cancel", {"cancelAt": "period_end"})
    assert scheduled["status"] == "ACTIVE"
    assert scheduled["cancelAt"] == sub["currentPeriodEnd"]
    assert await hooks.take() == [
        ("subscription.canceled", {**_ids(sub), "cancelAt": sub["currentPeriodEnd"]}),
    ]


async def test_pause_resume_pause_is_one_webhook_each(
    client: httpx.AsyncClient, tenant: TenantCreds, hooks: Hooks, setup: dict[str, Any]
) -> None:
    sub = await subscribe(client, tenant, setup["customer"], setup["plan"])
    await hooks.take()
    for action in ("pause", "resume", "pause"):
        await _post(client, tenant, f"{sub['id']}/{action}")
    assert await hooks.take() == [
        ("subscription.paused", _ids(sub)),
        ("subscription.resumed", _ids(sub)),
        ("subscription.paused", _ids(sub)),
    ]


async def test_upgrade_emits_plan_changed(
    client: httpx.AsyncClient, tenant: TenantCreds, hooks: Hooks, setup: dict[str, Any]
) -> None:
    sub = await subscribe(client, tenant, setup["customer"], setup["plan"])
    trial = await subscribe(client, tenant, setup["customer"], setup["plan"], trialDays=7)
    bigger = await make_plan(client, tenant, usd="90")
    await hooks.take()
    for s in (sub, trial):
        changed = await _post(client, tenant, f"{s['id']}/change-plan", {"newPlanId": bigger["id"]})
        assert changed["planId"] == bigger["id"]
    proration = {"type": "upgrade", "effectiveImmediately": True}
    old = setup["plan"]["id"]
    assert await hooks.take() == [
        (
            "subscription.plan_changed",
            {**_ids(s), "oldPlanId": old, "newPlanId": bigger["id"], "proration": proration},
        )
        for s in (sub, trial)
    ]


async def test_downgrade_emits_plan_change_scheduled(
    client: httpx.AsyncClient, tenant: TenantCreds, hooks: Hooks, setup: dict[str, Any]
) -> None:
    sub = await subscribe(client, tenant, setup["customer"], setup["plan"])
    smaller = await make_plan(client, tenant, usd="10")
    await hooks.take()
    path = f"{sub['id']}/change-plan"
    scheduled = await _post(client, tenant, path, {"newPlanId": smaller["id"]})
    assert scheduled["planId"] == setup["plan"]["id"]
    # back to the current plan: the scheduled change is dropped, it stays on its plan
    await _post(client, tenant, path, {"newPlanId": setup["plan"]["id"]})
    old, end = setup["plan"]["id"], sub["currentPeriodEnd"]
    assert await hooks.take() == [
        (
            "subscription.plan_change_scheduled",
            {**_ids(sub), "oldPlanId": old, "newPlanId": smaller["id"], "effectiveAt": end},
        ),
        (
            "subscription.plan_change_scheduled",
            {**_ids(sub), "oldPlanId": old, "newPlanId": old, "effectiveAt": end},
        ),
    ]


# --- refused requests and re-queued webhooks ---------------------------------------------


async def test_refused_requests_emit_nothing(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    other_tenant: TenantCreds,
    hooks: Hooks,
    setup: dict[str, Any],
) -> None:
    customer, plan = setup["customer"], setup["plan"]
    trial = await subscribe(client, tenant, customer, plan, trialDays=7)
    active = await subscribe(client, tenant, customer, plan, externalId="ext-hooks")
    gone = await subscribe(client, tenant, customer, plan)
    await _post(client, tenant, f"{gone['id']}/cancel", {"cancelAt": "now"})
    inactive = await make_plan(client, tenant)
    r = await client.patch(
        f"/api/plans/{inactive['id']}", headers=tenant.key_headers, json={"isActive": False}
    )
    assert r.status_code == 200, r.text
    await hooks.take()

    create = {"customerId": customer["id"], "planId": plan["id"], "currency": "USD"}
    # (path, body, status, field named in the error); the last one as the other tenant
    refused: list[tuple[str, Any, int, str | None]] = [
        ("", {**create, "customerId": "nope"}, 404, None),
        ("", {**create, "planId": "nope"}, 400, "planId"),
        ("", {**create, "planId": inactive["id"]}, 400, "planId"),
        ("", {**create, "currency": "EUR"}, 400, "currency"),
        ("", {**create, "externalId": "ext-hooks"}, 409, None),
        (f"/{trial['id']}/pause", None, 400, None),
        (f"/{active['id']}/resume", None, 400, None),
        (f"/{gone['id']}/pause", None, 400, None),
        (f"/{gone['id']}/cancel", {"cancelAt": "now"}, 400, None),
        (f"/{gone['id']}/cancel", {"cancelAt": "period_end"}, 400, None),
        (f"/{active['id']}/cancel", {"cancelAt": "tomorrow"}, 400, "cancelAt"),
        (f"/{gone['id']}/change-plan", {"newPlanId": plan["id"]}, 400, None),
        (f"/{active['id']}/change-plan", {"newPlanId": "nope"}, 400, "newPlanId"),
        (f"/{active['id']}/change-plan", {"newPlanId": inactive["id"]}, 400, "newPlanId"),
        ("/nope/resume", None, 404, None),
        (f"/{active['id']}/pause", None, 404, None),
    ]
    for n, (path, body, status, field_name) in enumerate(refused, start=1):
        creds = other_tenant if n == len(refused) else tenant
        r = await client.post(f"/api/subscriptions{path}", headers=creds.key_headers, json=body)
        assert_error(r, status, field_name)
    assert await hooks.take() == []
    # the same subscriptions still emit for an allowed request
    await _post(client, tenant, f"{active['id']}/pause")
    assert await hooks.take() == [("subscription.paused", _ids(active))]


async def test_a_requeued_webhook_is_sent_once(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    hooks: Hooks,
    setup: dict[str, Any],
) -> None:
    """The key is the recorded transition: queuing the same one again sends nothing."""
    sub = await subscribe(client, tenant, setup["customer"], setup["plan"])
    await _post(client, tenant, f"{sub['id']}/pause")
    assert [name for name, _ in await hooks.take()] == [
        "subscription.created",
        "subscription.paused",
    ]
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        row = await session.get(Subscription, sub["id"])
        assert row is not None
        transitions = list(
            await session.scalars(
                select(SubscriptionEvent).where(SubscriptionEvent.subscription_id == sub["id"])
            )
        )
        assert sorted(t.reason for t in transitions) == ["created", "paused"]
        async with job_buffer(hooks.queue) as buffer:
            for transition in transitions * 2:
                outbound_events.publish(tenant.id, row, transition, clock=runtime.clock)
            await buffer.flush()
    assert await hooks.take() == []


# --- the billing engine's cancellation at the period end ---------------------------------

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


async def test_scheduled_cancellation_api_and_engine_events_are_distinct(
    backend: Backend,
) -> None:
    """The API call announces the period end; reaching it, the engine sends its own event
    (its key differs, so neither swallows the other); a second tick adds nothing."""
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        await point_webhooks_at_test_url(client, api.creds)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "29.99"})
        customer = await api.customer()
        sub = await api.subscription(customer["id"], plan["id"], "USD")
        await api.post(f"/api/subscriptions/{sub['id']}/cancel", {"cancelAt": "period_end"})
        clock.set(datetime(2026, 3, 1, tzinfo=UTC))  # Feb 28 09:00 has passed
        for _ in range(2):
            await run_tenant_tick(runtime, api.creds.id)
        canceled = [
            (job_id, data["data"])
            for _, name, data, job_id in queue.jobs
            if name == "webhook.deliver" and data["event"] == "subscription.canceled"
        ]
        assert [data for _, data in canceled] == [
            {**_ids(sub), "cancelAt": "2026-02-28T09:00:00.000Z"},
            {**_ids(sub), "cancelAt": to_wire(clock.now())},
        ]
        assert len({job_id for job_id, _ in canceled}) == 2
