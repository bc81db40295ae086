"""What the DPO simulator stores (transactions by TransToken, created by ``createToken``)
and what DPO does with them: the customer pays or declines on the payment page, a paid
transaction is refunded synchronously, and a ``pushPayments`` XML notification goes to the
merchant's push URL after each successful payment (DPO pushes paid transactions only).

Test inputs: ``customerEmail`` = ``EMAIL_TIMEOUT`` makes ``createToken`` record the
transaction, stall ``hang_seconds`` and answer 504 (the answer is lost, the token exists).
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from novabilling.simulators.base import SimulatorBase, WebhookSender
from novabilling.simulators.dpo import xml

SERVICE_TYPE = "3854"
EMAIL_TIMEOUT = "timeout@example.com"
CUSTOMER_NAME = "Wanjiku Otieno"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y/%m/%d %H:%M:%S")


@dataclass
class DpoTransaction:
    token: str
    trans_ref: str
    company_ref: str
    amount: str  # as received (major units)
    currency: str
    email: str
    status: str = "new"  # new | paid | declined | cancelled
    approval: str = ""
    refunds: list[Decimal] = field(default_factory=list)
    redirect_url: str | None = None

    @property
    def refunded(self) -> Decimal:
        return sum(self.refunds, Decimal(0))


class DpoState(SimulatorBase):
    def __init__(self, *, sender: WebhookSender) -> None:
        self.sender = sender
        self.transactions: dict[str, DpoTransaction] = {}  # by TransToken
        self.attempts: Counter[str] = Counter()  # createToken requests per CompanyRef
        self._refs = itertools.count(4830125)

    # -- test helpers ---------------------------------------------------------------------

    def charges_for(self, reference: str) -> int:
        return len([t for t in self.transactions.values() if t.company_ref == reference])

    def by_ref(self, company_ref: str) -> DpoTransaction | None:
        return next((t for t in self.transactions.values() if t.company_ref == company_ref), None)

    def find(self, key: str) -> DpoTransaction | None:
        return self.transactions.get(key.upper()) or self.by_ref(key)

    async def complete(self, key: str, *, success: bool = True) -> DpoTransaction:
        """What the customer does on the payment page (also ``POST /_sim/pay/{key}``)."""
        tx = self.find(key)
        if tx is None:
            raise KeyError(key)
        if success:
            tx.status = "paid"
            tx.approval = str(secrets.randbelow(900000) + 100000)
            self.sender.queue(xml.document(self.push_fields(tx)))
        else:
            tx.status = "declined"
        return tx

    # -- DPO's side -----------------------------------------------------------------------

    def create(self, *, company_ref: str, amount: str, currency: str, email: str) -> DpoTransaction:
        tx = DpoTransaction(
            token=str(uuid.uuid4()).upper(),
            trans_ref=f"R{next(self._refs)}",
            company_ref=company_ref,
            amount=amount,
            currency=currency,
            email=email,
        )
        self.transactions[tx.token] = tx
        return tx

    def verify_fields(self, tx: DpoTransaction) -> dict[str, Any]:
        code, text = {
            "paid": ("000", "Transaction Paid"),
            "new": ("900", "Transaction not paid yet"),
            "declined": ("901", "Transaction declined"),
            "cancelled": ("904", "Transaction cancelled"),
        }[tx.status]
        fields: dict[str, Any] = {"Result": code, "ResultExplanation": text}
        if tx.status == "paid":
            fields.update(self._payment_fields(tx))
        return fields

    def push_fields(self, tx: DpoTransaction) -> dict[str, Any]:
        return {
            "Result": "000",
            "ResultExplanation": "Transaction paid",
            "TransactionToken": tx.token,
            "TransactionRef": tx.company_ref,
            **self._payment_fields(tx),
        }

    @staticmethod
    def _payment_fields(tx: DpoTransaction) -> dict[str, Any]:
        return {
            "CustomerName": CUSTOMER_NAME,
            "CustomerCredit": "4242",
            "CustomerCreditType": "Visa",
            "TransactionApproval": tx.approval,
            "TransactionCurrency": tx.currency,
            "TransactionAmount": tx.amount,
            "FraudAlert": "000",
            "FraudExplnation": "Genuine transaction",
            "TransactionNetAmount": tx.amount,
            "TransactionSettlementDate": _now()[:10],
            "TransactionRollingReserveAmount": "0",
            "CustomerPhone": "",
            "CustomerCountry": "Kenya",
            "AccRef": "",
        }

    def refund(self, tx: DpoTransaction, amount: Decimal) -> tuple[str, str]:
        if tx.status != "paid":
            return "999", "Refund failed - transaction is not paid"
        if amount <= 0 or tx.refunded + amount > Decimal(tx.amount):
            return "999", "Refund failed - amount exceeds the paid amount"
        tx.refunds.append(amount)
        return "000", "Refund successful"
