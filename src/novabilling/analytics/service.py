"""The analytics reports (contract analytics.md): one function per endpoint, each a few
aggregate queries (``queries``, ``cohorts``) and exact arithmetic (``figures``), returning
the wire dict.

USD figures use the tenant's rates (``kit.fx``: the original's fixed table, overridable
with the ``fxRates`` setting). With ``byCurrency`` a report also carries the same figures
per currency in that currency's own units, never converted or mixed (``byCurrency``: one
entry per currency seen, sorted by code, each with the ``usdRate`` used for it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.analytics import cohorts, queries
from novabilling.analytics.figures import (
    Amounts,
    monthly,
    native_number,
    native_text,
    rate_text,
    ratio,
    usd_number,
    usd_text,
)
from novabilling.analytics.params import Query
from novabilling.analytics.queries import MrrRow, Span
from novabilling.kit.fx import Rates

__all__ = [
    "churn_cohorts",
    "customers",
    "ltv",
    "mrr_breakdown",
    "net_revenue",
    "payments",
    "revenue",
    "subscriptions",
]

_HUNDRED = Decimal(100)


def _span(query: Query) -> Span:
    return Span(query.date_from, query.date_to)


def _percent(part: int, whole: int) -> str:
    """``"5.00%"``; ``"0%"`` when ``whole`` is 0 (contract)."""
    if not whole:
        return "0%"
    return f"{usd_text(ratio(Decimal(part) * _HUNDRED, whole))}%"


def _mrr(rows: Iterable[MrrRow]) -> Amounts:
    out = Amounts()
    for row in rows:
        out.add(row.currency, monthly(row.price_minor, row.currency, row.interval))
    return out


def _whole(value: Decimal) -> int:
    """Rounded half-up to a whole number (day counts)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _entries(*tables: Amounts) -> list[str]:
    seen: set[str] = set()
    for table in tables:
        seen |= table.currencies()
    return sorted(seen)


def month_start(now: datetime) -> tuple[datetime, datetime]:
    """The current calendar month (UTC): its first instant and the next month's."""
    now = now.astimezone(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    nxt = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return start, nxt


# --- revenue, customers --------------------------------------------------------------------


async def revenue(session: AsyncSession, *, query: Query, rates: Rates) -> dict[str, Any]:
    rows = await queries.paid_invoices(session, paid=_span(query), currency=query.currency)
    paid = Amounts.of_rows((c, s) for c, s, _ in rows)
    mrr = _mrr(await queries.mrr_rows(session))
    mrr_usd = mrr.usd(rates)
    body: dict[str, Any] = {
        "totalRevenue": usd_text(paid.usd(rates)),
        "invoiceCount": sum(n for _, _, n in rows),
        "mrr": usd_text(mrr_usd),
        "arr": usd_text(mrr_usd * 12),
    }
    if query.by_currency:
        counts = {c: n for c, _, n in rows}
        body["byCurrency"] = [
            {
                "currency": code,
                "totalRevenue": native_text(paid.get(code), code),
                "invoiceCount": counts.get(code, 0),
                "mrr": native_text(mrr.get(code), code),
                "arr": native_text(mrr.get(code) * 12, code),
                "usdRate": rate_text(rates, code),
            }
            for code in _entries(paid, mrr)
        ]
    return body


async def customers(session: AsyncSession, *, query: Query, rates: Rates) -> dict[str, Any]:
    total, new = await queries.customer_counts(session, created=_span(query))
    rows = await queries.paid_invoices(session)
    paid = Amounts.of_rows((c, s) for c, s, _ in rows)
    paid_usd = paid.usd(rates)
    body: dict[str, Any] = {
        "totalCustomers": total,
        "newCustomers": new,
        "arpu": usd_text(ratio(paid_usd, total)),
        "totalRevenue": usd_text(paid_usd),
    }
    if query.by_currency:
        body["byCurrency"] = [
            {
                "currency": code,
                "totalRevenue": native_text(paid.get(code), code),
                "arpu": native_text(ratio(paid.get(code), total), code),
                "usdRate": rate_text(rates, code),
            }
            for code in _entries(paid)
        ]
    return body


# --- counts ----------------------------------------------------------------------------------


async def subscriptions(session: AsyncSession, *, query: Query) -> dict[str, Any]:
    counts = await queries.subscription_counts(session, created=_span(query))
    churn = _percent(counts.canceled_in_range, counts.total)
    churn_value = Decimal(churn.rstrip("%"))
    return {
        "total": counts.total,
        "active": counts.active,
        "canceled": counts.canceled_in_range,
        "trialing": counts.trialing,
        "paused": counts.paused,
        "newSubscriptions": counts.created_in_range,
        "churnRate": churn,
        "retentionRate": f"{usd_text(_HUNDRED - churn_value)}%",
    }


async def payments(session: AsyncSession, *, query: Query) -> dict[str, Any]:
    total, succeeded, failed = await queries.payment_counts(
        session, created=_span(query), provider=query.provider
    )
    return {
        "totalPayments": total,
        "succeeded": succeeded,
        "failed": failed,
        "pending": total - succeeded - failed,
        "successRate": _percent(succeeded, total),
    }


# --- MRR -------------------------------------------------------------------------------------


def _by_plan(rows: list[MrrRow], rates: Rates) -> list[dict[str, Any]]:
    plans: dict[str, tuple[str, Amounts, int]] = {}
    for row in rows:
        name, amounts, count = plans.get(row.plan_id, (row.plan_name, Amounts(), 0))
        amounts.add(row.currency, monthly(row.price_minor, row.currency, row.interval))
        plans[row.plan_id] = (name, amounts, count + row.count)
    listed = [
        (plan_id, name, amounts.usd(rates), count)
        for plan_id, (name, amounts, count) in plans.items()
    ]
    listed.sort(key=lambda item: (-item[2], item[0]))
    return [
        {"planId": p, "planName": n, "mrr": usd_number(m), "subscriptionCount": c}
        for p, n, m, c in listed
    ]


async def mrr_breakdown(
    session: AsyncSession, *, query: Query, rates: Rates, now: datetime
) -> dict[str, Any]:
    """Date parameters are accepted but ignored: "this month" is the clock's (UTC)."""
    start, nxt = month_start(now)
    active = await queries.mrr_rows(session)
    total = _mrr(active)
    new = _mrr(await queries.mrr_rows(session, created_since=start))
    churn = _mrr(
        await queries.mrr_rows(session, status=queries.CANCELED, canceled=Span(start, None))
    )
    expansion, contraction = Amounts(), Amounts()
    for currency, up, down in await queries.plan_changes(session, since=start):
        expansion.add_minor(currency, up)
        contraction.add_minor(currency, down)
    net = Amounts()
    for table, sign in ((new, 1), (expansion, 1), (contraction, -1), (churn, -1)):
        for code in table.currencies():
            net.add(code, table.get(code) * sign)
    figures = {
        "totalMrr": total,
        "newMrr": new,
        "expansionMrr": expansion,
        "contractionMrr": contraction,
        "churnMrr": churn,
        "netNewMrr": net,
    }
    body: dict[str, Any] = {name: usd_number(table.usd(rates)) for name, table in figures.items()}
    body["byPlan"] = _by_plan(active, rates)
    if query.by_currency:
        body["byCurrency"] = [
            {
                "currency": code,
                **{name: native_number(table.get(code), code) for name, table in figures.items()},
                "usdRate": rate_text(rates, code),
            }
            for code in _entries(*figures.values())
        ]
    return body


# --- net revenue, cohorts, LTV ---------------------------------------------------------------


async def net_revenue(session: AsyncSession, *, query: Query, rates: Rates) -> dict[str, Any]:
    span = _span(query)
    gross = Amounts.of_rows(
        (c, s) for c, s, _ in await queries.paid_invoices(session, created=span)
    )
    refunds = Amounts.of_rows(await queries.refunded_payments(session, created=span))
    notes = Amounts.of_rows(await queries.credit_notes(session, created=span))
    net = gross.minus(refunds).minus(notes)
    figures = {
        "grossRevenue": gross,
        "refunds": refunds,
        "creditNotes": notes,
        "netRevenue": net,
    }
    body: dict[str, Any] = {name: usd_number(table.usd(rates)) for name, table in figures.items()}
    if query.by_currency:
        body["byCurrency"] = [
            {
                "currency": code,
                **{name: native_number(table.get(code), code) for name, table in figures.items()},
                "usdRate": rate_text(rates, code),
            }
            for code in _entries(*figures.values())
        ]
    return body


async def churn_cohorts(session: AsyncSession, *, months: int, now: datetime) -> dict[str, Any]:
    return await cohorts.churn_cohorts(session, now=now, months=months)


async def ltv(
    session: AsyncSession, *, rates: Rates, now: datetime, by_currency: bool = False
) -> dict[str, Any]:
    """Mean over all subscriptions of their PAID invoices (USD) and of their lifespans
    (days from creation to cancellation or now, at least 1), overall and per current plan."""
    spans = await queries.lifespans(session, now=now)
    paid: dict[str, Amounts] = {}
    for plan_id, currency, minor in await queries.paid_by_plan(session):
        paid.setdefault(plan_id, Amounts()).add_minor(currency, minor)
    everything = Amounts()
    for amounts in paid.values():
        for code in amounts.currencies():
            everything.add(code, amounts.get(code))
    count = sum(k for _, _, k, _ in spans)
    days = sum((d for _, _, _, d in spans), Decimal(0))
    plans = []
    for plan_id, name, k, d in spans:
        plan_paid = paid.get(plan_id, Amounts()).usd(rates)
        plans.append((plan_id, name, ratio(plan_paid, k), ratio(d, k)))
    plans.sort(key=lambda item: (-item[2], item[0]))
    body: dict[str, Any] = {
        "avgLtv": usd_number(ratio(everything.usd(rates), count)),
        "avgLifespanDays": _whole(ratio(days, count)),
        "byPlan": [
            {
                "planId": p,
                "planName": n,
                "avgLtv": usd_number(v),
                "avgLifespanDays": _whole(life),
            }
            for p, n, v, life in plans
        ],
    }
    if by_currency:
        per = dict(await queries.subscriptions_per_currency(session))
        body["byCurrency"] = [
            {
                "currency": code,
                "subscriptions": per.get(code, 0),
                "totalPaid": native_number(everything.get(code), code),
                "avgLtv": native_number(ratio(everything.get(code), per.get(code, 0)), code),
                "usdRate": rate_text(rates, code),
            }
            for code in sorted(everything.currencies() | set(per))
        ]
    return body
