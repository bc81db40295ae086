"""Taxes on subscription invoices (contract taxes.md, invoice-composition.md step 6): the
plan -> customer -> default precedence, one line per tax on the same base, charge taxes
per group (Improve), ``taxAmount`` in the metadata, the invoice and its PDF."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

from pypdf import PdfReader
from sqlalchemy import select

from novabilling.billing.tick import run_tenant_tick
from novabilling.invoices import builder
from novabilling.invoices.documents import invoice_view
from novabilling.invoices.models import Invoice, InvoiceLine
from novabilling.invoices.pdf import render_invoice_pdf
from tests.billing.support import Api, clocked_runtime, invoices_of
from tests.conftest import Backend
from tests.usage.support import UsageApi

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
PERIOD = (T0, datetime(2026, 2, 28, 9, 0, tzinfo=UTC))
VAT = builder.TaxRate("VAT", Decimal("7.5"), id="t_vat")
LEVY = builder.TaxRate("Levy", Decimal("2.25"), id="t_levy")
DATA = builder.TaxRate("Data tax", Decimal("5"), id="t_data")


def _inputs(**extra: object) -> builder.Inputs:
    return builder.Inputs(
        customer_id="c1",
        currency="USD",
        now=T0,
        terms=builder.Terms(net_days=30),
        subscription_id="s1",
        plan=builder.Plan("Pro", "MONTHLY", "IN_ARREARS", 10_000),
        period=PERIOD,
        fee_period=PERIOD,
        **extra,  # type: ignore[arg-type]
    )


def _usage(charge_id: str, amount: int) -> builder.UsageCharge:
    return builder.UsageCharge(charge_id, f"Usage {charge_id}", 1, amount, PERIOD)


def _taxes(draft: builder.Draft) -> list[tuple[str, int]]:
    return [(line.description, line.amount_minor) for line in draft.lines if line.type == "tax"]


def test_every_tax_on_the_same_base_without_tax_on_tax() -> None:
    draft = builder.build(_inputs(taxes=(VAT, LEVY)))
    # 100.00 x 7.5 % = 7.50; 100.00 x 2.25 % = 2.25 (not on 107.50)
    assert _taxes(draft) == [("Tax: VAT (7.5%)", 750), ("Tax: Levy (2.25%)", 225)]
    assert (draft.tax_minor, draft.subtotal_minor, draft.total_minor) == (975, 10_000, 10_975)
    assert draft.metadata["taxAmount"] == 9.75


def test_tax_rounds_half_up_once_per_line() -> None:
    odd = builder.Plan("Odd", "MONTHLY", "IN_ARREARS", 1_234)
    draft = builder.build(
        builder.Inputs(
            customer_id="c1",
            currency="USD",
            now=T0,
            terms=builder.Terms(net_days=30),
            subscription_id="s1",
            plan=odd,
            period=PERIOD,
            fee_period=PERIOD,
            taxes=(VAT,),
        )
    )
    # 1234 x 7.5 / 100 = 92.55 minor units -> 93 (half-up)
    assert _taxes(draft) == [("Tax: VAT (7.5%)", 93)]


def test_a_negative_total_is_taxed_on_zero() -> None:
    credit = builder.PendingLine("p1", "proration_credit", "Unused time", -15_000)
    draft = builder.build(_inputs(taxes=(VAT,), pending=(credit,)))
    assert _taxes(draft) == [("Tax: VAT (7.5%)", 0)]
    assert draft.tax_minor == 0 and draft.total_minor == 0


def test_charge_taxes_tax_their_usage_group() -> None:
    """Plan fee 100.00, usage A 30.00 (its own taxes: Data tax 5 % and VAT), usage B 20.00,
    a 10 % coupon, an add-on 5.00; general taxes VAT 7.5 % and Levy 2.25 %.

    Coupon base B = 150.00, discount 15.00; A's share = 15.00 x 30 / 150 = 3.00, so A's
    base is 27.00; general = total 140.00 - 27.00 = 113.00 (fee, usage B, add-on, the
    rest of the discount). VAT taxes both groups: (113.00 + 27.00) x 7.5 % = 10.50;
    Levy: 113.00 x 2.25 % = 2.5425 -> 2.54; Data tax: 27.00 x 5 % = 1.35."""
    draft = builder.build(
        _inputs(
            usage=(_usage("ch_a", 3_000), _usage("ch_b", 2_000)),
            discounts=(builder.Discount("TEN", "PERCENTAGE", Decimal(10)),),
            add_ons=(builder.AddOnCharge("addon_1", 500),),
            taxes=(VAT, LEVY),
            charge_taxes=(builder.ChargeTaxes("ch_a", (DATA, VAT)),),
        )
    )
    assert _taxes(draft) == [
        ("Tax: VAT (7.5%)", 1_050),
        ("Tax: Levy (2.25%)", 254),
        ("Tax: Data tax (5%)", 135),
    ]
    assert (draft.subtotal_minor, draft.tax_minor, draft.total_minor) == (14_000, 1_439, 15_439)


async def _lines(runtime: object, tid: str, invoice: Invoice) -> list[tuple[str, str, int]]:
    maker = await runtime.engines.sessionmaker(tid)  # type: ignore[attr-defined]
    async with maker() as session:
        rows = await session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice.id)
            .order_by(InvoiceLine.position)
        )
        return [(r.type, r.description, r.amount_minor) for r in rows.all()]


async def _invoices(runtime: object, tid: str, customer_id: str) -> list[Invoice]:
    maker = await runtime.engines.sessionmaker(tid)  # type: ignore[attr-defined]
    async with maker() as session:
        rows = await session.scalars(
            select(Invoice)
            .where(Invoice.customer_id == customer_id)
            .order_by(Invoice.invoice_number)
        )
        return list(rows.all())


async def test_precedence_on_subscription_invoices_and_pdf(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _queue):
        api = await Api.new_tenant(client)
        tid = api.creds.id

        async def tax(name: str, code: str, rate: str, default: bool = False) -> str:
            body = {"name": name, "code": code, "rate": rate, "appliedByDefault": default}
            return str((await api.post("/api/taxes", body))["id"])

        default = await tax("Default", "default_tax", "10", default=True)
        state = await tax("State", "state", "5")
        vat = await tax("VAT", "vat", "7.5")
        levy = await tax("Levy", "levy", "2.25")
        assert default
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "100"})
        with_own = await api.customer()
        plain = await api.customer()
        await api.post(f"/api/taxes/customer/{with_own['id']}", {"taxId": state})
        await api.subscription(with_own["id"], plan["id"], "USD")
        await api.subscription(plain["id"], plan["id"], "USD")

        # opening invoices: the customer's taxes, else the default ones
        [first_own] = await _invoices(runtime, tid, with_own["id"])
        [first_plain] = await _invoices(runtime, tid, plain["id"])
        assert (first_own.tax_minor, first_own.total_minor) == (500, 10_500)
        assert (first_plain.tax_minor, first_plain.total_minor) == (1_000, 11_000)
        assert first_own.metadata_ and first_own.metadata_["taxAmount"] == 5

        # the plan's taxes win over the customer's at the renewal
        for tax_id in (vat, levy):
            await api.post(f"/api/taxes/plan/{plan['id']}", {"taxId": tax_id})
        clock.set(datetime(2026, 3, 1, tzinfo=UTC))
        await run_tenant_tick(runtime, tid)
        _, renewal = await _invoices(runtime, tid, with_own["id"])
        lines = await _lines(runtime, tid, renewal)
        assert [(t, d, a) for t, d, a in lines if t == "tax"] == [
            ("tax", "Tax: VAT (7.5%)", 750),
            ("tax", "Tax: Levy (2.25%)", 225),
        ]
        assert (renewal.subtotal_minor, renewal.tax_minor, renewal.total_minor) == (
            10_000,
            975,
            10_975,
        )
        assert renewal.metadata_ and renewal.metadata_["taxAmount"] == 9.75
        wire = (
            await client.get(f"/api/invoices/{renewal.id}", headers=api.creds.key_headers)
        ).json()
        assert wire["amount"] == "109.75" and wire["metadata"]["taxAmount"] == 9.75
        assert [i["amount"] for i in wire["metadata"]["items"] if i["type"] == "tax"] == [
            7.5,
            2.25,
        ]

        maker = await runtime.engines.sessionmaker(tid)
        async with maker() as session:
            view, _ = await invoice_view(session, renewal, await runtime.tenant_profiles.get(tid))
        reader = PdfReader(io.BytesIO(render_invoice_pdf(view, created_at=T0)))
        text = "\n".join(page.extract_text() for page in reader.pages)
        for expected in ("Tax: VAT (7.5%)", "Tax: Levy (2.25%)", "Tax", "9.75", "109.75"):
            assert expected in text, text


async def test_charge_taxes_on_a_renewal_with_usage(backend: Backend) -> None:
    """Plan fee 10.00 (IN_ARREARS), 4 API calls at 0.75 = 3.00 of usage. The plan's VAT
    10 % taxes the general group (the fee): 1.00; the calls charge has its own Data tax
    5 %: 3.00 x 5 % = 0.15 (not VAT: a charge with taxes is taxed with exactly those)."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    async with clocked_runtime(backend.settings, start) as (runtime, clock, client, _queue):
        api = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        tid = api.creds.id
        plan = await use.plan(prices={"USD": 10})
        calls = await use.metric("COUNT", name="API calls", code="calls")
        charge = await use.charge(plan["id"], calls["id"], "STANDARD", properties={"amount": 0.75})
        vat = await api.post("/api/taxes", {"name": "VAT", "code": "vat", "rate": 10})
        data = await api.post("/api/taxes", {"name": "Data tax", "code": "data", "rate": 5})
        await api.post(f"/api/taxes/plan/{plan['id']}", {"taxId": vat["id"]})
        await api.post(f"/api/taxes/charge/{charge['id']}", {"taxId": data["id"]})
        sub = (await use.subscription(plan["id"]))["id"]
        for day in (2, 3, 4, 5):
            clock.set(datetime(2026, 3, day, 13, tzinfo=UTC))
            when = datetime(2026, 3, day, 12, tzinfo=UTC).isoformat()
            await use.event(sub, "calls", timestamp=when)
        clock.set(datetime(2026, 4, 1, 1, tzinfo=UTC))
        for _ in range(2):
            await run_tenant_tick(runtime, tid)
        [invoice] = [i for i in await invoices_of(runtime, tid) if i.subscription_id == sub]
        assert invoice.metadata_ is not None
        items = [(i["type"], i["description"], i["amount"]) for i in invoice.metadata_["items"]]
        assert [i for i in items if i[0] == "tax"] == [
            ("tax", "Tax: VAT (10%)", 1),
            ("tax", "Tax: Data tax (5%)", 0.15),
        ]
        assert (invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor) == (
            1_300,
            115,
            1_415,
        )
