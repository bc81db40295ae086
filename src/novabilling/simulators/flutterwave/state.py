"""What the Flutterwave simulator stores (hosted payment links by ``tx_ref``, transactions,
refunds, card tokens bound to an email) and what Flutterwave does with it: complete a hosted
payment, charge a token, refund at once, settle timed-out charges later. Every settled
transaction queues a ``charge.completed`` webhook (failures too, as Flutterwave does).

Test tokens: ``TOKEN_SUCCESS`` (any email) succeeds, ``TOKEN_DECLINE`` fails ("Insufficient
Funds"), ``TOKEN_TIMEOUT`` is recorded ``pending`` and settles successful on ``drain()``,
``TOKEN_TIMEOUT_CHARGED`` is debited but its answer is lost, ``TOKEN_UNAVAILABLE`` records
nothing (the API answers 503 for the last three).
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from decimal import Decimal
from typing import Any

from novabilling.simulators.base import SimulatorBase, WebhookSender
from novabilling.simulators.flutterwave import webhooks
from novabilling.simulators.flutterwave.records import Payment, Transaction, number

TOKEN_SUCCESS = "flw-t1nf-f9b3bf384cd30d6fca42b6df9d27bd2f-m03k"  # sample token, any email
TOKEN_DECLINE = "flw-t1nf-sim-decline-m03k"  # data.status failed, "Insufficient Funds"
# 503 after the charge was recorded as "pending" (it settles as successful on drain()).
TOKEN_TIMEOUT = "flw-t1nf-sim-timeout-m03k"
TOKEN_TIMEOUT_CHARGED = "flw-t1nf-sim-timeout-charged-m03k"  # 503, but the card WAS debited
TOKEN_UNAVAILABLE = "flw-t1nf-sim-unavailable-m03k"  # 503, nothing recorded
SIMULATED_TOKENS = (TOKEN_DECLINE, TOKEN_TIMEOUT, TOKEN_TIMEOUT_CHARGED)


class FlutterwaveState(SimulatorBase):
    def __init__(self, *, sender: WebhookSender, checkout_base: str, webhook_format: str) -> None:
        self.sender = sender
        self.checkout_base = checkout_base
        self.webhook_format = webhook_format
        self.payments: dict[str, Payment] = {}
        self.transactions: dict[int, Transaction] = {}
        self.refunds: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, str | None] = {TOKEN_SUCCESS: None}  # token -> bound email
        self.attempts: Counter[str] = Counter()
        self.failures_to_inject = 0
        self._ids = itertools.count(8415006)
        self._refund_ids = itertools.count(75923)

    # ---- test helpers -----------------------------------------------------------------

    def settle(self) -> None:
        """In-flight (timed-out) charges settle as successful."""
        for tx in self.transactions.values():
            if tx.status == "pending":
                tx.status, tx.processor_response = "successful", "APPROVED"
                self.notify(tx)

    def fail_next(self, count: int = 1) -> None:
        """The next ``count`` API calls answer 503 with the sample timeout body."""
        self.failures_to_inject = count

    def charges_for(self, reference: str) -> int:
        return sum(1 for t in self.transactions.values() if t.tx_ref == reference)

    def complete(self, tx_ref: str, *, success: bool = True) -> Transaction:
        """The customer pays (or fails to) on the hosted page of ``tx_ref``; a success
        leaves a card token bound to the customer's email."""
        payment = self.payments[tx_ref]
        token = f"flw-t1nf-{hashlib.md5(tx_ref.encode()).hexdigest()}-m03k" if success else None
        tx = self.new_transaction(
            tx_ref=tx_ref,
            amount=payment.amount,
            currency=payment.currency,
            status="successful" if success else "failed",
            email=payment.email,
            processor_response="Approved. Successful" if success else "Insufficient Funds",
            token=token,
            meta=payment.meta,
        )
        if token:
            self.tokens[token] = payment.email
        self.notify(tx)
        return tx

    # ---- Flutterwave's side -------------------------------------------------------------

    def notify(self, tx: Transaction) -> None:
        legacy = self.webhook_format == "legacy"
        self.sender.queue(webhooks.charge_completed(tx, legacy=legacy))

    def new_transaction(self, **fields: Any) -> Transaction:
        tx = Transaction(id=next(self._ids), **fields)
        self.transactions[tx.id] = tx
        return tx

    def new_payment(self, tx_ref: str, **fields: Any) -> Payment:
        """A hosted payment link for ``tx_ref``."""
        link_id = hashlib.sha1(tx_ref.encode()).hexdigest()[:20]
        payment = Payment(tx_ref=tx_ref, link=f"{self.checkout_base}/{link_id}", **fields)
        self.payments[tx_ref] = payment
        return payment

    def charge_token(
        self, token: str, *, tx_ref: str, amount: Decimal, currency: str, email: str, narration: str
    ) -> Transaction:
        """A tokenized charge; the caller sends the webhook once the answer is known."""
        ok = token != TOKEN_DECLINE
        return self.new_transaction(
            tx_ref=tx_ref,
            amount=amount,
            currency=currency,
            status="pending" if token == TOKEN_TIMEOUT else "successful" if ok else "failed",
            email=email,
            processor_response="APPROVED" if ok else "Insufficient Funds",
            token=token,
            auth_model="noauth",
            narration=narration,
        )

    def refund(self, tx: Transaction, amount: Decimal, *, comments: Any) -> dict[str, Any]:
        """A refund that completes at once."""
        tx.refunded += amount
        refund_id = next(self._refund_ids)
        refund = {
            "id": refund_id,
            "account_id": 20937,
            "tx_id": tx.id,
            "flw_ref": f"URF_{tx.id}_{len(self.refunds) + 1}",
            "wallet_id": 74639,
            "amount_refunded": number(amount),
            "status": "completed",
            "destination": "payment_source",
            "meta": {"source": "availablebalance"},
            "comments": comments,
            "created_at": "2025-01-02T09:18:37.366Z",
        }
        self.refunds[refund_id] = refund
        return refund
