"""What the Stripe simulator stores (customers, Checkout Sessions, PaymentIntents, refunds,
idempotency answers) and what Stripe does with it: confirm a PaymentIntent with a test
payment method, complete a hosted Checkout, refund, settle refunds later. Every change
queues the event Stripe would send."""

from __future__ import annotations

import re
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any

from novabilling.simulators.base import SimulatorBase, WebhookSender
from novabilling.simulators.http import public
from novabilling.simulators.stripe import webhooks

CUSTOMER = "cus_sim_amina"
PM_SUCCESS = "pm_card_visa"
PM_DECLINE = "pm_card_chargeDeclinedInsufficientFunds"
PM_AUTH_REQUIRED = "pm_card_authenticationRequired"
PM_TIMEOUT = "pm_card_sim_timeout"
DECLINES = {  # test payment method -> (code, decline_code, message)
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    PM_DECLINE: ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    PM_AUTH_REQUIRED: (
        "authentication_required",
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
    ),
}
_SEARCH = re.compile(r"metadata\['([^']+)'\]:'([^']*)'")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class StripeState(SimulatorBase):
    checkout_base = "https://checkout.stripe.com/c/pay"  # the simulator's own page when served

    def __init__(self, *, sender: WebhookSender, now: Callable[[], int]) -> None:
        self.sender = sender
        self.now = now
        self.customers: set[str] = {CUSTOMER}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.attempts: Counter[str] = Counter()

    # -- test helpers ---------------------------------------------------------------------

    def charges_for(self, reference: str) -> int:
        return sum(
            1 for pi in self.intents.values() if pi["metadata"].get("nb_reference") == reference
        )

    def settle(self) -> None:
        """Pending refunds succeed (``refund.updated``)."""
        for refund in self.refunds.values():
            if refund["status"] == "pending":
                refund["status"] = "succeeded"
                self.event("refund.updated", refund, previous={"status": "pending"})

    def find_session(self, reference: str) -> dict[str, Any] | None:
        """A Checkout Session by id or by our ``client_reference_id``."""
        return self.sessions.get(reference) or next(
            (s for s in self.sessions.values() if s["client_reference_id"] == reference), None
        )

    async def complete(self, reference: str, *, success: bool = True) -> dict[str, Any]:
        """What the customer does on the hosted page (also ``POST /_sim/pay/{ref}``)."""
        session = self.find_session(reference)
        if session is None:
            raise KeyError(f"no Checkout Session for {reference!r}")
        customer = session["customer"] or new_id("cus")
        self.customers.add(customer)
        pm = new_id("pm")
        pi_data = session["_payment_intent_data"]
        intent = self.new_intent(
            amount=session["amount_total"],
            currency=session["currency"],
            customer=customer,
            payment_method=pm,
            metadata=pi_data["metadata"],
        )
        intent["setup_future_usage"] = pi_data.get("setup_future_usage")
        if success:
            session.update(
                status="complete",
                payment_status="paid",
                customer=customer,
                payment_intent=intent["id"],
            )
            self.event("checkout.session.completed", public(session))
            self.event("payment_intent.succeeded", intent)
        else:
            self.fail(intent, *DECLINES["pm_card_chargeDeclined"])
            self.event("payment_intent.payment_failed", intent)
        return session

    # -- Stripe's side --------------------------------------------------------------------

    def event(
        self, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> None:
        event = webhooks.event(type_, obj, previous, event_id=new_id("evt"), created=self.now())
        self.sender.queue(event)

    def new_session(
        self, fields: dict[str, Any], *, payment_intent_data: dict[str, Any]
    ) -> dict[str, Any]:
        """An ``open`` hosted Checkout; ``payment_intent_data`` is kept (hidden) for the
        PaymentIntent that completing it creates."""
        session_id = "cs_test_" + secrets.token_hex(24)
        session: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            **fields,
            "url": f"{self.checkout_base}/{session_id}",
            "livemode": False,
            "created": self.now(),
            "expires_at": self.now() + 86400,
            "_payment_intent_data": payment_intent_data,
        }
        self.sessions[session_id] = session
        return session

    def new_intent(
        self,
        *,
        amount: int,
        currency: str,
        customer: str | None,
        payment_method: str,
        metadata: dict[str, str],
        description: str | None = None,
    ) -> dict[str, Any]:
        pi_id = new_id("pi")
        intent: dict[str, Any] = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount,
            "currency": currency,
            "customer": customer,
            "payment_method": payment_method,
            "status": "succeeded",
            "latest_charge": "ch_" + pi_id[3:],
            "last_payment_error": None,
            "metadata": metadata,
            "description": description,
            "created": self.now(),
            "livemode": False,
            "setup_future_usage": None,
            "capture_method": "automatic",
        }
        self.intents[pi_id] = intent
        return intent

    @staticmethod
    def fail(intent: dict[str, Any], code: str, decline: str, message: str) -> None:
        error = {"type": "card_error", "code": code, "decline_code": decline, "message": message}
        intent.update(status="requires_payment_method", amount_received=0, last_payment_error=error)

    def confirm(self, intent: dict[str, Any]) -> None:
        """Off-session confirmation with the intent's test payment method: ``PM_TIMEOUT``
        stays ``processing``; a decline fails it; anything else has succeeded."""
        pm = intent["payment_method"]
        if pm == PM_TIMEOUT:
            intent["status"] = "processing"
        elif pm in DECLINES:
            self.fail(intent, *DECLINES[pm])
            self.event("payment_intent.payment_failed", intent)
        else:
            self.event("payment_intent.succeeded", intent)

    def refundable(self, intent: dict[str, Any]) -> int:
        """What is left to refund: received minus refunds that have not failed."""
        refunded = sum(
            r["amount"]
            for r in self.refunds.values()
            if r["payment_intent"] == intent["id"] and r["status"] != "failed"
        )
        return int(intent["amount_received"]) - refunded

    def new_refund(self, intent: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        """A ``pending`` refund (``refund.created``); ``settle()`` makes it succeed."""
        refund: dict[str, Any] = {
            "id": new_id("re"),
            "object": "refund",
            "amount": fields["amount"],
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "charge": intent["latest_charge"],
            "reason": fields["reason"],
            "metadata": fields["metadata"],
            "status": "pending",
            "created": self.now(),
            "failure_reason": None,
        }
        self.refunds[refund["id"]] = refund
        self.event("refund.created", dict(refund))
        return refund

    def search_intents(self, query: str) -> list[dict[str, Any]]:
        """``metadata['k']:'v'`` clauses, all of which must match."""
        wanted = dict(_SEARCH.findall(query))
        return [
            pi
            for pi in self.intents.values()
            if all(pi["metadata"].get(k) == v for k, v in wanted.items())
        ]
