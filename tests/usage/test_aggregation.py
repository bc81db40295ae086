"""Every aggregation in SQL (contract charges.md, "Aggregation"), with metric filters and
charge-filter buckets, on SQLite and PostgreSQL, against values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import httpx

from novabilling.runtime import Runtime
from novabilling.usage.aggregation import MetricSpec, aggregate
from tests.conftest import TenantCreds
from tests.usage.support import UsageApi

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(hours=2)
WINDOW = (T0, T0 + timedelta(hours=1))

# (minutes after T0, properties); comments give what each aggregation sees
EVENTS: list[tuple[float, dict[str, Any]]] = [
    (1, {"v": 10, "region": "eu", "weight": 2, "user": "a"}),
    (2, {"v": "2.5", "region": "us", "user": "b"}),
    (3, {"v": 0.1, "region": "eu", "weight": 0, "user": "a"}),
    (4, {"v": 0.2, "user": 7}),  # the newest: LATEST = 0.2
    (0.5, {"v": "abc", "region": "af"}),  # non-numeric v = 0; region outside the filter
    (0.7, {"v": True}),  # a boolean is not a number: 0
    (-0.1, {"v": 5, "region": "eu"}),  # before the window
    (60, {"v": 100}),  # at the window's end: excluded (end is exclusive)
]


async def setup(client: httpx.AsyncClient, tenant: TenantCreds) -> tuple[str, str, str]:
    api = UsageApi(client, tenant)
    plan = await api.plan()
    start = (NOW - timedelta(hours=3)).isoformat()
    sub_a = (await api.subscription(plan["id"], startDate=start))["id"]
    sub_b = (await api.subscription(plan["id"], startDate=start))["id"]
    metric = await api.metric("COUNT", code="things")  # COUNT: the intake checks no values
    events = [
        {
            "transactionId": f"a{n}",
            "subscriptionId": sub_a,
            "code": "things",
            "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(),
            "properties": props,
        }
        for n, (minutes, props) in enumerate(EVENTS)
    ]
    events.append(
        {
            "transactionId": "b0",
            "subscriptionId": sub_b,
            "code": "things",
            "timestamp": (T0 + timedelta(minutes=5)).isoformat(),
            "properties": {"v": 1, "user": "z"},
        }
    )
    answer = await api.batch(events)
    assert answer["created"] == len(events), answer
    return sub_a, sub_b, metric["code"]


async def units(
    runtime: Runtime, tenant: TenantCreds, spec: MetricSpec, subs: list[str], **kw: Any
) -> dict[tuple[str, int], D]:
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        return await aggregate(session, metric=spec, subscription_ids=subs, window=WINDOW, **kw)


CASES = [
    ("COUNT", None, "6", "1"),
    ("SUM", "v", "12.8", "1"),  # 10 + 2.5 + 0.1 + 0.2 exactly (floats: 12.799999...)
    ("MAX", "v", "10", "1"),
    ("LATEST", "v", "0.2", "1"),
    ("UNIQUE_COUNT", "user", "4", "1"),  # a, b, 7 and "" (missing, twice)
    ("WEIGHTED_SUM", "v", "22.8", "1"),  # 10x2 + 2.5x1 + 0.1x1 (weight 0 = 1) + 0.2x1
]


async def test_each_aggregation(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    sub_a, sub_b, code = await setup(client, tenant)
    for aggregation, field, a, b in CASES:
        spec = MetricSpec(code, aggregation, field)
        found = await units(runtime, tenant, spec, [sub_a, sub_b])
        assert found == {(sub_a, 0): D(a), (sub_b, 0): D(b)}, aggregation


async def test_metric_filters_and_charge_buckets(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    sub_a, _, code = await setup(client, tenant)
    only_eu_us = MetricSpec(code, "COUNT", None, (("region", ("eu", "us")),))
    # "af" is out; events without a region still count
    assert await units(runtime, tenant, only_eu_us, [sub_a]) == {(sub_a, 0): D(5)}
    summed = MetricSpec(code, "SUM", "v")
    buckets = [("region", ("eu",)), ("user", ("b", "7"))]
    found = await units(runtime, tenant, summed, [sub_a], buckets=buckets)
    # bucket 1 (region eu): 10 + 0.1; bucket 2 (user b or 7): 2.5 + 0.2 (e4 has no region);
    # the rest ("abc" and true) sum to 0
    assert found == {(sub_a, 1): D("10.1"), (sub_a, 2): D("2.7"), (sub_a, 0): D(0)}
    latest = await units(runtime, tenant, MetricSpec(code, "LATEST", "v"), [sub_a], buckets=buckets)
    assert latest == {(sub_a, 1): D("0.1"), (sub_a, 2): D("0.2"), (sub_a, 0): D(0)}


async def test_no_events_no_units(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    sub_a, _, code = await setup(client, tenant)
    assert await units(runtime, tenant, MetricSpec("other_code", "COUNT"), [sub_a]) == {}
    assert await units(runtime, tenant, MetricSpec(code, "SUM", "v"), []) == {}
