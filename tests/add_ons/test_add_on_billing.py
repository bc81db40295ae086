"""Add-ons on subscription invoices (contract add-ons.md "Billing rule"): pending ones in
the invoice currency billed once, after coupons (not discounted) and before taxes, marked
with the invoice in its transaction; one bound to a subscription waits for that
subscription's invoice; on a TestClock, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from novabilling.billing.tick import run_tenant_tick
from tests.billing.support import Api, clocked_runtime, invoices_of
from tests.conftest import Backend, assert_error

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


def _lines(invoice: Any) -> list[tuple[str, str, int | float]]:
    return [(i["type"], i["description"], i["amount"]) for i in invoice.metadata_["items"]]


async def test_billed_once_in_currency_and_subscription(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        h = api.creds.key_headers
        plan = await api.plan("MONTHLY", "IN_ARREARS", {"USD": 20, "KES": 500})
        cust = (await api.customer())["id"]
        a = await api.post(
            "/api/add-ons",
            {
                "name": "Setup",
                "code": "setup",
                "invoiceDisplayName": "Setup fee",
                "prices": [{"currency": "USD", "amount": "15.25"}],
            },
        )
        b = await api.post(
            "/api/add-ons",
            {
                "name": "Training",
                "code": "training",
                "prices": [{"currency": "KES", "amount": 700}],
            },
        )
        gone = await api.post(
            "/api/add-ons",
            {"name": "Gone", "code": "gone", "prices": [{"currency": "USD", "amount": 1}]},
        )
        usd = await api.subscription(cust, plan["id"], "USD")
        kes = await api.subscription(cust, plan["id"], "KES")
        ten = await api.post(
            "/api/coupons",
            {"code": "TEN", "name": "Ten", "discountType": "PERCENTAGE", "discountValue": 10},
        )
        await api.post("/api/coupons/apply", {"couponId": ten["id"], "customerId": cust})

        async def apply(add_on: Any, currency: str, **extra: Any) -> Any:
            body = {"addOnId": add_on["id"], "customerId": cust, "currency": currency, **extra}
            return await api.post("/api/add-ons/apply", body)

        setup = await apply(a, "USD")  # the add-on's price: 15.25
        training = await apply(b, "KES", subscriptionId=kes["id"])
        later = await apply(
            gone, "USD", amount=3, subscriptionId=kes["id"]
        )  # USD on a KES sub: waits
        odd = await apply(gone, "USD", amount="0.5")
        await client.delete(f"/api/add-ons/{gone['id']}", headers=h)

        clock.set(datetime(2026, 3, 1, tzinfo=UTC))
        await run_tenant_tick(runtime, api.creds.id)
        invoices = {i.subscription_id: i for i in await invoices_of(runtime, api.creds.id)}
        usd_invoice, kes_invoice = invoices[usd["id"]], invoices[kes["id"]]
        # 20.00 - 10 % (2.00, on the plan fee only) + 15.25 + 0.50 (add-on deleted: original text)
        assert _lines(usd_invoice)[1:] == [
            ("coupon", "Coupon: TEN (10%)", -2),
            ("add_on", "Setup fee", 15.25),
            ("add_on", f"Add-on charge ({gone['id']})", 0.5),
        ]
        assert usd_invoice.total_minor == 2000 - 200 + 1525 + 50
        assert _lines(kes_invoice)[1:] == [
            ("coupon", "Coupon: TEN (10%)", -50),
            ("add_on", "Training", 700),
        ]
        assert kes_invoice.total_minor == 50000 - 5000 + 70000

        r = await client.get(
            f"/api/add-ons/applied/list?customerId={cust}&invoiced=true", headers=h
        )
        billed = {x["id"]: x["invoiceId"] for x in r.json()["data"]}
        assert billed == {
            setup["id"]: usd_invoice.id,
            odd["id"]: usd_invoice.id,
            training["id"]: kes_invoice.id,
        }
        r = await client.get("/api/add-ons/applied/list?invoiced=false", headers=h)
        assert [x["id"] for x in r.json()["data"]] == [later["id"]]
        r = await client.delete(f"/api/add-ons/applied/{setup['id']}", headers=h)
        assert_error(r, 400)
        assert r.json()["message"] == "Cannot remove an add-on that has already been invoiced"

        clock.set(datetime(2026, 4, 1, tzinfo=UTC))
        await run_tenant_tick(runtime, api.creds.id)
        latest = max(
            (i for i in await invoices_of(runtime, api.creds.id) if i.subscription_id == usd["id"]),
            key=lambda i: i.invoice_number,
        )
        assert [t for t, _, _ in _lines(latest)] == ["plan", "coupon"]  # billed once
