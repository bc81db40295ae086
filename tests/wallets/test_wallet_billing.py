"""Wallet credits on subscription invoices (contract invoice-composition.md step 9) and
wallet expiry through the billing tick, on a TestClock; concurrent invoices of one
customer never overdraw a wallet (PostgreSQL, real concurrency)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from novabilling.billing import renewals
from novabilling.billing.tick import run_tenant_tick
from novabilling.config import Settings
from novabilling.kit.jobs import job_buffer
from novabilling.wallets.models import Wallet, WalletTransaction
from tests.billing.support import Api, clocked_runtime, invoices_of
from tests.conftest import Backend
from tests.webhooks.helpers import point_webhooks_at_test_url

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


async def _get(api: Api, path: str) -> Any:
    r = await api.client.get(path, headers=api.creds.key_headers)
    assert r.status_code == 200, r.text
    return r.json()


def _items(invoice: Any) -> list[tuple[str, str, int | float]]:
    return [(i["type"], i["description"], i["amount"]) for i in invoice.metadata_["items"]]


async def test_oldest_wallet_first_expiry_and_renewal(backend: Backend) -> None:
    async with clocked_runtime(backend.settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        await point_webhooks_at_test_url(client, api.creds)
        plan = await api.plan("MONTHLY", "IN_ADVANCE", {"USD": "29.99"})
        cust = (await api.customer())["id"]
        a = await api.post(
            "/api/wallets", {"customerId": cust, "currency": "USD", "grantedCredits": 10}
        )
        clock.advance(timedelta(minutes=1))
        b = await api.post(
            "/api/wallets",
            {"customerId": cust, "currency": "USD", "grantedCredits": 50, "rateAmount": "0.5"},
        )
        kes = await api.post(
            "/api/wallets", {"customerId": cust, "currency": "KES", "grantedCredits": 900}
        )
        clock.advance(timedelta(minutes=1))
        await api.subscription(cust, plan["id"], "USD")
        [first] = await invoices_of(runtime, api.creds.id)
        # 29.99 = 10.00 from A (oldest) + 19.99 from B (39.98 credits at 0.5)
        assert _items(first) == [
            ("plan", first.metadata_["items"][0]["description"], 29.99),
            ("wallet_credit", "Prepaid credits applied", -29.99),
        ]
        assert (first.total_minor, first.status) == (0, "PAID")
        assert first.metadata_["prepaidCreditAmount"] == 29.99
        assert "taxAmount" in first.metadata_ and "periodStart" in first.metadata_
        wa = await _get(api, f"/api/wallets/{a['id']}")
        assert (wa["creditsBalance"], wa["consumedCredits"], wa["consumedAmount"]) == (
            "0",
            "10",
            "10",
        )
        wb = await _get(api, f"/api/wallets/{b['id']}")
        assert (wb["creditsBalance"], wb["balance"], wb["consumedAmount"]) == (
            "10.02",
            "5.01",
            "19.99",
        )
        [used] = (
            await _get(api, f"/api/wallets/{b['id']}/transactions?transactionStatus=INVOICED")
        )["data"]
        assert (used["creditAmount"], used["amount"], used["invoiceId"]) == (
            "39.98",
            "19.99",
            first.id,
        )
        assert used["transactionType"] == "OUTBOUND" and used["status"] == "SETTLED"
        assert (await _get(api, f"/api/wallets/{kes['id']}"))["creditsBalance"] == "900"

        # a newer wallet that expires before the renewal: expired by the tick, never used
        d = await api.post(
            "/api/wallets",
            {
                "customerId": cust,
                "currency": "USD",
                "grantedCredits": 100,
                "expirationAt": (T0 + timedelta(days=10)).isoformat(),
            },
        )
        clock.set(T0 + timedelta(days=10, minutes=5))
        result = await run_tenant_tick(runtime, api.creds.id)
        assert result.wallets_expired == 1
        wd = await _get(api, f"/api/wallets/{d['id']}")
        assert (wd["status"], wd["creditsBalance"], wd["consumedCredits"]) == (
            "TERMINATED",
            "0",
            "100",
        )
        assert wd["terminatedAt"] == "2026-02-10T09:05:00.000Z"
        [void] = (await _get(api, f"/api/wallets/{d['id']}/transactions?transactionStatus=VOIDED"))[
            "data"
        ]
        assert void["metadata"] == {"reason": "expired"} and void["creditAmount"] == "100"
        events = [(j["event"], j["data"]) for j in queue.named("webhook.deliver")]
        created = [data for event, data in events if event == "wallet.created"]
        assert created[0] == {"walletId": a["id"], "customerId": cust, "currency": "USD"}
        assert len(created) == 4
        assert [data for event, data in events if event == "wallet.terminated"] == [
            {"walletId": d["id"], "customerId": cust}
        ]
        assert (await run_tenant_tick(runtime, api.creds.id)).wallets_expired == 0

        clock.set(datetime(2026, 3, 1, tzinfo=UTC))
        await run_tenant_tick(runtime, api.creds.id)
        first, second = await invoices_of(runtime, api.creds.id)
        assert _items(second)[1:] == [("wallet_credit", "Prepaid credits applied", -5.01)]
        assert (second.total_minor, second.status) == (2498, "PENDING")
        wb = await _get(api, f"/api/wallets/{b['id']}")
        assert (wb["creditsBalance"], wb["balance"], wb["consumedCredits"]) == ("0", "0", "50")


@pytest.mark.postgres
async def test_concurrent_invoices_never_overdraw(pg_settings: Settings) -> None:
    """Row locks under real concurrency: PostgreSQL only (SQLite has a single writer)."""
    async with clocked_runtime(pg_settings, T0) as (runtime, clock, client, queue):
        api = await Api.new_tenant(client)
        plan = await api.plan("MONTHLY", "IN_ARREARS", {"USD": 30})
        cust = (await api.customer())["id"]
        subs = [(await api.subscription(cust, plan["id"], "USD"))["id"] for _ in range(6)]
        wallet = await api.post(
            "/api/wallets", {"customerId": cust, "currency": "USD", "grantedCredits": "100.5"}
        )
        clock.set(datetime(2026, 3, 1, tzinfo=UTC))
        tid = api.creds.id
        maker = await runtime.engines.sessionmaker(tid)
        ctx = renewals.TickContext(
            tenant=await runtime.tenant_profiles.get(tid), now=clock.now(), clock=clock
        )

        async def renew(sub_id: str) -> renewals.Outcome:
            async with job_buffer(queue) as buffer:
                outcome = await renewals.process(maker, ctx, sub_id)
                await buffer.flush()
            return outcome

        outcomes = await asyncio.gather(*(renew(s) for s in subs))
        assert outcomes == [renewals.Outcome.INVOICED] * 6
        invoices = await invoices_of(runtime, tid)
        assert len(invoices) == 6
        # 6 x 30.00 billed, 100.50 of it from the wallet: never more, never twice
        assert sum(i.total_minor for i in invoices) == 18000 - 10050
        deducted = [
            -next(x["amount"] for x in i.metadata_["items"] if x["type"] == "wallet_credit")
            for i in invoices
            if i.total_minor < 3000
        ]
        assert round(sum(deducted), 2) == 100.5
        async with maker() as session:
            row = await session.get(Wallet, wallet["id"])
            assert row is not None and row.credits_balance_e4 == 0
            txs = list(
                await session.scalars(
                    select(WalletTransaction).where(
                        WalletTransaction.wallet_id == wallet["id"],
                        WalletTransaction.transaction_status == "INVOICED",
                    )
                )
            )
        assert sum(t.credit_amount_e4 for t in txs) == 1_005_000
        assert {t.invoice_id for t in txs} <= {i.id for i in invoices}
        assert len(txs) == len(deducted)
