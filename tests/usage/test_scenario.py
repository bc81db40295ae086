"""Three monthly periods of one metered subscription, every aggregation and charge model,
through the real intake, interim checks and tenant tick, on SQLite and PostgreSQL,
checked twice: against an oracle written here from the contract (charges.md
"Aggregation", "Pricing", "Filters", "Which usage an invoice bills") that shares no code
with the application, and against totals worked out by hand.

Charges (plan fee 20.00 USD, IN_ARREARS):
- calls   COUNT, STANDARD 0.05; metric filter region in {eu, us}; charge filter eu at 0.08
- gb      SUM, GRADUATED 0-10 @1.00 | 11-20 @0.50 + 1 flat | 21- @0.25
- peak    MAX, VOLUME 0-5 @2.00 | 6-10 @1.50 + 3 flat | 11- @1.00
- users   UNIQUE_COUNT(user), PACKAGE 3.00 per started 5
- spend   WEIGHTED_SUM(amount x weight), PERCENTAGE 2.5 % beyond 100 free + 0.30 fixed
- seats   LATEST(seats), STANDARD 4.00, IN_ADVANCE, minimum 10.00
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from novabilling.billing import progressive
from tests.billing.support import Api, clocked_runtime
from tests.conftest import Backend
from tests.usage.support import UsageApi
from tests.usage.test_usage_invoices import by_subscription, tick

D = Decimal
START = datetime(2026, 3, 1, tzinfo=UTC)
BOUNDS = [START, datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)]
BOUNDS.append(datetime(2026, 6, 1, tzinfo=UTC))
_seq = itertools.count()


@dataclass(frozen=True)
class E:
    code: str
    at: datetime
    props: dict[str, Any]


def day(month: int, d: int, hour: int = 12) -> datetime:
    return datetime(2026, month, d, hour, tzinfo=UTC)


# --- the usage of each period -----------------------------------------------------------
SEATS_MARCH = [E("seats", day(3, 2), {"seats": 2}), E("seats", day(3, 5), {"seats": 3})]
MARCH = [
    *(E("calls", day(3, d), {"region": r}) for d, r in enumerate(["eu", "eu", "eu", "us"], 2)),
    E("calls", day(3, 7), {"region": "us"}),
    E("calls", day(3, 8), {}),
    E("calls", day(3, 9), {"region": "af"}),  # outside the metric filter: not counted
    E("gb", day(3, 2), {"gb": 8}),
    E("gb", day(3, 3), {"gb": 7.5}),
    E("gb", day(3, 4), {"gb": "4.5"}),
    E("peak", day(3, 2), {"peak": 3}),
    E("peak", day(3, 3), {"peak": 5}),
    E("peak", day(3, 4), {"peak": 2}),
    *(E("users", day(3, 2, h), {"user": u}) for h, u in enumerate("abcadef")),
    E("spend", day(3, 2), {"amount": 100, "weight": 2}),
    E("spend", day(3, 3), {"amount": 50}),
    E("spend", day(3, 4), {"amount": 30, "weight": 0}),
]
SEATS_APRIL = [E("seats", day(4, 3), {"seats": 1})]
APRIL = [
    E("gb", day(4, 5), {"gb": 25}),
    E("peak", day(4, 5), {"peak": 6}),
    *(E("users", day(4, 6, h), {"user": u}) for h, u in enumerate("vwxyz")),
    E("spend", day(4, 7), {"amount": 40, "weight": 2}),
]
MAY = [
    E("calls", day(5, 2), {"region": "eu"}),
    E("calls", day(5, 3), {"region": "eu"}),
    E("gb", day(5, 4), {"gb": "10.5"}),
    E("peak", day(5, 4), {"peak": 11}),
    *(E("users", day(5, 5, h), {"user": f"u{h}"}) for h in range(11)),
    E("spend", day(5, 6), {"amount": 101}),
]

# --- the oracle -------------------------------------------------------------------------
METRICS: dict[str, dict[str, Any]] = {
    "calls": {"agg": "COUNT", "field": None, "allowed": ("region", ["eu", "us"])},
    "gb": {"agg": "SUM", "field": "gb"},
    "peak": {"agg": "MAX", "field": "peak"},
    "users": {"agg": "UNIQUE_COUNT", "field": "user"},
    "spend": {"agg": "WEIGHTED_SUM", "field": "amount"},
    "seats": {"agg": "LATEST", "field": "seats"},
}
RANGES_GB = [(0, 10, D(1), D(0)), (11, 20, D("0.5"), D(1)), (21, None, D("0.25"), D(0))]
RANGES_PEAK = [(0, 5, D(2), D(0)), (6, 10, D("1.5"), D(3)), (11, None, D(1), D(0))]


def value(props: dict[str, Any], key: str) -> Decimal:
    v = props.get(key)
    if isinstance(v, bool) or v is None:
        return D(0)
    try:
        return D(str(v))
    except ArithmeticError:
        return D(0)


def units(code: str, events: list[E], start: datetime, end: datetime) -> Decimal:
    m = METRICS[code]
    chosen = [e for e in events if e.code == code and start <= e.at < end]
    if "allowed" in m:
        key, allowed = m["allowed"]
        chosen = [e for e in chosen if key not in e.props or e.props[key] in allowed]
    if not chosen:
        return D(0)
    f = m["field"]
    if m["agg"] == "COUNT":
        return D(len(chosen))
    if m["agg"] == "SUM":
        return sum((value(e.props, f) for e in chosen), D(0))
    if m["agg"] == "MAX":
        return max(value(e.props, f) for e in chosen)
    if m["agg"] == "UNIQUE_COUNT":
        return D(len({str(e.props.get(f, "")) for e in chosen}))
    if m["agg"] == "LATEST":
        return value(max(chosen, key=lambda e: e.at).props, f)
    total = D(0)
    for e in chosen:  # WEIGHTED_SUM: a weight of 0 or none counts as 1
        w = value(e.props, "weight")
        total += value(e.props, f) * (w if w != 0 else 1)
    return total


def graduated(u: Decimal, ranges: list[tuple[int, int | None, Decimal, Decimal]]) -> Decimal:
    cost, left = D(0), u
    for lo, hi, per, flat in ranges:
        if left <= 0:
            break
        take = left if hi is None else min(left, D(hi - lo + 1))
        cost += take * per + flat
        left -= take
    return cost


def volume(u: Decimal, ranges: list[tuple[int, int | None, Decimal, Decimal]]) -> Decimal:
    for lo, hi, per, flat in ranges:
        if lo <= u and (hi is None or u <= hi):
            return u * per + flat
    return D(0)


def cents(cost: Decimal) -> int:
    return int((cost * 100).to_integral_value(rounding=ROUND_HALF_UP))


def oracle(events: list[E], start: datetime, end: datetime) -> dict[str, int]:
    """Cost in cents per charge line key (``code`` or ``code:bucket``) for [start, end)."""
    out: dict[str, int] = {}
    eu = [e for e in events if e.code != "calls" or e.props.get("region") == "eu"]
    rest = [e for e in events if e.code != "calls" or e.props.get("region") != "eu"]
    out["calls:eu"] = cents(units("calls", eu, start, end) * D("0.08"))
    out["calls"] = cents(units("calls", rest, start, end) * D("0.05"))
    out["gb"] = cents(graduated(units("gb", events, start, end), RANGES_GB))
    out["peak"] = cents(volume(units("peak", events, start, end), RANGES_PEAK))
    u = units("users", events, start, end)
    out["users"] = cents((u / 5).to_integral_value(rounding=ROUND_CEILING) * 3)
    b = max(D(0), units("spend", events, start, end) - 100)
    out["spend"] = cents(b * D("2.5") / 100 + (D("0.30") if b > 0 else 0))
    seats = units("seats", events, start, end)
    out["seats"] = cents(seats * 4)
    if seats > 0 and out["seats"] < 1000:
        out["seats:minimum"] = 1000 - out["seats"]
    return {k: v for k, v in out.items() if v}


# --- the run ----------------------------------------------------------------------------
def wire(sub: str, events: list[E]) -> list[dict[str, Any]]:
    return [
        {
            "transactionId": f"s{next(_seq)}-{sub}",
            "subscriptionId": sub,
            "code": e.code,
            "timestamp": e.at.isoformat(),
            "properties": e.props,
        }
        for e in events
    ]


async def build_plan(use: UsageApi) -> tuple[str, dict[str, str]]:
    plan = await use.plan(prices={"USD": 20})
    ids: dict[str, str] = {}
    region = [{"key": "region", "values": ["eu", "us"]}]
    specs: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
        ("calls", {"filters": region}, "STANDARD", {
            "properties": {"amount": "0.05"},
            "filters": [{"key": "region", "values": ["eu"], "properties": {"amount": "0.08"}}],
        }),
        ("gb", {}, "GRADUATED", {"graduatedRanges": [
            {"fromValue": 0, "toValue": 10, "perUnitAmount": 1},
            {"fromValue": 11, "toValue": 20, "perUnitAmount": 0.5, "flatAmount": 1},
            {"fromValue": 21, "toValue": None, "perUnitAmount": 0.25},
        ]}),
        ("peak", {}, "VOLUME", {"graduatedRanges": [
            {"fromValue": 0, "toValue": 5, "perUnitAmount": 2},
            {"fromValue": 6, "toValue": 10, "perUnitAmount": 1.5, "flatAmount": 3},
            {"fromValue": 11, "toValue": None, "perUnitAmount": 1},
        ]}),
        ("users", {}, "PACKAGE", {"properties": {"amount": 3, "packageSize": 5}}),
        ("spend", {}, "PERCENTAGE", {"properties": {
            "rate": "2.5", "freeUnitsPerTotalAggregation": 100, "fixedAmount": "0.30",
        }}),
        ("seats", {}, "STANDARD", {
            "properties": {"amount": 4}, "billingTiming": "IN_ADVANCE", "minAmountCents": 1000,
        }),
    ]  # fmt: skip
    for code, metric_extra, model, charge_extra in specs:
        field = METRICS[code]["field"]
        metric = await use.metric(
            METRICS[code]["agg"],
            name=code.title(),
            code=code,
            **({"fieldName": field} if field else {}),
            **metric_extra,
        )
        charge = await use.charge(plan["id"], metric["id"], model, **charge_extra)
        ids[code] = charge["id"]
        if code == "calls":
            ids["calls:eu"] = charge["id"]
    return plan["id"], ids


def billed(invoices: list[Any], names: dict[str, str]) -> dict[str, int]:
    """Cents per oracle key over ``invoices`` (usage lines)."""
    by_id: dict[str, int] = {}
    for inv in invoices:
        for item in inv.metadata_["items"]:
            if item["type"] != "usage":
                continue
            code = next(k for k, v in names.items() if v == item["chargeId"] and ":" not in k)
            key = code
            if item["description"].endswith("[region: eu]"):
                key = f"{code}:eu"
            elif item["description"].endswith("(minimum)"):
                key = f"{code}:minimum"
            by_id[key] = by_id.get(key, 0) + cents(D(str(item["amount"])))
    return {k: v for k, v in by_id.items() if v}


async def test_three_periods_against_the_oracle(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, START) as (runtime, clock, client, _):
        api = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        tid = api.creds.id
        plan_id, names = await build_plan(use)
        sub = (await use.subscription(plan_id))["id"]
        periods = [SEATS_MARCH + MARCH, SEATS_APRIL + APRIL, MAY]

        # March: seats first, the interim check bills them (IN_ADVANCE), then the rest
        clock.set(day(3, 6))
        await use.batch(wire(sub, SEATS_MARCH))
        assert await progressive.check(runtime, tid, sub) is not None
        clock.set(day(3, 20))
        await use.batch(wire(sub, MARCH))
        clock.set(BOUNDS[1] + timedelta(minutes=1))
        await tick(runtime, tid)
        clock.set(day(4, 4))
        await use.batch(wire(sub, SEATS_APRIL))
        assert await progressive.check(runtime, tid, sub) is not None
        clock.set(day(4, 20))
        await use.batch(wire(sub, APRIL))
        clock.set(BOUNDS[2] + timedelta(minutes=1))
        await tick(runtime, tid)
        clock.set(day(5, 20))
        await use.batch(wire(sub, MAY))
        assert await progressive.check(runtime, tid, sub) is None  # no seats in May
        clock.set(BOUNDS[3] + timedelta(minutes=1))
        await tick(runtime, tid)

        invoices = (await by_subscription(runtime, tid))[sub]
        everything = [e for p in periods for e in p]
        for n in range(3):
            start, end = BOUNDS[n], BOUNDS[n + 1]
            own = [
                i
                for i in invoices
                if i.metadata_
                and i.metadata_["periodStart"] == start.isoformat().replace("+00:00", ".000Z")
            ]
            expected = oracle(everything, start, end)
            assert billed(own, names) == expected, f"period {n + 1}"
            period_invoice = next(i for i in own if i.period_start == start)
            plan_lines = [x for x in period_invoice.metadata_["items"] if x["type"] == "plan"]
            assert [x["amount"] for x in plan_lines] == [20]  # the fee once, never on interim

        # by hand (cents): March 24 + 15 + 1650 + 1000 + 600 + 480 + 1200 (seats, interim)
        # April 1800 (gb 11 + 6 + 1) + 1200 (peak 6 x 1.5 + 3) + 300 + seats 400 (interim)
        # + 600 (minimum); May 16 + 1050 + 1100 + 900 + 33 (1 x 2.5 % + 0.30 = 0.325 -> 0.33)
        assert oracle(everything, BOUNDS[0], BOUNDS[1]) == {
            "calls:eu": 24, "calls": 15, "gb": 1650, "peak": 1000, "users": 600,
            "spend": 480, "seats": 1200,
        }  # fmt: skip
        assert oracle(everything, BOUNDS[1], BOUNDS[2]) == {
            "gb": 1800, "peak": 1200, "users": 300, "seats": 400, "seats:minimum": 600,
        }  # fmt: skip
        assert oracle(everything, BOUNDS[2], BOUNDS[3]) == {
            "calls:eu": 16, "gb": 1050, "peak": 1100, "users": 900, "spend": 33,
        }  # fmt: skip
        totals = [(i.period_start, i.total_minor) for i in invoices]
        assert totals == [
            (None, 1200),  # March interim: seats 3 x 4.00
            (BOUNDS[0], 2000 + 24 + 15 + 1650 + 1000 + 600 + 480),
            (None, 400),  # April interim: seats 1 x 4.00
            (BOUNDS[1], 2000 + 1800 + 1200 + 300 + 600),
            (BOUNDS[2], 2000 + 16 + 1050 + 1100 + 900 + 33),
        ]
