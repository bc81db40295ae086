"""Interim usage invoices (contract charges.md "Billing timing", "Progressive billing"):
IN_ADVANCE charges billed as usage arrives, IN_ARREARS usage billed early once the plan's
threshold is reached; never the plan fee, and never anything twice - the period invoice
bills only what the interim ones did not. SQLite and PostgreSQL; amounts by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from novabilling.billing import progressive
from novabilling.billing.jobs import billing_handlers
from novabilling.invoices.models import Invoice
from novabilling.kit.jobs import QUEUE_BILLING, Job
from novabilling.runtime import Runtime
from novabilling.subscriptions.models import Subscription
from tests.billing.support import Api, clocked_runtime
from tests.conftest import Backend
from tests.usage.support import UsageApi
from tests.usage.test_usage_invoices import APR1, T0, at, by_subscription, ev, lines, tick


async def usage_total(invoices: list[Invoice], charge_id: str) -> Decimal:
    total = Decimal(0)
    for inv in invoices:
        assert inv.metadata_ is not None
        for item in inv.metadata_["items"]:
            if item["type"] == "usage" and item["chargeId"] == charge_id:
                total += Decimal(str(item["amount"]))
    return total


async def last_progressive(runtime: Runtime, tid: str, sub_id: str) -> datetime | None:
    maker = await runtime.engines.sessionmaker(tid)
    async with maker() as session:
        return await session.scalar(
            select(Subscription.last_progressive_billing_at).where(Subscription.id == sub_id)
        )


async def test_in_advance_charge_is_billed_as_usage_arrives(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        tid = api.creds.id
        plan = await use.plan(prices={"USD": 10})
        seats = await use.metric("COUNT", name="Seats", code="seats")
        charge = await use.charge(
            plan["id"],
            seats["id"],
            "STANDARD",
            properties={"amount": 5},
            billingTiming="IN_ADVANCE",
            minAmountCents=2000,
        )
        sub = (await use.subscription(plan["id"]))["id"]
        clock.set(datetime(2026, 3, 5, tzinfo=UTC))
        await use.batch([ev(sub, "seats", at(2)), ev(sub, "seats", at(3))])
        assert {"tenant_id": tid, "subscription_id": sub} in queue.named("usage.check")
        first = await progressive.check(runtime, tid, sub)
        assert first is not None and first.total_minor == 1000  # 2 x 5.00, no plan fee
        assert await progressive.check(runtime, tid, sub) is None  # nothing new
        clock.set(datetime(2026, 3, 12, tzinfo=UTC))
        await use.batch([ev(sub, "seats", at(11))])
        second = await progressive.check(runtime, tid, sub)
        assert second is not None and second.total_minor == 500  # the third seat only
        interim = (await by_subscription(runtime, tid))[sub]
        assert [lines(i) for i in interim] == [
            [("usage", "Seats (2 units)", 2, 10)],
            [("usage", "Seats (3 units)", 3, 5)],
        ]
        for inv in interim:
            assert inv.period_start is None  # outside the one-per-period key
            assert inv.metadata_ is not None and inv.metadata_["progressive"] is True
            assert inv.metadata_["periodStart"] == "2026-03-01T00:00:00.000Z"
            assert inv.metadata_["periodEnd"] == "2026-04-01T00:00:00.000Z"

        clock.set(APR1 + timedelta(minutes=1))
        await tick(runtime, tid)
        invoices = (await by_subscription(runtime, tid))[sub]
        period = invoices[-1]
        # March costs 3 x 5 = 15.00, raised to the 20.00 minimum: 15.00 already billed,
        # so the period invoice adds the fee and the 5.00 shortfall only
        assert period.period_start == T0
        assert lines(period) == [
            ("plan", "Metered (monthly)", 1, 10),
            ("usage", "Seats (minimum)", 1, 5),
        ]
        assert await usage_total(invoices, charge["id"]) == Decimal(20)
        assert await last_progressive(runtime, tid, sub) is None  # no threshold involved


async def test_progressive_threshold_bills_unbilled_usage_once(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        tid = api.creds.id
        plan = await use.plan(prices={"USD": 10}, progressiveBillingThreshold=10)
        gb = await use.metric("SUM", name="Transfer", code="gb", fieldName="gb")
        charge = await use.charge(
            plan["id"],
            gb["id"],
            "GRADUATED",
            graduatedRanges=[
                {"fromValue": 0, "toValue": 9, "perUnitAmount": 1},
                {"fromValue": 10, "toValue": None, "perUnitAmount": 0.5},
            ],
        )
        sub = (await use.subscription(plan["id"]))["id"]
        clock.set(datetime(2026, 3, 5, tzinfo=UTC))
        await use.batch([ev(sub, "gb", at(4), gb=4)])
        assert queue.named("usage.check")
        assert await progressive.check(runtime, tid, sub) is None  # 4.00 < 10.00
        assert await last_progressive(runtime, tid, sub) is None
        clock.set(datetime(2026, 3, 7, tzinfo=UTC))
        await use.batch([ev(sub, "gb", at(6), gb=7)])
        # 11 GB: 10 x 1.00 (0..9) + 1 x 0.50 = 10.50 >= 10.00: billed now, by the job
        [job_data] = queue.named("usage.check")[-1:]
        handler = billing_handlers(runtime)[(QUEUE_BILLING, "usage.check")]
        await handler(Job(QUEUE_BILLING, "usage.check", job_data))
        [issued] = (await by_subscription(runtime, tid))[sub]
        assert issued.total_minor == 1050
        assert await last_progressive(runtime, tid, sub) == datetime(2026, 3, 7, tzinfo=UTC)
        clock.set(datetime(2026, 3, 9, tzinfo=UTC))
        await use.batch([ev(sub, "gb", at(8), gb=3)])
        assert await progressive.check(runtime, tid, sub) is None  # 1.50 un-billed < 10.00

        clock.set(APR1 + timedelta(minutes=1))
        await tick(runtime, tid)
        invoices = (await by_subscription(runtime, tid))[sub]
        assert len(invoices) == 2
        interim, period = invoices
        assert lines(interim) == [("usage", "Transfer (11 units)", 11, 10.5)]
        # March: 14 GB = 10 + 4 x 0.50 = 12.00 (the tiers do not restart after the interim
        # invoice); 10.50 billed, 1.50 left; the plan fee once, on the period invoice
        assert lines(period) == [
            ("plan", "Metered (monthly)", 1, 10),
            ("usage", "Transfer (14 units)", 14, 1.5),
        ]
        assert await usage_total(invoices, charge["id"]) == Decimal(12)
        assert sum(i.total_minor for i in invoices) == 1000 + 1200
        assert await progressive.check(runtime, tid, sub) is None  # April: nothing yet
