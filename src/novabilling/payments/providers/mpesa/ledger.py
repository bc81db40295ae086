"""What one M-Pesa adapter instance remembers of its own calls: Daraja cannot look a push
up by our reference, and a reversal's outcome only ever arrives as a callback.

Pushes are recorded by the adapter's own calls. Receipts and reversal results come from
unsigned callbacks, so they are recorded only through :meth:`Ledger.accept`, for events
the caller has confirmed (STK query agreed; a reversal we are waiting for) - never while
parsing (issue 14 item 16: a forged callback used to write here).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from novabilling.payments.providers.base import EventKind, Outcome, Refund, WebhookEvent


@dataclass
class Push:
    reference: str
    checkout_request_id: str
    amount_minor: int


@dataclass
class Ledger:
    pushes: dict[str, Push] = field(default_factory=dict)  # by our reference and CheckoutRequestID
    receipts: dict[str, str] = field(default_factory=dict)  # CheckoutRequestID -> receipt
    reversals: dict[str, Refund] = field(default_factory=dict)  # ConversationID -> settled

    def add_push(self, push: Push) -> None:
        self.pushes[push.reference] = self.pushes[push.checkout_request_id] = push

    def accept(self, event: WebhookEvent) -> None:
        """Record a confirmed callback: the receipt of a paid push, a reversal's result."""
        key = event.provider_reference
        if not key or event.outcome not in (Outcome.SUCCEEDED, Outcome.FAILED):
            return
        if event.kind is EventKind.REFUND_UPDATED:
            self.reversals[key] = Refund(
                reference="",
                outcome=event.outcome,
                provider_refund_id=key,
                message=str(event.raw.get("result_desc") or ""),
            )
            return
        receipt = event.raw.get("receipt")
        if event.outcome is Outcome.SUCCEEDED and isinstance(receipt, str) and receipt:
            self.receipts[key] = receipt
