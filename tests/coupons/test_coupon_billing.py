"""Coupons on subscription invoices (contract coupons.md "Billing rule"): every discount
on the same base, limited uses consumed with the invoice (deleted at 0), fixed amounts in
another currency, expired and subscription-bound coupons skipped; on a TestClock, SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from novabilling.billing.tick import run_tenant_tick
from tests.billing.support import Api, clocked_runtime, invoices_of
from tests.conftest import Backend

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


def _lines(invoice: Any) -> list[tuple[str, str, int | float]]:
    return [(i["type"], i["description"], i["amount"]) for i in invoice.metadata_["items"]]


async def test_discounts_uses_and_skips(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        h = api.creds.key_headers
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "99.99"})
        cust = (await api.customer())["id"]

        async def coupon(code: str, kind: str, value: Any, **extra: Any) -> str:
            body = {"code": code, "name": code, "discountType": kind, "discountValue": value}
            return str((await api.post("/api/coupons", {**body, **extra}))["id"])

        async def apply(coupon_id: str, **extra: Any) -> Any:
            return await api.post(
                "/api/coupons/apply", {"couponId": coupon_id, "customerId": cust, **extra}
            )

        ten = await apply(await coupon("TEN", "PERCENTAGE", "12.5"), usesRemaining=2)
        await apply(await coupon("FIVE", "FIXED_AMOUNT", 5, currency="USD"))
        await apply(await coupon("EURO", "FIXED_AMOUNT", 7, currency="EUR"))
        late = await coupon(
            "LATE", "PERCENTAGE", 50, expiresAt=(T0 + timedelta(days=20)).isoformat()
        )
        await apply(late)
        clock.advance(timedelta(minutes=1))
        sub = await api.subscription(cust, plan["id"], "USD")
        other = await api.subscription(
            cust, (await api.plan("MONTHLY", "IN_ARREARS", {"USD": 1}))["id"], "USD"
        )
        await apply(
            await coupon("ONLY", "FIXED_AMOUNT", 1, currency="USD"), subscriptionId=other["id"]
        )

        [first] = [
            i for i in await invoices_of(runtime, api.creds.id) if i.subscription_id == sub["id"]
        ]
        # B = 99.99: 12.5 % = 12.49875 -> 12.50 (half-up); 50 % = 49.995 -> 50.00; 5.00;
        # EURO (another currency) and ONLY (another subscription) give nothing
        assert _lines(first)[1:] == [
            ("coupon", "Coupon: TEN (12.5%)", -12.5),
            ("coupon", "Coupon: FIVE (-5)", -5),
            ("coupon", "Coupon: LATE (50%)", -50),
        ]
        assert first.total_minor == 9999 - 1250 - 500 - 5000
        r = await client.get(f"/api/coupons/{ten['couponId']}", headers=h)
        assert r.json()["appliedCoupons"][0]["usesRemaining"] == 1

        clock.set(datetime(2026, 3, 1, tzinfo=UTC))  # LATE expired on Feb 20
        await run_tenant_tick(runtime, api.creds.id)
        second = max(
            (i for i in await invoices_of(runtime, api.creds.id) if i.subscription_id == sub["id"]),
            key=lambda i: i.invoice_number,
        )
        assert [d for t, d, _ in _lines(second) if t == "coupon"] == [
            "Coupon: TEN (12.5%)",
            "Coupon: FIVE (-5)",
        ]
        assert second.total_minor == 9999 - 1250 - 500
        # TEN's last use: the application is gone, the coupon's redemptionCount stays
        r = await client.get(f"/api/coupons/{ten['couponId']}", headers=h)
        assert r.json()["_count"] == {"appliedCoupons": 0} and r.json()["redemptionCount"] == 1
        [other_invoice] = [
            i for i in await invoices_of(runtime, api.creds.id) if i.subscription_id == other["id"]
        ]
        # 1.00 IN_ARREARS: FIVE (customer-wide) and ONLY: 1 - 5 - 1 -> clamped at 0
        assert [d for t, d, _ in _lines(other_invoice) if t == "coupon"] == [
            "Coupon: FIVE (-5)",
            "Coupon: ONLY (-1)",
        ]
        assert other_invoice.total_minor == 0

        clock.set(datetime(2026, 4, 1, tzinfo=UTC))
        await run_tenant_tick(runtime, api.creds.id)
        third = max(
            (i for i in await invoices_of(runtime, api.creds.id) if i.subscription_id == sub["id"]),
            key=lambda i: i.invoice_number,
        )
        assert [d for t, d, _ in _lines(third) if t == "coupon"] == ["Coupon: FIVE (-5)"]
        assert third.total_minor == 9499
