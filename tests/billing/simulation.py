"""200 subscriptions over every interval and both timings, with trials and cancellations,
driven through 13 months by a TestClock (tick twice per step). The invoices must be
exactly the ones computed here independently (own calendar arithmetic), numbered
gaplessly.

Run per backend from two files (test_simulation.py on SQLite, test_simulation_postgres.py
on PostgreSQL), so that ``pytest -n 2 --dist loadfile`` runs them side by side instead of
one after the other on the same worker: together they were the suite's longest file."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from novabilling.billing.tick import run_tenant_tick
from novabilling.invoices.lifecycle import ISSUED_JOB
from tests.billing.support import Api, clocked_runtime, invoices_of
from tests.conftest import Backend

T0 = datetime(2025, 2, 7, 12, 0, tzinfo=UTC)
ANCHOR = datetime(2025, 1, 31, 10, 30, tzinfo=UTC)  # month-end anchor on purpose
STEP = timedelta(hours=12)
INTERVALS = ("HOURLY", "DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY")
TIMINGS = ("IN_ADVANCE", "IN_ARREARS")
CURRENCIES = (("USD", 2), ("UGX", 0), ("KES", 2))


def add_months(at: datetime, months: int) -> datetime:
    total = at.year * 12 + at.month - 1 + months
    year, month = divmod(total, 12)
    day = min(at.day, calendar.monthrange(year, month + 1)[1])
    return at.replace(year=year, month=month + 1, day=day)


def boundary(anchor: datetime, interval: str, k: int) -> datetime:
    fixed = {"HOURLY": timedelta(hours=1), "DAILY": timedelta(days=1), "WEEKLY": timedelta(days=7)}
    if interval in fixed:
        return anchor + fixed[interval] * k
    return add_months(anchor, {"MONTHLY": 1, "QUARTERLY": 3, "YEARLY": 12}[interval] * k)


@dataclass
class Spec:
    interval: str
    timing: str
    currency: str
    price_minor: int
    start: datetime
    trial_days: int
    cancel_request: datetime | None
    sub_id: str = ""

    @property
    def anchor(self) -> datetime:
        return self.start + timedelta(days=self.trial_days)

    def cancel_at(self) -> datetime | None:
        if self.cancel_request is None:
            return None
        k = 0
        while boundary(self.anchor, self.interval, k) <= self.cancel_request:
            k += 1
        return boundary(self.anchor, self.interval, k)

    def expected(self, until: datetime) -> list[tuple[datetime, int]]:
        """(period start, amount) of every invoice due by ``until``."""
        stop = self.cancel_at()
        out = []
        k = 0
        while True:
            start = boundary(self.anchor, self.interval, k)
            end = boundary(self.anchor, self.interval, k + 1)
            if self.timing == "IN_ADVANCE":
                if start > until or (stop is not None and start >= stop):
                    break
            elif end > until or (stop is not None and end > stop):
                break
            out.append((start, self.price_minor))
            k += 1
        return out


def specs() -> list[Spec]:
    out = []
    for i in range(200):
        interval = INTERVALS[i % 6]
        timing = TIMINGS[(i // 6) % 2]
        currency, decimals = CURRENCIES[i % 3]
        price = (1000 + 37 * i) if decimals else (25000 + 500 * i)
        start = ANCHOR + timedelta(days=i % 7, hours=i % 5)
        trial = 14 if i % 5 == 0 else 0
        cancel: datetime | None = None
        if interval == "HOURLY":
            cancel = T0 + timedelta(days=2)
        elif interval == "DAILY":
            cancel = T0 + timedelta(days=40)
        elif i % 10 == 3:
            cancel = T0 + timedelta(days=100)
        elif trial and i % 3 == 1:
            cancel = T0 + STEP  # during the trial
        out.append(Spec(interval, timing, currency, price, start, trial, cancel))
    return out


async def thirteen_months_of_billing(backend: Backend) -> None:
    population = specs()
    end = add_months(T0, 13)
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        tid = api.creds.id
        customers = {code: (await api.customer(code))["id"] for code, _ in CURRENCIES}
        for n, spec in enumerate(population):
            decimals = dict(CURRENCIES)[spec.currency]
            own = await api.plan(
                spec.interval,
                spec.timing,
                {
                    spec.currency: f"{spec.price_minor / 10**decimals:.{decimals}f}"
                    if decimals
                    else spec.price_minor
                },
            )
            body = {"startDate": spec.start.isoformat()}
            if spec.trial_days:
                body["trialDays"] = spec.trial_days
            sub = await api.subscription(
                customers[spec.currency], own["id"], spec.currency, externalId=f"sim-{n}", **body
            )
            spec.sub_id = sub["id"]

        now = T0
        pending_cancels = sorted({s.cancel_request for s in population if s.cancel_request})
        while now <= end:
            clock.set(now)
            first = await run_tenant_tick(runtime, tid)
            second = await run_tenant_tick(runtime, tid)
            assert second.invoiced == 0 and not second.outcomes, (now, second)
            del first
            while pending_cancels and pending_cancels[0] <= now:
                due = pending_cancels.pop(0)
                for spec in population:
                    if spec.cancel_request == due:
                        await api.post(
                            f"/api/subscriptions/{spec.sub_id}/cancel", {"cancelAt": "period_end"}
                        )
            now += STEP
        last = now - STEP

        invoices = await invoices_of(runtime, tid)
        actual: dict[str, list[tuple[datetime, int]]] = {}
        for inv in invoices:
            assert inv.subscription_id is not None and inv.period_start is not None
            actual.setdefault(inv.subscription_id, []).append((inv.period_start, inv.total_minor))
        total_expected = 0
        for spec in population:
            want = spec.expected(last)
            total_expected += len(want)
            got = sorted(actual.get(spec.sub_id, []))
            assert got == want, (spec, got[:3], want[:3], len(got), len(want))
        assert len(invoices) == total_expected
        numbers = sorted(int(i.invoice_number.removeprefix("INV-")) for i in invoices)
        assert numbers == list(range(1, len(invoices) + 1))
        assert {i.currency for i in invoices} == {"USD", "UGX", "KES"}
        assert all(i.status == "PENDING" for i in invoices)
        issued = [j["invoice_id"] for j in queue.named("email.invoice_issued")]
        issued += [i for job in queue.named(ISSUED_JOB) for i, _ in job["invoices"]]
        assert sorted(issued) == sorted(i.id for i in invoices)  # each exactly once
