"""One subscription invoice made of everything (issue 11, "Show at the end"): plan fee +
usage + minimum-commitment true-up + two coupons + an add-on + two taxes + two wallets,
through the API and the tenant tick, checked line by line against numbers worked out by
hand below, and the same numbers in its PDF text; SQLite and PostgreSQL.

    plan fee (IN_ARREARS, March)            20.00
    usage: 300 calls x 0.05                 15.00
    minimum commitment 60 - (20 + 15)       25.00   -> coupon base B = 60.00
    coupon PCT 12.5 % of B                  -7.50
    coupon FIX 4.99 USD                     -4.99
    add-on Setup (its USD price)            10.00   -> taxed base 57.51
    tax VAT 7.5 % of 57.51 = 4.313250        4.31
    tax Levy 2.25 % of 57.51 = 1.293975      1.29   -> 63.11
    wallets, oldest first: W1 20 credits x 1 = 20.00, W2 8 credits x 2.5 = 20.00
    prepaid credits applied                -40.00   -> amount 23.11
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from pypdf import PdfReader

from novabilling.billing.tick import run_tenant_tick
from novabilling.invoices.documents import invoice_view
from novabilling.invoices.pdf import render_invoice_pdf
from tests.billing.support import Api, clocked_runtime, invoices_of
from tests.conftest import Backend
from tests.usage.support import UsageApi

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def test_everything_on_one_invoice(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, _queue):
        api = await Api.new_tenant(client)
        use = UsageApi(client, api.creds)
        tid = api.creds.id
        plan = await use.plan(timing="IN_ARREARS", prices={"USD": 20})
        calls = await use.metric("SUM", name="Calls", code="calls")
        await use.charge(plan["id"], calls["id"], "STANDARD", properties={"amount": "0.05"})
        cust = (await use.customer())["id"]
        await use.post(
            "/api/plan-overrides",
            {"customerId": cust, "planId": plan["id"], "overriddenMinimumCommitment": 60},
        )
        for name, code, rate in (("VAT", "vat", "7.5"), ("Levy", "levy", "2.25")):
            body = {"name": name, "code": code, "rate": rate, "appliedByDefault": True}
            await use.post("/api/taxes", body)
        sub = (await use.subscription(plan["id"], customer_id=cust))["id"]
        for code, kind, value in (("PCT", "PERCENTAGE", "12.5"), ("FIX", "FIXED_AMOUNT", "4.99")):
            coupon = await use.post(
                "/api/coupons",
                {"code": code, "name": code, "discountType": kind, "discountValue": value}
                | ({"currency": "USD"} if kind == "FIXED_AMOUNT" else {}),
            )
            await use.post("/api/coupons/apply", {"couponId": coupon["id"], "customerId": cust})
        setup = await use.post(
            "/api/add-ons",
            {"name": "Setup", "code": "setup", "prices": [{"currency": "USD", "amount": 10}]},
        )
        await use.post(
            "/api/add-ons/apply", {"addOnId": setup["id"], "customerId": cust, "currency": "USD"}
        )
        w1 = await use.post(
            "/api/wallets", {"customerId": cust, "currency": "USD", "grantedCredits": 20}
        )
        clock.advance(timedelta(minutes=1))
        w2 = await use.post(
            "/api/wallets",
            {"customerId": cust, "currency": "USD", "grantedCredits": 8, "rateAmount": "2.5"},
        )
        clock.set(datetime(2026, 3, 10, tzinfo=UTC))
        await use.event(sub, "calls", properties={"value": 300})

        clock.set(datetime(2026, 4, 1, 0, 1, tzinfo=UTC))
        for _ in range(2):
            await run_tenant_tick(runtime, tid)
        [invoice] = await invoices_of(runtime, tid)
        assert invoice.metadata_ is not None
        items = [(i["type"], i["description"], i["amount"]) for i in invoice.metadata_["items"]]
        assert items == [
            ("plan", "Metered (monthly)", 20),
            ("usage", "Calls (300 units)", 15),
            ("minimum_commitment", "Minimum commitment true-up", 25),
            ("coupon", "Coupon: PCT (12.5%)", -7.5),
            ("coupon", "Coupon: FIX (-4.99)", -4.99),
            ("add_on", "Setup", 10),
            ("tax", "Tax: VAT (7.5%)", 4.31),
            ("tax", "Tax: Levy (2.25%)", 1.29),
            ("wallet_credit", "Prepaid credits applied", -40),
        ]
        assert (invoice.tax_minor, invoice.total_minor, invoice.status) == (560, 2311, "PENDING")
        assert invoice.metadata_["taxAmount"] == 5.6
        assert invoice.metadata_["prepaidCreditAmount"] == 40
        wire = (
            await client.get(f"/api/invoices/{invoice.id}", headers=api.creds.key_headers)
        ).json()
        assert wire["amount"] == "23.11"
        for wallet in (w1, w2):
            got = (
                await client.get(f"/api/wallets/{wallet['id']}", headers=api.creds.key_headers)
            ).json()
            assert (got["creditsBalance"], got["consumedAmount"]) == ("0", "20")

        maker = await runtime.engines.sessionmaker(tid)
        async with maker() as session:
            view, _ = await invoice_view(session, invoice, await runtime.tenant_profiles.get(tid))
        reader = PdfReader(io.BytesIO(render_invoice_pdf(view, created_at=T0)))
        text = "\n".join(page.extract_text() for page in reader.pages)
        for expected in (
            "Calls (300 units)",
            "Minimum commitment true-up",
            "Coupon: PCT (12.5%)",
            "Coupon: FIX (-4.99)",
            "Setup",
            "Tax: VAT (7.5%)",
            "Tax: Levy (2.25%)",
            "Prepaid credits applied",
            "15.00",
            "25.00",
            "7.50",
            "4.99",
            "10.00",
            "4.31",
            "1.29",
            "40.00",
            "23.11",
        ):
            assert expected in text, (expected, text)
