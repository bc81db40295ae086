"""What one M-Pesa adapter instance remembers of its own calls: Daraja cannot look a push
up by our reference, and a reversal's outcome only ever arrives as a callback."""

from __future__ import annotations

from dataclasses import dataclass, field

from novabilling.payments.providers.base import Refund


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
