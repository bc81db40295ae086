"""GET /api/subscriptions/{id}/usage and /upcoming-invoice: usage so far per charge and the
invoice the period is heading for (never stored), on SQLite and PostgreSQL, with amounts
worked out by hand; 404 for another tenant's subscription, 401 without credentials, 400
for a CANCELED one; both documented in the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from novabilling.kit.clock import TestClock
from tests.billing.support import Api, clocked_runtime, invoices_of
from tests.conftest import Backend, assert_error
from tests.usage.support import UsageApi
from tests.usage.test_usage_invoices import APR1, MAY1, T0, at, ev


async def setup(
    use: UsageApi, clock: TestClock, timing: str = "IN_ARREARS"
) -> tuple[dict[str, Any], str]:
    plan = await use.plan(timing=timing, prices={"USD": 10})
    calls = await use.metric("COUNT", name="API calls", code="calls")
    gb = await use.metric(
        "SUM",
        name="Storage",
        code="gb",
        fieldName="gb",
        filters=[{"key": "region", "values": ["eu", "us"]}],
    )
    calls_charge = await use.charge(
        plan["id"], calls["id"], "STANDARD", properties={"amount": "0.25"}, minAmountCents=100
    )
    gb_charge = await use.charge(
        plan["id"],
        gb["id"],
        "STANDARD",
        properties={"amount": 1},
        filters=[{"key": "region", "values": ["eu"], "properties": {"amount": 2}}],
    )
    sub = (await use.subscription(plan["id"]))["id"]  # at T0
    clock.set(datetime(2026, 3, 10, tzinfo=UTC))
    await use.batch(
        [
            ev(sub, "calls", at(2)),
            ev(sub, "calls", at(3)),
            ev(sub, "calls", at(4)),
            ev(sub, "gb", at(2), gb=3, region="eu"),
            ev(sub, "gb", at(3), gb=2, region="us"),
            ev(sub, "gb", at(4), gb=1),
            ev(sub, "gb", at(5), gb=50, region="af"),  # outside the metric filter: ignored
        ]
    )
    return {"calls": calls_charge, "gb": gb_charge, "filter": gb_charge["filters"][0]}, sub


async def test_usage_so_far_per_charge_and_bucket(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _):
        api = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        charges, sub = await setup(use, clock)
        body = await use.get(f"/api/subscriptions/{sub}/usage")
        # calls: 3 x 0.25 = 0.75 (the 1.00 minimum would add 0.25); storage: eu 3 GB x 2
        # = 6, the rest (us 2 + no region 1) x 1 = 3
        assert body == {
            "subscriptionId": sub,
            "currency": "USD",
            "periodStart": "2026-03-01T00:00:00.000Z",
            "periodEnd": "2026-04-01T00:00:00.000Z",
            "amount": 9.75,
            "billed": 0,
            "charges": [
                {
                    "chargeId": charges["calls"]["id"],
                    "billableMetricId": charges["calls"]["billableMetricId"],
                    "code": "calls",
                    "name": "API calls",
                    "chargeModel": "STANDARD",
                    "billingTiming": "IN_ARREARS",
                    "units": 3,
                    "amount": 0.75,
                    "minimum": 0.25,
                    "billed": 0,
                    "buckets": [
                        {
                            "filterId": None,
                            "description": "API calls (3 units)",
                            "units": 3,
                            "amount": 0.75,
                        }
                    ],
                },
                {
                    "chargeId": charges["gb"]["id"],
                    "billableMetricId": charges["gb"]["billableMetricId"],
                    "code": "gb",
                    "name": "Storage",
                    "chargeModel": "STANDARD",
                    "billingTiming": "IN_ARREARS",
                    "units": 6,
                    "amount": 9,
                    "minimum": 0,
                    "billed": 0,
                    "buckets": [
                        {
                            "filterId": None,
                            "description": "Storage (3 units)",
                            "units": 3,
                            "amount": 3,
                        },
                        {
                            "filterId": charges["filter"]["id"],
                            "description": "Storage (3 units) [region: eu]",
                            "units": 3,
                            "amount": 6,
                        },
                    ],
                },
            ],
        }


async def test_upcoming_invoice_is_the_period_end_draft(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _):
        api = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        charges, sub = await setup(use, clock)
        body = await use.get(f"/api/subscriptions/{sub}/upcoming-invoice")
        window = {
            "periodStart": "2026-03-01T00:00:00.000Z",
            "periodEnd": "2026-04-01T00:00:00.000Z",
        }
        calls_id, gb_id = charges["calls"]["id"], charges["gb"]["id"]
        # fee 10 + calls 0.75 + minimum 0.25 + storage 3 + 6 = 20.00, due 30 days after
        assert body == {
            "subscriptionId": sub,
            "customerId": body["customerId"],
            "currency": "USD",
            "issuedAt": "2026-04-01T00:00:00.000Z",
            **window,
            "status": "PENDING",
            "subtotal": 20,
            "taxAmount": 0,
            "amount": 20,
            "dueDate": "2026-05-01T00:00:00.000Z",
            "items": [
                {
                    "description": "Metered (monthly)",
                    "quantity": 1,
                    "unitAmount": 10,
                    "amount": 10,
                    "type": "plan",
                },
                {
                    "description": "API calls (3 units)",
                    "quantity": 3,
                    "unitAmount": 0.25,
                    "amount": 0.75,
                    "type": "usage",
                    "chargeId": calls_id,
                    **window,
                },
                {
                    "description": "API calls (minimum)",
                    "quantity": 1,
                    "unitAmount": 0.25,
                    "amount": 0.25,
                    "type": "usage",
                    "chargeId": calls_id,
                    **window,
                },
                {
                    "description": "Storage (3 units)",
                    "quantity": 3,
                    "unitAmount": 1,
                    "amount": 3,
                    "type": "usage",
                    "chargeId": gb_id,
                    **window,
                },
                {
                    "description": "Storage (3 units) [region: eu]",
                    "quantity": 3,
                    "unitAmount": 2,
                    "amount": 6,
                    "type": "usage",
                    "chargeId": gb_id,
                    **window,
                },
            ],
        }
        assert await invoices_of(runtime, api.creds.id) == []  # a preview, never stored


async def test_upcoming_invoice_in_advance_bills_next_fee_and_past_usage(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _):
        api = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        _, sub = await setup(use, clock, timing="IN_ADVANCE")
        body = await use.get(f"/api/subscriptions/{sub}/upcoming-invoice")
        assert (body["periodStart"], body["periodEnd"]) == (
            "2026-04-01T00:00:00.000Z",
            "2026-05-01T00:00:00.000Z",
        )
        assert [(i["type"], i["amount"]) for i in body["items"]] == [
            ("plan", 10),
            ("usage", 0.75),
            ("usage", 0.25),
            ("usage", 3),
            ("usage", 6),
        ]
        assert body["items"][1]["periodStart"] == "2026-03-01T00:00:00.000Z"
        assert body["amount"] == 20
        assert APR1 < MAY1  # the periods named above


async def test_usage_views_refuse_other_tenants_no_auth_and_canceled(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _):
        api = await Api.new_tenant(client)
        other = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        plan = await use.plan()
        sub = (await use.subscription(plan["id"]))["id"]
        for path in (
            f"/api/subscriptions/{sub}/usage",
            f"/api/subscriptions/{sub}/upcoming-invoice",
        ):
            ok = await client.get(path, headers=api.creds.key_headers)
            assert ok.status_code == 200, ok.text
            assert ok.json()["currency"] == "USD"
            assert_error(await client.get(path, headers=other.creds.key_headers), 404)
            assert_error(await client.get(path), 401)
            missing = path.replace(sub, "sub_missing")
            assert_error(await client.get(missing, headers=api.creds.key_headers), 404)
        await use.post(f"/api/subscriptions/{sub}/cancel", {"cancelAt": "now"})
        for path in (
            f"/api/subscriptions/{sub}/usage",
            f"/api/subscriptions/{sub}/upcoming-invoice",
        ):
            assert_error(await client.get(path, headers=api.creds.key_headers), 400)
        doc = (await client.get("/api/openapi.json")).json()
        usage_op = doc["paths"]["/api/subscriptions/{subscription_id}/usage"]["get"]
        upcoming_op = doc["paths"]["/api/subscriptions/{subscription_id}/upcoming-invoice"]["get"]
        assert usage_op["summary"].startswith("Usage of the running period")
        assert upcoming_op["summary"].startswith("Preview of the invoice")
        schema = usage_op["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith("SubscriptionUsageOut")
