"""``payments.charge``: charge the saved authorization with our payment reference;
success -> PAID + receipt; decline -> FAILED payment and the dunning hook (invoice FAILED
with a retry date); running the job twice charges once."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from novabilling.invoices.lifecycle import CHARGE_JOB as CHARGE
from novabilling.kit.jobs import QUEUE_PAYMENTS
from novabilling.payments import service
from novabilling.payments.models import Payment
from novabilling.runtime import Runtime
from novabilling.simulators import paystack as paystack_sim
from tests.conftest import TenantCreds
from tests.payments.helpers import configure, make_invoice, paystack, use_inprocess_jobs


async def _save(runtime: Runtime, tenant_id: str, customer_id: str, token: str) -> None:
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        await service.save_method(
            session,
            tenant_id=tenant_id,
            customer_id=customer_id,
            provider="paystack",
            token=token,
            raw={"customer": {"email": paystack_sim.TEST_EMAIL}},
            encryptor=runtime.encryptor,
            clock=runtime.clock,
        )
        await session.commit()


async def _payments(runtime: Runtime, tenant_id: str, invoice_id: str) -> list[Payment]:
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        rows = await session.scalars(select(Payment).where(Payment.invoice_id == invoice_id))
        return list(rows)


async def test_charge_success_and_idempotent(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    sim = paystack(runtime)
    h = tenant.key_headers
    await configure(client, h)
    invoice = await make_invoice(client, h, amount=2500)
    await _save(runtime, tenant.id, invoice["customerId"], paystack_sim.AUTH_SUCCESS)
    for _ in range(2):
        await queue.enqueue(
            QUEUE_PAYMENTS, CHARGE, {"tenant_id": tenant.id, "invoice_id": invoice["id"]}
        )
        await queue.join()
    paid = (await client.get(f"/api/invoices/{invoice['id']}", headers=h)).json()
    assert paid["status"] == "PAID"
    payments = await _payments(runtime, tenant.id, invoice["id"])
    assert [p.status for p in payments] == ["SUCCEEDED"]
    assert payments[0].reference and sim.charges_for(payments[0].reference) == 1


async def test_decline_calls_dunning(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    paystack(runtime)
    h = tenant.key_headers
    await configure(client, h)
    invoice = await make_invoice(client, h, amount=2500)
    await _save(runtime, tenant.id, invoice["customerId"], paystack_sim.AUTH_DECLINE)
    await queue.enqueue(
        QUEUE_PAYMENTS, CHARGE, {"tenant_id": tenant.id, "invoice_id": invoice["id"]}
    )
    await queue.join()
    failed = (await client.get(f"/api/invoices/{invoice['id']}", headers=h)).json()
    assert failed["status"] == "FAILED"
    payments = await _payments(runtime, tenant.id, invoice["id"])
    assert [p.status for p in payments] == ["FAILED"] and payments[0].failure_reason
