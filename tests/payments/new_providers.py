"""DPO, PayU and Pesapal for the API tests: each simulator in-process, its adapter routed to
it, its notifications delivered into our own app (as the real provider would call us), and
what a test needs to know about it (credentials, currency, how the customer pays, how a
forged notification looks)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from novabilling.payments.providers.pesapal import merchant_id
from novabilling.runtime import Runtime
from novabilling.simulators import dpo, payu, pesapal
from tests.conftest import app_for
from tests.payments.helpers import attach

NAMES = ("dpo", "payu", "pesapal")


@dataclass
class Sim:
    name: str
    base_url: str
    currency: str
    amount: int  # major units of the invoice
    simulator: Any
    credentials: dict[str, Any]

    async def pay(self, provider_transaction_id: str, *, success: bool = True) -> None:
        """The customer on the hosted page; the simulator notifies us by itself."""
        outcome = "success" if success else "failed"
        transport = httpx.ASGITransport(app=self.simulator.app)
        async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as client:
            response = await client.post(f"/_sim/pay/{provider_transaction_id}?outcome={outcome}")
            response.raise_for_status()

    def underpay(self, provider_transaction_id: str) -> None:
        """Make the provider's record of the amount differ from what we asked for."""
        record = self.simulator.find(provider_transaction_id)
        if self.name == "dpo":
            record.amount = str(Decimal(record.amount) - 1)
        elif self.name == "payu":
            record.amount_cents -= 100
        else:
            record.amount -= 1

    def forged_success(self, reference: str, provider_transaction_id: str) -> bytes:
        """A notification claiming the payment succeeded (nobody paid)."""
        if self.name == "dpo":
            return (
                f'<?xml version="1.0" encoding="utf-8"?><API3G><Result>000</Result>'
                f"<ResultExplanation>Transaction paid</ResultExplanation>"
                f"<TransactionToken>{provider_transaction_id}</TransactionToken>"
                f"<TransactionRef>{reference}</TransactionRef>"
                f"<TransactionCurrency>{self.currency}</TransactionCurrency>"
                f"<TransactionAmount>{self.amount}</TransactionAmount></API3G>"
            ).encode()
        if self.name == "payu":
            return (
                f"<PaymentNotification><MerchantReference>{reference}</MerchantReference>"
                f"<TransactionType>PAYMENT</TransactionType>"
                f"<TransactionState>SUCCESSFUL</TransactionState><ResultCode>00</ResultCode>"
                f"<PayUReference>{provider_transaction_id}</PayUReference><Basket>"
                f"<AmountInCents>{self.amount * 100}</AmountInCents>"
                f"<CurrencyCode>{self.currency}</CurrencyCode></Basket></PaymentNotification>"
            ).encode()
        return json.dumps(
            {
                "OrderTrackingId": provider_transaction_id,
                "OrderNotificationType": "IPNCHANGE",
                "OrderMerchantReference": merchant_id(reference),  # as Pesapal knows it
            }
        ).encode()


def start(name: str, runtime: Runtime, tenant_id: str) -> Sim:
    """The simulator of ``name``, wired to ``runtime``'s adapters and app."""
    ours = httpx.ASGITransport(app=app_for(runtime))
    base_url = f"http://{name}.sim"
    if name == "dpo":
        push_url = f"http://nb.test/webhooks/dpo/{tenant_id}"  # given to DPO for pushPayments
        simulator: Any = dpo.DpoSimulator(webhook_url=push_url, webhook_transport=ours)
        credentials = {
            "companyToken": dpo.DEFAULT_SECRET_KEY,
            "serviceType": dpo.SERVICE_TYPE,
            "environment": "test",
        }
        sim = Sim(name, base_url, "USD", 50, simulator, credentials)
    elif name == "payu":
        simulator = payu.PayuSimulator(webhook_transport=ours)  # IPN: each notificationUrl
        credentials = {
            "apiKey": payu.DEFAULT_SECRET_KEY,
            "safeKey": payu.DEFAULT_SAFE_KEY,
            "apiUsername": payu.DEFAULT_USERNAME,
            "environment": "staging",
        }
        sim = Sim(name, base_url, "ZAR", 150, simulator, credentials)
    else:
        simulator = pesapal.PesapalSimulator(webhook_transport=ours)  # IPN: registered URL
        credentials = {
            "consumerKey": pesapal.DEFAULT_CONSUMER_KEY,
            "consumerSecret": pesapal.DEFAULT_SECRET_KEY,
            "environment": "sandbox",
        }
        sim = Sim(name, base_url, "KES", 2500, simulator, credentials)
    sim.credentials["baseUrl"] = base_url
    attach(runtime, base_url, simulator.app)
    return sim
