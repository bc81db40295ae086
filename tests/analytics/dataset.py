"""A fixed tenant data set for the analytics tests, written straight into the tenant's own
database (real rows through the ORM: exact timestamps, statuses and plan changes that the
API would take weeks of clock time to produce).

"Now" is ``NOW`` (2026-03-15 12:00 UTC): "this month" is March 2026. Every expected
figure in ``test_analytics_figures.py`` is worked out by hand from the tables below with
the contract's default rates (NGN 1550, KES 153, UGX 3750, EUR 0.92 per USD).

Plans (minor units): Basic MONTHLY USD 10 / NGN 15,500 / KES 1,530; Pro MONTHLY USD 30 /
NGN 46,500; Annual YEARLY USD 120 / UGX 450,000; Weekly WEEKLY USD 3; Quarterly
QUARTERLY EUR 27.60.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from novabilling.customers.models import Customer
from novabilling.invoices.models import CreditNote, Invoice
from novabilling.payments.models import Payment
from novabilling.plans.models import Plan, PlanPrice
from novabilling.runtime import Runtime
from novabilling.subscriptions.models import Subscription

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    """``"2026-03-02"`` (noon) or ``"2026-03-02T00:00"`` as an aware UTC instant."""
    if "T" not in text:
        text += "T12:00"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


PLANS = {  # id: (name, interval, {currency: minor})
    "pl_basic": ("Basic", "MONTHLY", {"USD": 1000, "NGN": 1_550_000, "KES": 153_000}),
    "pl_pro": ("Pro", "MONTHLY", {"USD": 3000, "NGN": 4_650_000}),
    "pl_annual": ("Annual", "YEARLY", {"USD": 12000, "UGX": 450_000}),
    "pl_weekly": ("Weekly", "WEEKLY", {"USD": 300}),
    "pl_quarter": ("Quarterly", "QUARTERLY", {"EUR": 2760}),
}

CUSTOMERS = {
    "c1": "2025-10-01",
    "c2": "2026-03-02",
    "c3": "2025-11-15",
    "c4": "2026-01-05",
    "c5": "2025-06-01",
    "c6": "2026-02-01",
    "c7": "2026-01-10",
    "c8": "2025-10-15",
    "c9": "2026-01-18",
    "c10": "2026-02-14",
}

# id: customer, plan, currency, status, created, canceled, previous plan, updated
SUBSCRIPTIONS: dict[str, tuple[str, str, str, str, str, str | None, str | None, str | None]] = {
    "s1": ("c1", "pl_basic", "USD", "ACTIVE", "2025-10-05", None, None, None),
    "s2": ("c2", "pl_basic", "NGN", "ACTIVE", "2026-03-03", None, None, None),
    "s3": ("c3", "pl_pro", "USD", "ACTIVE", "2025-12-01", None, "pl_basic", "2026-03-10"),
    "s4": ("c4", "pl_basic", "NGN", "ACTIVE", "2026-01-10", None, "pl_pro", "2026-03-05"),
    "s5": ("c5", "pl_annual", "UGX", "ACTIVE", "2025-06-20", None, None, None),
    "s6": ("c6", "pl_weekly", "USD", "ACTIVE", "2026-02-01", None, None, None),
    "s7": ("c7", "pl_quarter", "EUR", "ACTIVE", "2026-01-15", None, None, None),
    "s8": ("c1", "pl_pro", "USD", "CANCELED", "2025-11-01T00:00", "2026-03-02T00:00", None, None),
    "s9": ("c8", "pl_basic", "KES", "CANCELED", "2025-10-20", "2026-01-10", None, None),
    "s10": ("c2", "pl_basic", "USD", "TRIALING", "2026-03-12T10:00", None, None, None),
    "s11": ("c3", "pl_basic", "USD", "PAUSED", "2025-12-20", None, None, None),
    "s12": ("c8", "pl_pro", "USD", "ACTIVE", "2025-12-05", None, "pl_basic", "2026-02-20"),
    "s13": ("c7", "pl_basic", "GHS", "ACTIVE", "2026-03-01T00:00", None, None, None),  # no price
    "s14": ("c9", "pl_basic", "USD", "CANCELED", "2026-01-20", "2026-02-10", None, None),
    "s15": ("c10", "pl_pro", "USD", "PAUSED", "2026-02-15", None, None, None),
    "s16": (
        "c5",
        "pl_weekly",
        "USD",
        "CANCELED",
        "2026-03-14T20:00",
        "2026-03-15T02:00",
        None,
        None,
    ),
}

# id: customer, subscription, currency, minor, status, created, paid
INVOICES: dict[str, tuple[str, str | None, str, int, str, str, str | None]] = {
    "i1": ("c1", "s1", "USD", 1000, "PAID", "2026-01-01", "2026-01-05"),
    "i2": ("c1", "s1", "USD", 1000, "PAID", "2026-02-01", "2026-02-05"),
    "i3": ("c2", "s2", "NGN", 1_550_000, "PAID", "2026-03-03", "2026-03-04"),
    "i4": ("c5", "s5", "UGX", 450_000, "PAID", "2025-06-20", "2025-06-21"),
    "i5": ("c3", "s3", "USD", 3000, "PENDING", "2026-03-10", None),
    "i6": ("c7", "s7", "EUR", 2760, "PAID", "2026-01-15", "2026-01-16"),
    "i7": ("c1", "s8", "USD", 3000, "PAID", "2025-11-01", "2025-11-02"),
    "i8": ("c4", "s4", "NGN", 4_650_000, "CANCELED", "2026-01-10", None),
    "i9": ("c6", None, "USD", 555, "PAID", "2026-02-10", "2026-02-10"),  # manual
    "i10": ("c8", "s9", "KES", 153_000, "PAID", "2025-10-20", "2025-10-21"),
}

# id: invoice, provider, status, created, refunded minor
PAYMENTS: dict[str, tuple[str, str, str, str, int]] = {
    "p1": ("i1", "stripe", "SUCCEEDED", "2026-01-05", 0),
    "p2": ("i2", "stripe", "SUCCEEDED", "2026-02-05", 0),
    "p3": ("i3", "paystack", "SUCCEEDED", "2026-03-04", 0),
    "p4": ("i5", "stripe", "FAILED", "2026-03-10", 0),
    "p5": ("i5", "stripe", "PROCESSING", "2026-03-11", 0),
    "p6": ("i7", "stripe", "REFUNDED", "2025-11-02", 1000),  # partly refunded
    "p7": ("i6", "paystack", "REFUNDED", "2026-01-16", 2760),
    "p8": ("i4", "flutterwave", "SUCCEEDED", "2025-06-21", 0),
    "p9": ("i9", "manual", "SUCCEEDED", "2026-02-10", 0),
    "p10": ("i10", "mpesa", "PENDING", "2025-10-21", 0),
}

# id: invoice, currency, minor, status, created
CREDIT_NOTES: dict[str, tuple[str, str, int, str, str]] = {
    "cn1": ("i3", "NGN", 155_000, "FINALIZED", "2026-03-05"),
    "cn2": ("i1", "USD", 250, "DRAFT", "2026-01-06"),
    "cn3": ("i2", "USD", 125, "FINALIZED", "2026-02-06"),
    "cn4": ("i1", "USD", 300, "VOIDED", "2026-01-07"),
}


def _plans() -> list[Any]:
    rows: list[Any] = []
    created = at("2025-01-01")
    for plan_id, (name, interval, prices) in PLANS.items():
        rows.append(
            Plan(
                id=plan_id,
                name=name,
                code=plan_id,
                billing_interval=interval,
                billing_timing="IN_ADVANCE",
                features=[],
                is_active=True,
                invoice_grace_period_days=0,
                created_at=created,
                updated_at=created,
            )
        )
        rows.extend(
            PlanPrice(
                plan_id=plan_id,
                currency=currency,
                amount_minor=minor,
                is_active=True,
                created_at=created,
                updated_at=created,
            )
            for currency, minor in prices.items()
        )
    return rows


def _subscription(sub_id: str) -> Subscription:
    customer, plan, currency, status, created, canceled, previous, updated = SUBSCRIPTIONS[sub_id]
    start = at(created)
    name, interval, prices = PLANS[plan]
    return Subscription(
        id=sub_id,
        customer_id=customer,
        plan_id=plan,
        previous_plan_id=previous,
        status=status,
        currency=currency,
        amount_minor=prices.get(currency, 0),
        billing_interval=interval,
        billing_timing="IN_ADVANCE",
        billing_anchor=start,
        current_period_start=start,
        current_period_end=NOW,
        canceled_at=at(canceled) if canceled else None,
        ended_at=at(canceled) if canceled else None,
        started_at=start,
        created_at=start,
        updated_at=at(updated or canceled or created),
    )


def rows() -> list[Any]:
    out: list[Any] = _plans()
    out += [
        Customer(
            id=cid,
            external_id=f"ext_{cid}",
            email=f"{cid}@test.local",
            name=f"Customer {cid}",
            currency="USD",
            created_at=at(created),
            updated_at=at(created),
        )
        for cid, created in CUSTOMERS.items()
    ]
    out += [_subscription(sub_id) for sub_id in SUBSCRIPTIONS]
    for iid, (cid, sid, currency, minor, status, created, paid) in INVOICES.items():
        out.append(
            Invoice(
                id=iid,
                customer_id=cid,
                subscription_id=sid,
                invoice_number=f"INV-{iid}",
                status=status,
                currency=currency,
                subtotal_minor=minor,
                tax_minor=0,
                total_minor=minor,
                due_date=at(created),
                paid_at=at(paid) if paid else None,
                created_at=at(created),
                updated_at=at(paid or created),
            )
        )
    for pid, (iid, provider, status, created, refunded) in PAYMENTS.items():
        invoice = INVOICES[iid]
        out.append(
            Payment(
                id=pid,
                invoice_id=iid,
                customer_id=invoice[0],
                provider=provider,
                amount_minor=invoice[3],
                currency=invoice[2],
                status=status,
                refunded_minor=refunded,
                created_at=at(created),
                updated_at=at(created),
            )
        )
    for nid, (iid, currency, minor, status, created) in CREDIT_NOTES.items():
        out.append(
            CreditNote(
                id=nid,
                invoice_id=iid,
                customer_id=INVOICES[iid][0],
                amount_minor=minor,
                currency=currency,
                reason="OTHER",
                status=status,
                metadata_=None,
                created_at=at(created),
                updated_at=at(created),
            )
        )
    return out


async def load(runtime: Runtime, tenant_id: str) -> None:
    """Write the data set into the tenant's database (plans first: foreign keys)."""
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        everything = rows()
        for kind in (Plan, PlanPrice, Customer, Subscription, Invoice, Payment, CreditNote):
            session.add_all([row for row in everything if isinstance(row, kind)])
            await session.flush()
        await session.commit()
