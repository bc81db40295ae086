"""``novabilling seed-demo``: a demo tenant with months of realistic history.

Everything goes through the running code, not hand-made rows: the HTTP API in process
(register, plans, customers, subscriptions, usage events, checkouts, mark-paid, refunds,
cancel / pause / resume / change-plan) and the billing engine's own tick
(``billing.tick.run_tenant_tick``: renewals, trial ends, first invoices, automatic charges,
dunning), run once per simulated day on a clock that walks from ``months`` ago to now.

Payments: customers paying in NGN, GHS, ZAR or USD with a card pay their first invoice on
a hosted checkout of the in-process **Paystack simulator** (its webhook comes back signed
to ``/webhooks/paystack``); the card is saved and later invoices are charged
automatically through the simulator (a few cards start declining: dunning, PAST_DUE,
cancellation). Everyone else pays by bank transfer or M-Pesa recorded with
``mark-paid`` (the manual path) a few days after the invoice. When the simulator cannot
be configured (a production allow-list), every payment takes the manual path.

Jobs the API and the engine queue run in process; e-mails, PDFs and outbound webhooks
are dropped (nobody reads the demo customers' mail). Idempotent per tenant name: a
second run with the same name changes nothing.
"""

from __future__ import annotations

import math
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog

from novabilling.app import create_app
from novabilling.billing.tick import run_tenant_tick
from novabilling.bootstrap import build_runtime
from novabilling.config import Settings
from novabilling.kit.clock import SystemClock, TestClock
from novabilling.kit.jobs import QUEUE_BILLING, QUEUE_PAYMENTS, QUEUE_WEBHOOKS
from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.payments.credentials import provider_factory
from novabilling.runtime import Runtime
from novabilling.simulators import paystack as paystack_sim
from novabilling.tenancy import operations
from novabilling.worker import build_handlers

log = structlog.get_logger(__name__)

DEFAULT_NAME = "NovaBilling Demo"
SIM_URL = "http://paystack.sim"
CARD_CURRENCIES = ("NGN", "GHS", "ZAR", "USD")
# jobs that make the history (charges, inbound webhooks, issued-invoice collection)
_KEPT = {
    (QUEUE_PAYMENTS, "payments.charge"),
    (QUEUE_PAYMENTS, "payments.reconcile"),
    (QUEUE_PAYMENTS, "payments.refund_overpayment"),
    (QUEUE_WEBHOOKS, "webhooks.process"),
    (QUEUE_WEBHOOKS, "webhooks.process_batch"),
    (QUEUE_BILLING, "invoices.issued"),
}

CURRENCIES: tuple[tuple[str, str, float], ...] = (  # currency, country, weight
    ("NGN", "NG", 0.35),
    ("KES", "KE", 0.22),
    ("GHS", "GH", 0.10),
    ("ZAR", "ZA", 0.08),
    ("USD", "US", 0.17),
    ("EUR", "DE", 0.08),
)
PLANS: tuple[dict[str, Any], ...] = (
    {
        "name": "Starter",
        "code": "starter",
        "billingInterval": "MONTHLY",
        "weight": 0.45,
        "prices": {"NGN": 4500, "KES": 1200, "GHS": 120, "ZAR": 170, "USD": 9, "EUR": 9},
    },
    {
        "name": "Growth",
        "code": "growth",
        "billingInterval": "MONTHLY",
        "weight": 0.35,
        "prices": {"NGN": 15000, "KES": 4000, "GHS": 400, "ZAR": 540, "USD": 29, "EUR": 27},
    },
    {
        "name": "Scale",
        "code": "scale",
        "billingInterval": "QUARTERLY",
        "weight": 0.12,
        "prices": {
            "NGN": 120000,
            "KES": 33000,
            "GHS": 3200,
            "ZAR": 4500,
            "USD": 249,
            "EUR": 229,
        },
    },
    {
        "name": "Enterprise",
        "code": "enterprise",
        "billingInterval": "YEARLY",
        "weight": 0.08,
        "prices": {
            "NGN": 1500000,
            "KES": 400000,
            "GHS": 38000,
            "ZAR": 52000,
            "USD": 2900,
            "EUR": 2700,
        },
    },
)
FIRST = [
    "Amina",
    "Chidi",
    "Wanjiku",
    "Kofi",
    "Thandiwe",
    "Emeka",
    "Akosua",
    "Baraka",
    "Zanele",
    "Tunde",
    "Njeri",
    "Kwame",
    "Lerato",
    "Ifeoma",
    "Otieno",
    "Abena",
    "Sipho",
    "Ngozi",
    "Kipchoge",
    "Efua",
    "Lindiwe",
    "Segun",
    "Achieng",
    "Yaw",
    "Nomsa",
    "Femi",
    "Grace",
    "Daniel",
    "Sarah",
    "Michael",
    "Laura",
    "Jonas",
]
LAST = [
    "Okafor",
    "Mwangi",
    "Mensah",
    "Dlamini",
    "Adeyemi",
    "Otieno",
    "Boateng",
    "Nkosi",
    "Balogun",
    "Kamau",
    "Asante",
    "Khumalo",
    "Eze",
    "Njoroge",
    "Owusu",
    "Mokoena",
    "Obi",
    "Kariuki",
    "Appiah",
    "Ndlovu",
    "Smith",
    "Müller",
    "Schmidt",
    "Brown",
]
COMPANY = [
    "Labs",
    "Stores",
    "Logistics",
    "Foods",
    "Health",
    "Studio",
    "Pay",
    "Tech",
    "Farms",
    "Travel",
    "Media",
    "Energy",
]


class SeedError(Exception):
    """The seed could not continue (the message says why)."""


@dataclass
class SeedResult:
    name: str
    tenant_id: str
    email: str
    created: bool
    password: str | None = None
    api_key: str | None = None
    payments_via: str = ""
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class _Customer:
    index: int
    day: int
    currency: str
    country: str
    plan: int
    trial: bool
    card: bool
    late_payer: bool
    declines_after: int | None  # day from which a saved card declines
    cancel_day: int | None
    cancel_now: bool
    pause_day: int | None
    resume_day: int | None
    change_day: int | None
    change_to: int
    id: str = ""
    subscription_id: str = ""
    card_code: str | None = None
    status: str | None = None  # the import helper's status (an account moved in as is)
    auto: bool = False  # the saved card is on the subscription: the engine charges it


class _DemoQueue(InProcessQueue):
    """In-process jobs for what makes the history; e-mails, PDFs and outbound webhooks
    are dropped (also those queued by handlers, which enqueue on the queue running them)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(build_handlers(runtime), backoff_base_seconds=0.01)
        self.dropped = 0

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
        if (queue, name) not in _KEPT:
            self.dropped += 1
            return
        await super().enqueue(
            queue, name, data, job_id=job_id, delay_seconds=delay_seconds, attempts=attempts
        )


class _DemoPaystack(paystack_sim.PaystackSimulator):
    """The Paystack simulator, with cards that start declining on a given day."""

    declining: set[str]

    def charge_authorization(self, tx: dict[str, Any], code: str) -> None:
        if code in self.declining:
            tx["authorization"] = self.authorizations[code][1]
            tx.update(status="failed", gateway_response="Insufficient Funds")
            return
        super().charge_authorization(tx, code)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "demo"


def demo_email(name: str) -> str:
    return f"owner@{slug(name)}.demo.novabilling.dev"


async def existing_tenant(settings: Settings, name: str) -> tuple[str, str] | None:
    """(id, e-mail) of the tenant named ``name`` (or registered with its e-mail)."""
    email = demo_email(name)
    for row in await operations.list_tenants(settings):
        if row.name == name or row.email == email:
            return row.id, row.email
    return None


def _pick(rng: random.Random, weights: list[float]) -> int:
    return rng.choices(range(len(weights)), weights=weights)[0]


def plan_customers(
    count: int, days: int, rng: random.Random, month_day: int = 0, last_month: int = 0
) -> list[_Customer]:
    """Who arrives when (growth: more customers later) and what each will do."""
    out = []
    currency_weights = [w for _, _, w in CURRENCIES]
    plan_weights = [float(p["weight"]) for p in PLANS]
    for i in range(count):
        day = min(days - 1, int(days * math.sqrt(rng.random())))
        cur, country, _ = CURRENCIES[_pick(rng, currency_weights)]
        plan = _pick(rng, plan_weights)
        card = cur in CARD_CURRENCIES and rng.random() < 0.7
        left = days - day
        cancel_day = day + rng.randint(20, left) if left > 25 and rng.random() < 0.22 else None
        pause_day = day + rng.randint(35, left) if left > 45 and rng.random() < 0.06 else None
        resume_day = pause_day + rng.randint(10, 40) if pause_day and rng.random() < 0.5 else None
        change_day = day + rng.randint(25, left) if left > 40 and rng.random() < 0.12 else None
        change_to = min(3, plan + 1) if rng.random() < 0.65 or plan == 0 else plan - 1
        out.append(
            _Customer(
                index=i,
                day=day,
                currency=cur,
                country=country,
                plan=plan,
                trial=rng.random() < 0.25,
                card=card,
                late_payer=rng.random() < 0.07,
                declines_after=day + rng.randint(40, max(41, left))
                if card and left > 60 and rng.random() < 0.08
                else None,
                cancel_day=cancel_day,
                cancel_now=rng.random() < 0.4,
                pause_day=pause_day if not cancel_day or (pause_day or 0) < cancel_day else None,
                resume_day=resume_day,
                change_day=change_day if change_to != plan else None,
                change_to=change_to,
            )
        )
    _cast_roles(out, days, month_day, last_month)
    return sorted(out, key=lambda c: (c.day, c.index))


def _plain(person: _Customer, **changes: Any) -> None:
    """Give ``person`` one scripted role: nothing else random happens to it."""
    person.trial = person.late_payer = False
    person.cancel_day = person.pause_day = person.resume_day = None
    person.change_day = person.declines_after = None
    for key, value in changes.items():
        setattr(person, key, value)


def _cast_roles(people: list[_Customer], days: int, month_day: int, last_month: int) -> None:
    """However few customers, the story has every status and every analytics figure: an
    account imported PAST_DUE that still owes, a card that starts declining (FAILED
    payments, its invoices voided in the end), a fresh trial, a pause, an upgrade this
    month, a downgrade scheduled last month and applied at this month's renewal, a
    cancellation this month and a sign-up this month."""
    if len(people) < 8 or days < 70:
        return
    card = next((c for c, _, _ in CURRENCIES if c in CARD_CURRENCIES), "NGN")
    roles = people[:8]
    _plain(roles[0], day=days - 32, plan=0, late_payer=True, status="PAST_DUE")
    _plain(roles[1], day=days - 65, currency=card, country="NG", plan=1, card=True)
    roles[1].declines_after = days - 40
    _plain(roles[2], day=days - 4, plan=1, trial=True)
    _plain(roles[3], day=days - 60, plan=0, pause_day=days - 12)
    _plain(roles[4], day=days - 50, plan=0, change_day=max(month_day, days - 1), change_to=1)
    _plain(roles[5], day=last_month, plan=1, change_day=last_month + 10, change_to=0)
    _plain(roles[6], day=days - 45, plan=0, cancel_day=max(month_day, days - 1))
    roles[6].cancel_now = True
    _plain(roles[7], day=max(month_day, days - 1), plan=2)


class _Api:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.headers: dict[str, str] = {}

    async def call(
        self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201)
    ) -> Any:
        r = await self.client.request(method, path, json=body, headers=self.headers)
        if r.status_code not in ok:
            raise SeedError(f"{method} {path} answered {r.status_code}: {r.text[:300]}")
        return r.json() if r.content else None

    async def try_call(self, method: str, path: str, body: Any = None) -> Any | None:
        r = await self.client.request(method, path, json=body, headers=self.headers)
        return r.json() if r.status_code in (200, 201) else None


@dataclass
class _State:
    customers: dict[str, _Customer] = field(default_factory=dict)  # by customer id
    pay_on: dict[str, int] = field(default_factory=dict)  # invoice id -> day
    tries: dict[str, int] = field(default_factory=dict)  # invoice id -> checkouts
    counts: dict[str, int] = field(default_factory=dict)

    def bump(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


async def seed_demo(
    settings: Settings,
    *,
    name: str = DEFAULT_NAME,
    customers: int = 500,
    months: int = 12,
    seed: int = 7,
    on_progress: Callable[[int, int], None] | None = None,
) -> SeedResult:
    """Create the demo tenant ``name`` with its history, or report the existing one."""
    found = await existing_tenant(settings, name)
    if found is not None:
        return SeedResult(name=name, tenant_id=found[0], email=found[1], created=False)
    rng = random.Random(seed)
    now = SystemClock().now()
    start = (now - timedelta(days=round(months * 30.44))).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    days = (now - start).days
    clock = TestClock(start)
    quiet = settings.model_copy(update={"rate_limit": "0", "log_level": "WARNING"})
    runtime = build_runtime(quiet, clock=clock)
    queue = _DemoQueue(runtime)
    runtime.jobs = queue
    app = create_app(quiet, runtime=runtime)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    sim = _DemoPaystack(
        secret_key=paystack_sim.DEFAULT_SECRET_KEY,
        webhook_url="http://demo.local/webhooks/paystack",
        webhook_transport=transport,
        hang_seconds=0,
    )
    sim.declining = set()
    provider_factory(runtime).transports[SIM_URL] = httpx.ASGITransport(app=sim.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://demo.local") as c:
            api = _Api(c)
            result = await _run(
                api, runtime, clock, sim, queue, name, customers, days, start, rng, on_progress
            )
    finally:
        await runtime.close()
    return result


async def _run(
    api: _Api,
    runtime: Runtime,
    clock: TestClock,
    sim: _DemoPaystack,
    queue: _DemoQueue,
    name: str,
    count: int,
    days: int,
    start: datetime,
    rng: random.Random,
    on_progress: Callable[[int, int], None] | None,
) -> SeedResult:
    password = secrets.token_urlsafe(12)
    email = demo_email(name)
    reg = await api.call(
        "POST",
        "/api/auth/register",
        {"name": "Demo Owner", "email": email, "password": password, "companyName": name},
    )
    tenant_id = reg["tenant"]["id"]
    api.headers = {"Authorization": f"Bearer {reg['apiKey']}"}
    state = _State()
    cards = await _configure_paystack(api)
    plans = await _create_plans(api)
    metric_code = await _usage(api, plans)
    first_of_month = SystemClock().now().replace(day=1, hour=0, minute=0, second=0)
    first_of_last = (first_of_month - timedelta(days=1)).replace(day=1)
    month_day, last_month = (
        max(0, math.ceil((first - start).total_seconds() / 86400))
        for first in (first_of_month, first_of_last)
    )
    # days are at 09:00: a monthly plan started on the 1st of last month renews on the 1st
    people = plan_customers(count, days, rng, month_day, last_month)
    arrivals: dict[int, list[_Customer]] = {}
    for person in people:
        arrivals.setdefault(person.day, []).append(person)
    for day in range(days + 1):
        clock.set(start + timedelta(days=day) if day < days else SystemClock().now())
        for person in arrivals.get(day, []):
            await _arrive(api, person, plans, rng, state, cards)
        await _life_events(api, day, plans, sim, state)
        if metric_code and day % 14 == 3:
            await _send_usage(api, metric_code, rng, state, day)
        await run_tenant_tick(runtime, tenant_id)
        await _settle(api, queue, sim)
        await _pay_invoices(api, sim, day, rng, state, cards)
        if day % 12 == 4 or (day == days and not state.counts.get("refunds")):
            await _refund_some(api, rng, state, at_least_one=day == days)
        await _settle(api, queue, sim)
        if on_progress is not None:
            on_progress(day + 1, days + 1)
    state.counts["emailsAndWebhooksSkipped"] = queue.dropped
    return SeedResult(
        name=name,
        tenant_id=tenant_id,
        email=email,
        created=True,
        password=password,
        api_key=reg["apiKey"],
        payments_via=_payments_via(cards, state),
        counts=state.counts,
    )


def _payments_via(cards: bool, state: _State) -> str:
    if not cards:
        return "mark-paid only (the Paystack simulator could not be configured)"
    charged = (
        " and saved-card charges by the billing engine" if state.counts.get("cardsOnFile") else ""
    )
    return (
        f"Paystack simulator (hosted card checkouts{charged}) and mark-paid (bank transfer, M-Pesa)"
    )


async def _settle(api: _Api, queue: _DemoQueue, sim: _DemoPaystack) -> None:
    """Run queued jobs, let the simulator deliver its webhooks, run what they queued."""
    for _ in range(3):
        await queue.drain()
        sent = await sim.drain()
        if not sent:
            break
    await queue.drain()


async def _configure_paystack(api: _Api) -> bool:
    body = {
        "providerName": "paystack",
        "credentials": paystack_sim.sandbox_credentials(SIM_URL),
    }
    r = await api.client.post("/api/payment-providers", json=body, headers=api.headers)
    if r.status_code != 201:
        log.warning("seed.paystack_unavailable", status=r.status_code, body=r.text[:200])
        return False
    return True


async def _create_plans(api: _Api) -> list[dict[str, Any]]:
    out = []
    for spec in PLANS:
        prices = [{"currency": c, "amount": a} for c, a in dict(spec["prices"]).items()]
        out.append(
            await api.call(
                "POST",
                "/api/plans",
                {
                    "name": spec["name"],
                    "code": spec["code"],
                    "billingInterval": spec["billingInterval"],
                    "billingTiming": "IN_ADVANCE",
                    "features": [f"{spec['name']} support"],
                    "prices": prices,
                },
            )
        )
    return out


async def _usage(api: _Api, plans: list[dict[str, Any]]) -> str | None:
    """An ``api_calls`` metric priced per call on Growth (the usage feature)."""
    metric = await api.try_call(
        "POST",
        "/api/billable-metrics",
        {"name": "API calls", "code": "api_calls", "aggregationType": "COUNT"},
    )
    if metric is None:
        return None
    charge = await api.try_call(
        "POST",
        "/api/charges",
        {
            "planId": plans[1]["id"],
            "billableMetricId": metric["id"],
            "chargeModel": "STANDARD",
            "invoiceDisplayName": "API calls",
            "properties": {"amount": "0.05"},
        },
    )
    return "api_calls" if charge is not None else None


async def _arrive(
    api: _Api,
    person: _Customer,
    plans: list[dict[str, Any]],
    rng: random.Random,
    state: _State,
    cards: bool,
) -> None:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    business = f"{last} {rng.choice(COMPANY)}"
    customer = await api.call(
        "POST",
        "/api/customers",
        {
            "externalId": f"demo_{person.index:05d}",
            "email": f"{first.lower()}.{person.index}@example.com",
            "name": f"{first} {last} ({business})",
            "country": person.country,
            "currency": person.currency,
            "metadata": {"segment": rng.choice(["smb", "mid-market", "startup"])},
        },
    )
    person.id = customer["id"]
    person.card = person.card and cards
    state.customers[person.id] = person
    body: dict[str, Any] = {
        "customerId": person.id,
        "planId": plans[person.plan]["id"],
        "currency": person.currency,
    }
    if person.trial:
        body["trialDays"] = 14
    if person.status:
        body["status"] = person.status
    sub = await api.call("POST", "/api/subscriptions", body)
    person.subscription_id = sub["id"]
    state.bump("customers")
    state.bump("subscriptions")


async def _life_events(
    api: _Api, day: int, plans: list[dict[str, Any]], sim: _DemoPaystack, state: _State
) -> None:
    """Cancellations, pauses, resumes, plan changes and cards that start declining."""
    for person in state.customers.values():
        path = f"/api/subscriptions/{person.subscription_id}"
        if person.declines_after == day and person.card_code:
            sim.declining.add(person.card_code)
        if person.pause_day == day and await api.try_call("POST", f"{path}/pause"):
            state.bump("paused")
        if person.resume_day == day and await api.try_call("POST", f"{path}/resume"):
            state.bump("resumed")
        if person.change_day == day:
            body = {"newPlanId": plans[person.change_to]["id"]}
            if await api.try_call("POST", f"{path}/change-plan", body):
                state.bump("planChanges")
        if person.cancel_day == day:
            when = "now" if person.cancel_now else "period_end"
            if await api.try_call("POST", f"{path}/cancel", {"cancelAt": when}):
                state.bump("cancellations")


async def _send_usage(api: _Api, code: str, rng: random.Random, state: _State, day: int) -> None:
    for person in state.customers.values():
        if person.plan != 1 and person.change_to != 1:
            continue
        sub = person.subscription_id
        events = [
            {"transactionId": f"{sub}-{day}-{n}", "subscriptionId": sub, "code": code}
            for n in range(rng.randint(2, 12))
        ]
        if events and await api.try_call("POST", "/api/events/batch", {"events": events}):
            state.bump("usageEvents", len(events))


async def _pending(api: _Api) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        body = await api.call("GET", f"/api/invoices?status=PENDING&limit=100&page={page}")
        out.extend(body["data"])
        if page >= body["meta"]["totalPages"]:
            return out
        page += 1


async def _pay_invoices(
    api: _Api, sim: _DemoPaystack, day: int, rng: random.Random, state: _State, cards: bool
) -> None:
    """Each PENDING invoice gets a fate the first time it is seen: card customers check
    out on the simulator (first invoice; later ones are charged by the engine), others
    pay by transfer a few days later; late payers leave some unpaid (voided after 30
    days, or still pending)."""
    for invoice in await _pending(api):
        invoice_id = invoice["id"]
        person = state.customers.get(invoice["customerId"])
        if person is None or person.status == "PAST_DUE":
            continue  # the account moved in PAST_DUE still owes
        if invoice_id not in state.pay_on:
            if person.late_payer and rng.random() < 0.5:
                state.pay_on[invoice_id] = -(day + 30)  # never paid; voided then (maybe)
            else:
                state.pay_on[invoice_id] = day + (0 if person.card else rng.randint(0, 6))
        due = state.pay_on[invoice_id]
        if due < 0:
            if day >= -due and rng.random() < 0.6:
                if await api.try_call("POST", f"/api/invoices/{invoice_id}/void"):
                    state.bump("invoicesVoided")
                state.pay_on[invoice_id] = 10**9
            continue
        if day < due:
            continue
        tries = state.tries.get(invoice_id, 0)
        if person.card and cards and tries < 3:
            state.tries[invoice_id] = tries + 1
            declined = (person.declines_after is not None and day >= person.declines_after) or (
                tries == 0 and rng.random() < 0.06
            )
            if not await _card_checkout(api, sim, person, invoice_id, state, declined):
                state.pay_on[invoice_id] = day + 1  # tries again tomorrow
        elif person.declines_after is not None:
            if day >= due + 20 and await api.try_call("POST", f"/api/invoices/{invoice_id}/void"):
                state.bump("invoicesVoided")
                state.pay_on[invoice_id] = 10**9
        elif not person.card or day >= due + 3:
            method = "mpesa" if person.currency == "KES" else "bank_transfer"
            if await api.try_call(
                "POST", f"/api/invoices/{invoice_id}/mark-paid", {"paymentMethod": method}
            ):
                state.bump("paymentsManual")


async def _card_checkout(
    api: _Api,
    sim: _DemoPaystack,
    person: _Customer,
    invoice_id: str,
    state: _State,
    declined: bool,
) -> bool:
    """The customer pays on the simulator's hosted page (declined: the card is refused;
    the next checkout supersedes the attempt, which ends FAILED). After the first success
    the saved card is put on the subscription where the API allows it, so the billing
    engine charges later renewals itself."""
    out = await api.try_call(
        "POST",
        f"/api/invoices/{invoice_id}/checkout",
        {"callbackUrl": "https://shop.example/thanks"},
    )
    if out is None:
        return False
    reference = next(
        (ref for ref in reversed(sim.transactions) if ref.startswith(out["paymentId"])), None
    )
    if reference is None:
        return False
    tx = await sim.complete(reference, success=not declined)
    if declined:
        state.bump("checkoutsDeclined")
        return False
    person.card_code = tx["authorization"]["authorization_code"]
    state.bump("paymentsCheckout")
    if not person.auto:
        person.auto = True  # tried once
        methods = await api.try_call("GET", f"/api/customers/{person.id}/payment-methods")
        if methods:
            path = f"/api/subscriptions/{person.subscription_id}"
            if await api.try_call("PATCH", path, {"paymentMethodId": methods[0]["id"]}):
                state.bump("cardsOnFile")
    return True


async def _refund_some(
    api: _Api, rng: random.Random, state: _State, *, at_least_one: bool = False
) -> None:
    """Now and then a goodwill refund, partial or full, of a recent payment. With
    ``at_least_one`` (the story's last day, when none happened: a few customers over a few
    months draw no refund on some days), tries until one is made: net revenue always has
    refunds to show."""
    body = await api.call("GET", "/api/payments?status=SUCCEEDED&limit=50")
    cheap = sorted(body["data"], key=lambda p: float(p["amount"]))[: len(body["data"]) // 2 + 1]
    tries = max(1, len(state.customers) // 100)
    while cheap:
        owed = at_least_one and not state.counts.get("refunds")
        if tries <= 0 and not owed:
            break
        tries -= 1
        if rng.random() < 0.6 and not owed:
            continue
        payment = cheap.pop(rng.randrange(len(cheap)))
        amount = float(payment["amount"])
        refund: dict[str, Any] = {"reason": rng.choice(["goodwill", "duplicate", "downtime"])}
        if rng.random() < 0.5:
            refund["amount"] = round(amount / 2, 2)
        if await api.try_call("POST", f"/api/payments/{payment['id']}/refund", refund):
            state.bump("refunds")
