"""What the Paystack simulator stores (transactions by reference, refunds, reusable
authorizations bound to an email) and what Paystack does with it: a hosted payment or a
charge of a saved authorization, refunds that stay ``pending`` until ``settle()``.

Seeded reusable authorizations (bound to ``TEST_EMAIL``): ``AUTH_SUCCESS`` charges succeed,
``AUTH_DECLINE`` answers ``failed`` / "Insufficient Funds", ``AUTH_TIMEOUT`` succeeds but
its answer is lost (the API stalls and answers 504: the money moved).
"""

from __future__ import annotations

import itertools
import secrets
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from novabilling.simulators.base import SimulatorBase, WebhookSender
from novabilling.simulators.http import public
from novabilling.simulators.paystack import webhooks

TEST_EMAIL = "amina@example.com"
AUTH_SUCCESS = "AUTH_simsuccess1"
AUTH_DECLINE = "AUTH_simdecline1"
AUTH_TIMEOUT = "AUTH_simtimeout1"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def authorization(code: str, *, reusable: bool = True, last4: str = "4081") -> dict[str, Any]:
    return {
        "authorization_code": code,
        "bin": "408408",
        "last4": last4,
        "exp_month": "12",
        "exp_year": "2030",
        "channel": "card",
        "card_type": "visa ",
        "bank": "TEST BANK",
        "country_code": "NG",
        "brand": "visa",
        "reusable": reusable,
        "signature": "SIG_" + code[5:],
        "account_name": None,
    }


class PaystackState(SimulatorBase):
    def __init__(self, *, sender: WebhookSender) -> None:
        self.sender = sender
        self.transactions: dict[str, dict[str, Any]] = {}  # by reference
        self.refunds: dict[int, dict[str, Any]] = {}
        self.authorizations: dict[str, tuple[str, dict[str, Any]]] = {
            code: (TEST_EMAIL, authorization(code)) for code in (AUTH_SUCCESS, AUTH_DECLINE)
        }
        self.authorizations[AUTH_TIMEOUT] = (TEST_EMAIL, authorization(AUTH_TIMEOUT))
        self.attempts: Counter[str] = Counter()
        self._ids = itertools.count(4099260516)
        self._refund_ids = itertools.count(3018284)

    # -- test helpers ---------------------------------------------------------------------

    def charges_for(self, reference: str) -> int:
        return 1 if reference in self.transactions else 0  # a reference is unique

    def settle(self) -> None:
        """Pending refunds are processed (``refund.processed``); a fully refunded
        transaction becomes ``reversed``."""
        for refund in self.refunds.values():
            if refund["status"] in ("pending", "processing"):
                refund["status"] = "processed"
                refund["refund_reference"] = str(refund["id"] * 7 + 132013318360)
                refund["updatedAt"] = _now()
                tx = self.transactions[refund["transaction"]["reference"]]
                if self.refunded(tx) >= tx["amount"]:
                    tx["status"] = "reversed"
                self.sender.queue(
                    webhooks.refund_event("refund.processed", refund, email=TEST_EMAIL)
                )

    async def complete(self, reference: str, *, success: bool = True) -> dict[str, Any]:
        """What the customer does on the hosted page (also ``POST /_sim/pay/{ref}``)."""
        tx = self.transactions[reference]
        if success:
            code = "AUTH_" + secrets.token_hex(5)
            auth = authorization(code)
            self.authorizations[code] = (tx["customer"]["email"], auth)
            tx["authorization"] = auth
            self._succeed(tx, "Successful", notify=True)
        else:
            tx.update(status="failed", gateway_response="Declined")
        return tx

    # -- Paystack's side ------------------------------------------------------------------

    def _succeed(self, tx: dict[str, Any], gateway_response: str, *, notify: bool) -> None:
        tx.update(status="success", gateway_response=gateway_response)
        tx["paid_at"] = tx["paidAt"] = _now()
        if notify:
            self.sender.queue(webhooks.charge_success(public(tx)))

    def find(self, key: str) -> dict[str, Any] | None:
        """A transaction by reference or by (stringified) id."""
        return self.transactions.get(key) or next(
            (t for t in self.transactions.values() if str(t["id"]) == key), None
        )

    def by_id(self, tx_id: int) -> dict[str, Any] | None:
        return next((t for t in self.transactions.values() if t["id"] == tx_id), None)

    def by_access_code(self, code: str) -> dict[str, Any] | None:
        return next((t for t in self.transactions.values() if t.get("_access_code") == code), None)

    def refunded(self, tx: dict[str, Any]) -> int:
        return sum(
            r["amount"]
            for r in self.refunds.values()
            if r["transaction"]["reference"] == tx["reference"] and r["status"] != "failed"
        )

    def new_tx(self, reference: str, amount: int, currency: str, email: str) -> dict[str, Any]:
        tx: dict[str, Any] = {
            "id": next(self._ids),
            "domain": "test",
            "status": "abandoned",
            "reference": reference,
            "amount": amount,
            "requested_amount": amount,
            "currency": currency,
            "gateway_response": "The transaction was not completed",
            "paid_at": None,
            "paidAt": None,
            "created_at": _now(),
            "channel": "card",
            "fees": None,
            "metadata": "",
            "authorization": {},
            "customer": {"id": 181873746, "email": email, "customer_code": "CUS_sim"},
        }
        self.transactions[reference] = tx
        return tx

    def charge_authorization(self, tx: dict[str, Any], code: str) -> None:
        """Charge a saved authorization: ``AUTH_TIMEOUT`` succeeds without a webhook (its
        answer is lost), ``AUTH_DECLINE`` fails (no webhook), others succeed."""
        tx["authorization"] = self.authorizations[code][1]
        if code == AUTH_TIMEOUT:
            self._succeed(tx, "Approved", notify=False)
        elif code == AUTH_DECLINE:
            tx.update(status="failed", gateway_response="Insufficient Funds")
        else:
            self._succeed(tx, "Approved", notify=True)

    def new_refund(
        self, tx: dict[str, Any], amount: int, *, merchant_note: Any, customer_note: Any
    ) -> dict[str, Any]:
        """A ``pending`` refund (``refund.pending``); ``settle()`` processes it."""
        refund: dict[str, Any] = {
            "id": next(self._refund_ids),
            "transaction": {"id": tx["id"], "reference": tx["reference"], "amount": tx["amount"]},
            "integration": 412829,
            "domain": "test",
            "status": "pending",
            "amount": amount,
            "currency": tx["currency"],
            "deducted_amount": 0,
            "merchant_note": merchant_note,
            "customer_note": customer_note,
            "refund_reference": None,
            "createdAt": _now(),
            "updatedAt": _now(),
        }
        self.refunds[refund["id"]] = refund
        self._notify_refund("refund.pending", refund)
        return refund

    def _notify_refund(self, event: str, refund: dict[str, Any]) -> None:
        self.sender.queue(webhooks.refund_event(event, refund, email=TEST_EMAIL))
