"""Shared helpers of the billing tests: a runtime on a ``TestClock`` whose job queue only
records, and API shortcuts to set up plans, customers and subscriptions."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select

from novabilling.bootstrap import build_runtime
from novabilling.config import Settings
from novabilling.invoices.models import Invoice
from novabilling.kit.clock import TestClock
from novabilling.runtime import Runtime
from tests.apps import APPS
from tests.conftest import TenantCreds, register_tenant


@dataclass
class RecordingQueue:
    """A JobQueue that keeps what was enqueued (dedup by job id, as the real ones)."""

    jobs: list[tuple[str, str, dict[str, Any], str | None]] = field(default_factory=list)
    ids: set[tuple[str, str]] = field(default_factory=set)

    async def enqueue(
        self,
        queue: str,
        name: str,
        data: dict[str, Any],
        *,
        job_id: str | None = None,
        delay_seconds: float = 0,
        attempts: int = 5,
    ) -> None:
        if job_id is not None:
            if (queue, job_id) in self.ids:
                return
            self.ids.add((queue, job_id))
        self.jobs.append((queue, name, data, job_id))

    async def close(self) -> None:
        return None

    def named(self, name: str) -> list[dict[str, Any]]:
        return [data for _, n, data, _ in self.jobs if n == name]


@asynccontextmanager
async def clocked_runtime(
    settings: Settings, start: datetime
) -> AsyncIterator[tuple[Runtime, TestClock, httpx.AsyncClient, RecordingQueue]]:
    clock = TestClock(start)
    runtime = build_runtime(settings, clock=clock)
    real = runtime.jobs
    queue = RecordingQueue()
    runtime.jobs = queue
    transport = httpx.ASGITransport(app=APPS.lend(runtime), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield runtime, clock, c, queue
    finally:
        runtime.jobs = real
        APPS.give_back(runtime)
        await runtime.close()


class Api:
    def __init__(self, client: httpx.AsyncClient, creds: TenantCreds) -> None:
        self.client = client
        self.creds = creds

    @classmethod
    async def new_tenant(cls, client: httpx.AsyncClient) -> Api:
        return cls(client, await register_tenant(client, f"Biller {secrets.token_hex(3)}"))

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        r = await self.client.post(path, headers=self.creds.key_headers, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    async def plan(
        self, interval: str, timing: str, prices: dict[str, str | int], **extra: Any
    ) -> Any:
        code = f"p_{secrets.token_hex(4)}"
        return await self.post(
            "/api/plans",
            {
                "name": f"Plan {interval.title()} {timing}",
                "code": code,
                "billingInterval": interval,
                "billingTiming": timing,
                "prices": [{"currency": c, "amount": a} for c, a in prices.items()],
                **extra,
            },
        )

    async def customer(self, currency: str = "USD", **extra: Any) -> Any:
        return await self.post(
            "/api/customers",
            {
                "externalId": f"c_{secrets.token_hex(5)}",
                "email": "payer@test.local",
                "name": "Payer",
                "currency": currency,
                **extra,
            },
        )

    async def subscription(
        self, customer_id: str, plan_id: str, currency: str, **extra: Any
    ) -> Any:
        return await self.post(
            "/api/subscriptions",
            {
                "customerId": customer_id,
                "planId": plan_id,
                "currency": currency,
                **extra,
            },
        )


async def invoices_of(runtime: Runtime, tenant_id: str) -> list[Invoice]:
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        rows = await session.scalars(select(Invoice).order_by(Invoice.invoice_number))
        return list(rows.all())


async def seed_due_subscriptions(
    runtime: Runtime, tenant_id: str, count: int, *, period_end: datetime, slow_every: int = 0
) -> None:
    """Bulk-insert ``count`` monthly subscriptions whose period ends at ``period_end``.
    Every ``slow_every``-th one has a pending proration line (per-subscription path)."""
    from datetime import timedelta

    from sqlalchemy import insert

    from novabilling.customers.models import Customer
    from novabilling.kit.ids import new_id
    from novabilling.kit.periods import period_end as boundary
    from novabilling.plans.models import Plan, PlanPrice
    from novabilling.subscriptions.models import PendingInvoiceItem, Subscription

    now = period_end
    start = boundary(period_end, "MONTHLY", -1)
    engine = await runtime.engines.engine(tenant_id)
    async with engine.begin() as conn:
        plans = []
        for timing in ("IN_ADVANCE", "IN_ARREARS"):
            pid = new_id()
            plans.append(pid)
            await conn.execute(
                insert(Plan).values(
                    id=pid,
                    name=f"Seed {timing}",
                    code=f"seed_{timing}_{pid[-5:]}",
                    billing_interval="MONTHLY",
                    billing_timing=timing,
                    features=[],
                    is_active=True,
                    invoice_grace_period_days=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            await conn.execute(
                insert(PlanPrice).values(
                    id=new_id(),
                    plan_id=pid,
                    currency="USD",
                    amount_minor=1500,
                    is_active=True,
                    created_at=now,
                    updated_at=now,
                )
            )
        customers = [
            dict(
                id=new_id(),
                external_id=f"seed{n}-{new_id()[-6:]}",
                email=f"s{n}@test.local",
                currency="USD",
                created_at=now,
                updated_at=now,
            )
            for n in range(count)
        ]
        await conn.execute(insert(Customer), customers)
        subs = [
            dict(
                id=new_id(),
                customer_id=c["id"],
                plan_id=plans[n % 2],
                status="ACTIVE",
                currency="USD",
                amount_minor=1500,
                billing_interval="MONTHLY",
                billing_timing="IN_ADVANCE" if n % 2 == 0 else "IN_ARREARS",
                billing_anchor=start,
                current_period_start=start,
                current_period_end=period_end,
                cancel_at_period_end=False,
                started_at=start - timedelta(days=31),
                created_at=now,
                updated_at=now,
            )
            for n, c in enumerate(customers)
        ]
        await conn.execute(insert(Subscription), subs)
        if slow_every:
            await conn.execute(
                insert(PendingInvoiceItem),
                [
                    dict(
                        id=new_id(),
                        subscription_id=s["id"],
                        customer_id=s["customer_id"],
                        currency="USD",
                        kind="proration_charge",
                        description="Extra seat",
                        amount_minor=250,
                        period_start=start,
                        period_end=period_end,
                        created_at=start,
                    )
                    for s in subs[::slow_every]
                ],
            )
