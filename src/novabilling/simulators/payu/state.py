"""What the PayU simulator stores (transactions by payUReference, stored cards by pmId)
and what PayU does with them: the customer pays on the RPP page (the card is stored when
the merchant asked), a stored card is charged with ``doTransaction``, a ``CREDIT`` refunds
a payment (``PROCESSING`` until ``settle()``), and an IPN goes to the transaction's
``notificationUrl`` when a payment ends.

Seeded stored cards: ``PM_SUCCESS`` charges succeed, ``PM_DECLINE`` fails ("Insufficient
funds"), ``PM_TIMEOUT`` succeeds but the answer is lost (stall, then 504). The customer
email ``EMAIL_TIMEOUT`` makes ``setTransaction`` record the transaction and stall.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

from novabilling.simulators.base import SimulatorBase, WebhookSender
from novabilling.simulators.payu import soap

SUPPORTED_CURRENCIES = frozenset({"ZAR", "NGN", "KES", "USD"})
PM_SUCCESS = "pm_sim_success_0001"
PM_DECLINE = "pm_sim_decline_0001"
PM_TIMEOUT = "pm_sim_timeout_0001"
EMAIL_TIMEOUT = "timeout@example.com"


@dataclass
class PayuTransaction:
    payu_reference: str
    merchant_reference: str
    kind: str  # PAYMENT | CREDIT
    amount_cents: int
    currency: str
    description: str
    email: str = ""
    notify_url: str | None = None
    state: str = "NEW"  # NEW | PROCESSING | SUCCESSFUL | FAILED
    result_code: str = "00"
    result_message: str = ""
    pm_id: str | None = None
    store_card: bool = False
    original: str | None = None  # a CREDIT's payment

    def fields(self) -> dict[str, Any]:
        methods = None
        if self.pm_id and self.kind == "PAYMENT":
            methods = {
                "creditCard": {"pmId": self.pm_id, "cardNumber": "512345xxxxxx0008",
                               "nameOnCard": "A Buyer", "information": "Mastercard",
                               "amountInCents": str(self.amount_cents)},
            }  # fmt: skip
        return {
            "successful": "true" if self.state != "FAILED" else "false",
            "transactionType": self.kind,
            "transactionState": self.state,
            "resultCode": self.result_code,
            "resultMessage": self.result_message,
            "displayMessage": self.result_message,
            "merchantReference": self.merchant_reference,
            "payUReference": self.payu_reference,
            "basket": {
                "description": self.description,
                "amountInCents": str(self.amount_cents),
                "currencyCode": self.currency,
            },
            "paymentMethodsUsed": methods,
        }


class PayuState(SimulatorBase):
    def __init__(self, *, sender: WebhookSender) -> None:
        self.sender = sender
        self.transactions: dict[str, PayuTransaction] = {}
        self.cards: set[str] = {PM_SUCCESS, PM_DECLINE, PM_TIMEOUT}
        self.attempts: Counter[str] = Counter()  # requests per merchantReference
        self._ids = itertools.count(21783650)

    # -- test helpers ---------------------------------------------------------------------

    def charges_for(self, reference: str) -> int:
        return len([t for t in self.by_merchant_reference(reference) if t.kind == "PAYMENT"])

    def by_merchant_reference(self, reference: str) -> list[PayuTransaction]:
        return [t for t in self.transactions.values() if t.merchant_reference == reference]

    def find(self, key: str) -> PayuTransaction | None:
        return self.transactions.get(key) or next(iter(self.by_merchant_reference(key)), None)

    def settle(self) -> None:
        """Credits (refunds) in PROCESSING complete."""
        for tx in self.transactions.values():
            if tx.kind == "CREDIT" and tx.state == "PROCESSING":
                tx.state, tx.result_message = "SUCCESSFUL", "Successful"

    async def complete(self, key: str, *, success: bool = True) -> PayuTransaction:
        """What the customer does on the RPP page (also ``POST /_sim/pay/{key}``)."""
        tx = self.find(key)
        if tx is None:
            raise KeyError(key)
        if success:
            tx.state, tx.result_code, tx.result_message = "SUCCESSFUL", "00", "Successful"
            if tx.store_card:
                tx.pm_id = "pm_" + secrets.token_hex(8)
                self.cards.add(tx.pm_id)
        else:
            tx.state, tx.result_code, tx.result_message = "FAILED", "P005", "Card declined"
        self.notify(tx)
        return tx

    # -- PayU's side ----------------------------------------------------------------------

    def new(self, *, merchant_reference: str, kind: str, basket: dict[str, Any]) -> PayuTransaction:
        tx = PayuTransaction(
            payu_reference=str(next(self._ids)),
            merchant_reference=merchant_reference,
            kind=kind,
            amount_cents=int(basket["amountInCents"]),
            currency=str(basket["currencyCode"]).upper(),
            description=str(basket.get("description") or ""),
        )
        self.transactions[tx.payu_reference] = tx
        return tx

    def charge_card(self, tx: PayuTransaction, pm_id: str) -> None:
        tx.pm_id = pm_id
        if pm_id == PM_DECLINE:
            tx.state, tx.result_code, tx.result_message = "FAILED", "P005", "Insufficient funds"
        else:
            tx.state, tx.result_code, tx.result_message = "SUCCESSFUL", "00", "Successful"
        if pm_id != PM_TIMEOUT:
            self.notify(tx)

    def refunded(self, payment: PayuTransaction) -> int:
        return sum(
            t.amount_cents
            for t in self.transactions.values()
            if t.kind == "CREDIT" and t.original == payment.payu_reference and t.state != "FAILED"
        )

    def notify(self, tx: PayuTransaction) -> None:
        """Queue the IPN for a payment that ended: to its notificationUrl, else to the
        simulator's webhook URL (recorded only when there is neither)."""
        fields = {
            "MerchantReference": tx.merchant_reference,
            "TransactionType": tx.kind,
            "TransactionState": tx.state,
            "ResultCode": tx.result_code,
            "ResultMessage": tx.result_message,
            "PayUReference": tx.payu_reference,
            "Basket": {
                "Description": tx.description,
                "AmountInCents": str(tx.amount_cents),
                "CurrencyCode": tx.currency,
            },
        }
        digest = hashlib.sha256(repr(sorted(fields.items(), key=str)).encode()).hexdigest()
        fields["IpnExtraInfo"] = {"ResponseHash": digest}
        self.sender.queue(soap.notification(fields), url=tx.notify_url)
