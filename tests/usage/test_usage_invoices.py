"""Usage on period invoices (contract charges.md "Which usage an invoice bills",
invoice-composition.md, plan-overrides.md "Billing rules"), driven by a TestClock through
the tenant tick on SQLite and PostgreSQL: the invoice at the end of period P carries the
usage of P, customer overrides apply, the minimum commitment is trued up, and nothing is
billed twice. Every expected amount is worked out by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from novabilling.billing.tick import run_tenant_tick
from novabilling.invoices.models import Invoice
from novabilling.runtime import Runtime
from tests.billing.support import Api, clocked_runtime, invoices_of
from tests.conftest import Backend
from tests.usage.support import UsageApi

T0 = datetime(2026, 3, 1, tzinfo=UTC)
APR1 = datetime(2026, 4, 1, tzinfo=UTC)
MAY1 = datetime(2026, 5, 1, tzinfo=UTC)


def at(day: int, month: int = 3) -> str:
    return datetime(2026, month, day, 12, tzinfo=UTC).isoformat()


def ev(sub: str, code: str, when: str, **props: Any) -> dict[str, Any]:
    return {
        "transactionId": f"{sub}-{code}-{when}-{sorted(props.items())}",
        "subscriptionId": sub,
        "code": code,
        "timestamp": when,
        "properties": props,
    }


async def by_subscription(runtime: Runtime, tid: str) -> dict[str, list[Invoice]]:
    out: dict[str, list[Invoice]] = {}
    for inv in await invoices_of(runtime, tid):
        out.setdefault(str(inv.subscription_id), []).append(inv)
    return out


def lines(inv: Invoice) -> list[tuple[str, str, float | int, float | int]]:
    assert inv.metadata_ is not None
    return [
        (i["type"], i["description"], i["quantity"], i["amount"]) for i in inv.metadata_["items"]
    ]


async def tick(runtime: Runtime, tid: str) -> None:
    for _ in range(2):
        await run_tenant_tick(runtime, tid)


async def test_in_arrears_invoice_bills_the_period_that_ended(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _):
        api = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        tid = api.creds.id
        plan = await use.plan(prices={"USD": 10})
        calls = await use.metric("COUNT", name="API calls", code="calls")
        storage = await use.metric("SUM", name="Storage", code="gb", fieldName="gb")
        calls_charge = await use.charge(
            plan["id"], calls["id"], "STANDARD", properties={"amount": "0.25"}
        )
        await use.charge(
            plan["id"],
            storage["id"],
            "GRADUATED",
            graduatedRanges=[
                {"fromValue": 0, "toValue": 10, "perUnitAmount": 1},
                {"fromValue": 11, "toValue": None, "perUnitAmount": 0.5, "flatAmount": 2},
            ],
        )
        sub_a = (await use.subscription(plan["id"]))["id"]  # plain: the bulk path
        cust_b = (await use.customer())["id"]
        await use.post(
            "/api/plan-overrides",
            {
                "customerId": cust_b,
                "planId": plan["id"],
                "overriddenPrices": [{"currency": "USD", "amount": 8}],
                "overriddenMinimumCommitment": 20,
                "overriddenCharges": [
                    {"chargeId": calls_charge["id"], "properties": {"amount": "0.40"}}
                ],
            },
        )
        sub_b = (await use.subscription(plan["id"], customer_id=cust_b))["id"]
        sub_c = (await use.subscription(plan["id"]))["id"]  # ends: the one-by-one path
        clock.set(datetime(2026, 3, 10, tzinfo=UTC))
        await use.post(f"/api/subscriptions/{sub_c}/cancel", {"cancelAt": "period_end"})
        await use.batch(
            [
                ev(sub_a, "calls", at(2)),
                ev(sub_a, "calls", at(5)),
                ev(sub_a, "calls", at(9)),
                ev(sub_a, "gb", at(3), gb=4),
                ev(sub_a, "gb", at(4), gb="9.5"),
                ev(sub_b, "calls", at(2)),
                ev(sub_b, "calls", at(3)),
                ev(sub_c, "calls", at(4)),
            ]
        )
        clock.set(APR1 + timedelta(minutes=1))
        await tick(runtime, tid)
        found = await by_subscription(runtime, tid)
        [a1] = found[sub_a]
        # calls 3 x 0.25 = 0.75; storage 13.5 GB: 11 (0..10, both ends) x 1 = 11, then
        # 2.5 x 0.5 + 2 = 3.25 -> 14.25; plan 10 -> 25.00
        assert lines(a1) == [
            ("plan", "Metered (monthly)", 1, 10),
            ("usage", "API calls (3 units)", 3, 0.75),
            ("usage", "Storage (13.5 units)", 13.5, 14.25),
        ]
        assert a1.total_minor == 2500 and a1.period_start == T0 and a1.period_end == APR1
        assert a1.metadata_ is not None
        usage_item = a1.metadata_["items"][2]
        assert usage_item["unitAmount"] == 1.0556  # 14.25 / 13.5, display only
        assert usage_item["chargeId"] and usage_item["periodStart"] == "2026-03-01T00:00:00.000Z"
        assert usage_item["periodEnd"] == "2026-04-01T00:00:00.000Z"
        [b1] = found[sub_b]
        # override: fee 8, calls 2 x 0.40 = 0.80; commitment 20 - 8.80 = 11.20
        assert lines(b1) == [
            ("plan", "Metered (monthly) [custom pricing]", 1, 8),
            ("usage", "API calls (2 units)", 2, 0.8),
            ("minimum_commitment", "Minimum commitment true-up", 1, 11.2),
        ]
        assert b1.total_minor == 2000
        [c1] = found[sub_c]
        assert lines(c1) == [
            ("plan", "Metered (monthly)", 1, 10),
            ("usage", "API calls (1 units)", 1, 0.25),
        ]

        # P2: one call in April, and a late event of March (stored, never billed: March
        # is invoiced)
        clock.set(datetime(2026, 4, 15, tzinfo=UTC))
        await use.batch([ev(sub_a, "calls", at(2, 4)), ev(sub_a, "calls", at(20))])
        clock.set(MAY1 + timedelta(minutes=1))
        await tick(runtime, tid)
        found = await by_subscription(runtime, tid)
        a2 = found[sub_a][1]
        assert a2.period_start == APR1
        assert lines(a2) == [
            ("plan", "Metered (monthly)", 1, 10),
            ("usage", "API calls (1 units)", 1, 0.25),
        ]
        b2 = found[sub_b][1]  # no usage: the commitment alone, 20 - 8 = 12
        assert lines(b2) == [
            ("plan", "Metered (monthly) [custom pricing]", 1, 8),
            ("minimum_commitment", "Minimum commitment true-up", 1, 12),
        ]
        assert len(found[sub_c]) == 1  # canceled at the end of March


async def test_in_advance_renewal_bills_the_past_usage_and_true_up(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _):
        api = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        tid = api.creds.id
        plan = await use.plan(timing="IN_ADVANCE", prices={"USD": 10})
        calls = await use.metric("COUNT", name="Calls", code="calls")
        await use.charge(
            plan["id"],
            calls["id"],
            "PACKAGE",
            properties={"amount": 2, "packageSize": 10},
            minAmountCents=300,
        )
        cust = (await use.customer())["id"]
        await use.post(
            "/api/plan-overrides",
            {"customerId": cust, "planId": plan["id"], "overriddenMinimumCommitment": 30},
        )
        sub = (await use.subscription(plan["id"], customer_id=cust))["id"]
        clock.set(datetime(2026, 3, 20, tzinfo=UTC))
        await use.batch([ev(sub, "calls", at(day)) for day in range(2, 14)])  # 12 calls
        clock.set(APR1 + timedelta(minutes=1))
        await tick(runtime, tid)
        first, renewal = (await by_subscription(runtime, tid))[sub]
        assert lines(first) == [("plan", "Metered (monthly)", 1, 10)]
        # April's fee 10; March's usage: ceil(12 / 10) = 2 packages x 2 = 4.00 (over the
        # 3.00 minimum); commitment 30 - (March's fee 10, billed in advance, + 4) = 16
        assert renewal.period_start == APR1 and renewal.period_end == MAY1
        assert lines(renewal) == [
            ("plan", "Metered (monthly)", 1, 10),
            ("usage", "Calls (12 units)", 12, 4),
            ("minimum_commitment", "Minimum commitment true-up", 1, 16),
        ]
        assert renewal.metadata_ is not None
        assert renewal.metadata_["items"][1]["periodStart"] == "2026-03-01T00:00:00.000Z"
        assert renewal.total_minor == 3000

        # April: one call, then the subscription ends with the period: the last invoice
        # bills April's usage (1 package = 2.00, raised to the 3.00 minimum) and the
        # true-up (30 - 10 - 3 = 17), no fee
        clock.set(datetime(2026, 4, 10, tzinfo=UTC))
        await use.batch([ev(sub, "calls", at(3, 4))])
        await use.post(f"/api/subscriptions/{sub}/cancel", {"cancelAt": "period_end"})
        clock.set(MAY1 + timedelta(minutes=1))
        await tick(runtime, tid)
        invoices = (await by_subscription(runtime, tid))[sub]
        assert len(invoices) == 3
        last = invoices[2]
        assert last.period_start == MAY1 and last.period_end == MAY1
        assert lines(last) == [
            ("usage", "Calls (1 units)", 1, 2),
            ("usage", "Calls (minimum)", 1, 1),
            ("minimum_commitment", "Minimum commitment true-up", 1, 17),
        ]
        assert last.total_minor == 2000


async def test_ending_in_advance_without_usage_issues_nothing(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _):
        api = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        plan = await use.plan(timing="IN_ADVANCE", prices={"USD": 10})
        calls = await use.metric("COUNT", code="calls")
        await use.charge(plan["id"], calls["id"], "STANDARD", properties={"amount": 1})
        sub = (await use.subscription(plan["id"]))["id"]
        await use.post(f"/api/subscriptions/{sub}/cancel", {"cancelAt": "period_end"})
        clock.set(APR1 + timedelta(minutes=1))
        await tick(runtime, api.creds.id)
        [only] = (await by_subscription(runtime, api.creds.id))[sub]
        assert only.period_start == T0
