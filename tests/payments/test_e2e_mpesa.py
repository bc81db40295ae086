"""End to end with the M-Pesa (Daraja) simulator: checkout sends an STK push, the customer
answers, the unsigned callback is accepted only after an STK query confirms it, invoice
PAID with the receipt email; a forged callback is 401 and changes nothing."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select

from novabilling.notifications.mailer import MemoryMailer
from novabilling.payments.credentials import provider_factory
from novabilling.payments.providers.mpesa import MpesaProvider
from novabilling.runtime import Runtime
from novabilling.simulators import mpesa as mpesa_sim
from novabilling.tenancy.models import WebhookInbox
from tests.conftest import TenantCreds, app_for, assert_error
from tests.payments.helpers import attach, configure, make_invoice, use_inprocess_jobs

MPESA_URL = "http://mpesa.sim"
CREDENTIALS = {
    "consumerKey": mpesa_sim.DEFAULT_CONSUMER_KEY,
    "consumerSecret": mpesa_sim.DEFAULT_SECRET_KEY,
    "shortcode": mpesa_sim.SHORTCODE,
    "passkey": mpesa_sim.PASSKEY,
    "environment": "sandbox",
    "baseUrl": MPESA_URL,
}


async def test_stk_checkout_callback_confirmed_paid(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    sim = mpesa_sim.MpesaSimulator(
        secret_key=mpesa_sim.DEFAULT_SECRET_KEY,
        duplicate_callbacks=True,
        webhook_transport=httpx.ASGITransport(app=app_for(runtime)),
    )
    attach(runtime, MPESA_URL, sim.app)
    h = tenant.key_headers
    callback = f"https://billing.test/webhooks/mpesa/{tenant.id}"  # Daraja wants https
    creds = {**CREDENTIALS, "callbackUrl": callback}
    await configure(client, h, name="mpesa", credentials=creds)
    invoice = await make_invoice(  # the phone field wins over a metadata.phone
        client,
        h,
        currency="KES",
        amount=1500,
        phone=mpesa_sim.PHONE_SUCCESS,
        metadata={"phone": mpesa_sim.PHONE_CANCELLED},
    )

    forged = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "x",
                "CheckoutRequestID": "ws_CO_forged",
                "ResultCode": 0,
                "ResultDesc": "ok",
            }
        }
    }
    spoof = await client.post(f"/webhooks/mpesa/{tenant.id}", content=json.dumps(forged))
    assert_error(spoof, 401)

    out = await client.post(f"/api/invoices/{invoice['id']}/checkout", headers=h)
    assert out.status_code == 201, out.text
    payment_id = out.json()["paymentId"]
    assert out.json()["provider"] == "mpesa" and out.json()["checkoutUrl"] is None
    push = next(iter(sim.pushes.values()))
    assert push.callback_url.endswith(f"/webhooks/mpesa/{tenant.id}")

    delivered = await sim.drain()  # the customer enters the PIN; callback sent twice
    assert [d.status_code for d in delivered] == [200, 200]
    await queue.join()

    paid = (await client.get(f"/api/invoices/{invoice['id']}", headers=h)).json()
    assert paid["status"] == "PAID"
    payment = (await client.get(f"/api/payments/{payment_id}", headers=h)).json()
    assert payment["status"] == "SUCCEEDED" and payment["amount"] == "1500"
    assert payment["metadata"]["mpesaReceipt"] == push.receipt
    assert isinstance(runtime.mailer, MemoryMailer)
    [receipt] = [m for m in runtime.mailer.outbox if "Receipt" in str(m["Subject"])]
    text = receipt.get_body(preferencelist=("plain",))
    assert text is not None
    assert "Method:  M-Pesa" in text.get_content()
    assert f"M-Pesa receipt: {push.receipt}" in text.get_content()  # not the STK request id
    assert push.checkout_request_id not in text.get_content()
    assert [a.get_filename() for a in receipt.iter_attachments()] == [
        f"invoice-{invoice['invoiceNumber']}.pdf"
    ]
    async with runtime.central() as session:
        rows = list(
            await session.scalars(select(WebhookInbox).where(WebhookInbox.tenant_id == tenant.id))
        )
    assert [r.status for r in rows] == ["PROCESSED"]


async def test_failed_stk_marks_payment_failed(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = use_inprocess_jobs(runtime)
    sim = mpesa_sim.MpesaSimulator(
        secret_key=mpesa_sim.DEFAULT_SECRET_KEY,
        webhook_transport=httpx.ASGITransport(app=app_for(runtime)),
    )
    attach(runtime, MPESA_URL, sim.app)
    h = tenant.key_headers
    callback = f"https://billing.test/webhooks/mpesa/{tenant.id}"  # Daraja wants https
    creds = {**CREDENTIALS, "callbackUrl": callback}
    await configure(client, h, name="mpesa", credentials=creds)
    invoice = await make_invoice(  # no phone field: metadata.phone is the fallback
        client, h, currency="KES", amount=700, metadata={"phone": mpesa_sim.PHONE_CANCELLED}
    )
    out = await client.post(f"/api/invoices/{invoice['id']}/checkout", headers=h)
    assert out.status_code == 201, out.text
    await sim.drain()
    await queue.join()
    payment = (await client.get(f"/api/payments/{out.json()['paymentId']}", headers=h)).json()
    assert payment["status"] == "FAILED" and payment["failureReason"]
    invoice_now = (await client.get(f"/api/invoices/{invoice['id']}", headers=h)).json()
    assert invoice_now["status"] == "PENDING"


async def test_unconfirmed_callbacks_change_nothing(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    """Regression (issue 14 item 16): a forged callback for a real push, sent before the
    customer answered, is refused by the STK query - and must not leave its receipt (or a
    forged reversal result) in the adapter's ledger either."""
    queue = use_inprocess_jobs(runtime)
    sim = mpesa_sim.MpesaSimulator(
        secret_key=mpesa_sim.DEFAULT_SECRET_KEY,
        webhook_transport=httpx.ASGITransport(app=app_for(runtime)),
    )
    attach(runtime, MPESA_URL, sim.app)
    h = tenant.key_headers
    creds = {**CREDENTIALS, "callbackUrl": f"https://billing.test/webhooks/mpesa/{tenant.id}"}
    await configure(client, h, name="mpesa", credentials=creds)
    invoice = await make_invoice(
        client, h, currency="KES", amount=1500, metadata={"phone": mpesa_sim.PHONE_SUCCESS}
    )
    out = await client.post(f"/api/invoices/{invoice['id']}/checkout", headers=h)
    assert out.status_code == 201, out.text
    push = next(iter(sim.pushes.values()))
    items = [{"Name": "Amount", "Value": 1500}, {"Name": "MpesaReceiptNumber", "Value": "FAKE01"}]
    forged = {"Body": {"stkCallback": {
        "MerchantRequestID": "x", "CheckoutRequestID": push.checkout_request_id,
        "ResultCode": 0, "ResultDesc": "ok", "CallbackMetadata": {"Item": items}}}}  # fmt: skip
    reversal = {"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "ok",
                           "ConversationID": "AG_forged", "TransactionID": "TAX"}}  # fmt: skip
    for body in (forged, reversal):
        spoof = await client.post(f"/webhooks/mpesa/{tenant.id}", content=json.dumps(body))
        assert_error(spoof, 401)
    handle = await provider_factory(runtime).get(tenant.id, "mpesa")
    assert handle is not None and isinstance(handle.adapter, MpesaProvider)
    assert handle.adapter.ledger.receipts == {} and handle.adapter.ledger.reversals == {}
    payment = (await client.get(f"/api/payments/{out.json()['paymentId']}", headers=h)).json()
    assert payment["status"] == "PROCESSING" and not (payment["metadata"] or {})

    await sim.drain()  # the customer answers: the genuine callback is confirmed
    await queue.join()
    payment = (await client.get(f"/api/payments/{out.json()['paymentId']}", headers=h)).json()
    assert payment["status"] == "SUCCEEDED"
    assert payment["metadata"]["mpesaReceipt"] == push.receipt != "FAKE01"
    assert handle.adapter.ledger.receipts == {push.checkout_request_id: push.receipt}
