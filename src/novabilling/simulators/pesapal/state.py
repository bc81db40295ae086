"""What the Pesapal simulator stores (bearer tokens, registered IPN URLs, orders by
tracking id) and what Pesapal does with them: the customer pays on the iframe page (card,
so partial refunds are allowed), Pesapal notifies the order's IPN URL with the order's ids
only, a refund request waits for the merchant's approval (``settle()``) and then the order
reads REVERSED. One refund per payment.

The customer email ``EMAIL_TIMEOUT`` makes ``SubmitOrderRequest`` record the order, stall
``hang_seconds`` and answer 504 (the answer is lost, the order exists).
"""

from __future__ import annotations

import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from novabilling.simulators.base import SimulatorBase, WebhookSender

SUPPORTED_CURRENCIES = frozenset({"KES", "UGX", "TZS", "USD", "RWF", "MWK", "ZMW"})
EMAIL_TIMEOUT = "timeout@example.com"
TOKEN_LIFETIME = timedelta(minutes=5)
STATUS_TEXT = {0: "INVALID", 1: "COMPLETED", 2: "FAILED", 3: "REVERSED"}


def iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class PesapalOrder:
    tracking_id: str
    merchant_reference: str
    amount: Decimal
    currency: str
    description: str
    callback_url: str
    notification_id: str
    email: str
    created: str
    status_code: int = 0
    confirmation_code: str = ""
    refund_amount: Decimal | None = None
    refund_approved: bool = False

    def status(self) -> dict[str, Any]:
        paid = self.status_code in (1, 3)
        return {
            "payment_method": "Visa" if self.status_code else "",
            "amount": self.amount,
            "created_date": self.created,
            "confirmation_code": self.confirmation_code,
            "payment_status_description": STATUS_TEXT[self.status_code],
            "description": "Transaction completed" if paid else "",
            "message": "Request processed successfully",
            "payment_account": "444444xxxxxx4444" if self.status_code else "",
            "call_back_url": self.callback_url,
            "status_code": self.status_code,
            "merchant_reference": self.merchant_reference,
            "payment_status_code": "",
            "currency": self.currency,
            "error": {"error_type": None, "code": None, "message": None, "call_back_url": None},
            "status": "200",
        }


class PesapalState(SimulatorBase):
    def __init__(self, *, sender: WebhookSender) -> None:
        self.sender = sender
        self.tokens: dict[str, datetime] = {}
        self.ipns: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, PesapalOrder] = {}
        self.attempts: Counter[str] = Counter()  # SubmitOrderRequest per merchant reference

    # -- test helpers ---------------------------------------------------------------------

    def charges_for(self, reference: str) -> int:
        return len([o for o in self.orders.values() if o.merchant_reference == reference])

    def find(self, key: str) -> PesapalOrder | None:
        return self.orders.get(key) or next(
            (o for o in self.orders.values() if o.merchant_reference == key), None
        )

    def settle(self) -> None:
        """The merchant approves pending refunds: the order reads REVERSED."""
        for order in self.orders.values():
            if order.refund_amount is not None and not order.refund_approved:
                order.refund_approved = True
                order.status_code = 3

    async def complete(self, key: str, *, success: bool = True) -> PesapalOrder:
        """What the customer does on the payment page (also ``POST /_sim/pay/{key}``)."""
        order = self.find(key)
        if order is None:
            raise KeyError(key)
        order.status_code = 1 if success else 2
        if success:
            order.confirmation_code = secrets.token_hex(5).upper()
        self.notify(order)
        return order

    # -- Pesapal's side -------------------------------------------------------------------

    def issue_token(self) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + TOKEN_LIFETIME
        self.tokens[token] = expires
        return token, expires

    def token_valid(self, token: str | None) -> bool:
        expires = self.tokens.get(token or "")
        return expires is not None and expires > datetime.now(UTC)

    def register_ipn(self, url: str, method: str) -> dict[str, Any]:
        for entry in self.ipns.values():
            if entry["url"] == url:
                return entry
        entry = {
            "url": url,
            "created_date": iso(datetime.now(UTC)),
            "ipn_id": str(uuid.uuid4()),
            "notification_type": 1 if method == "POST" else 0,
            "ipn_notification_type_description": method,
            "ipn_status": 1,
            "ipn_status_description": "Active",
            "error": None,
            "status": "200",
        }
        self.ipns[entry["ipn_id"]] = entry
        return entry

    def new_order(self, body: dict[str, Any], amount: Decimal, email: str) -> PesapalOrder:
        order = PesapalOrder(
            tracking_id=str(uuid.uuid4()),
            merchant_reference=str(body["id"]),
            amount=amount,
            currency=str(body["currency"]).upper(),
            description=str(body["description"]),
            callback_url=str(body["callback_url"]),
            notification_id=str(body["notification_id"]),
            email=email,
            created=iso(datetime.now(UTC)),
        )
        self.orders[order.tracking_id] = order
        return order

    def notify(self, order: PesapalOrder) -> None:
        """The IPN names the order only; the merchant asks GetTransactionStatus."""
        ipn = self.ipns.get(order.notification_id)
        self.sender.queue(
            {
                "OrderTrackingId": order.tracking_id,
                "OrderNotificationType": "IPNCHANGE",
                "OrderMerchantReference": order.merchant_reference,
            },
            url=ipn["url"] if ipn else None,
        )

    def request_refund(self, code: str, amount: Decimal) -> tuple[str, str]:
        order = next((o for o in self.orders.values() if o.confirmation_code == code), None)
        if order is None or order.status_code != 1:
            return "500", "Refund rejected: no COMPLETED payment with that confirmation code"
        if order.refund_amount is not None:
            return "500", "Refund rejected: a refund was already requested for this payment"
        if amount <= 0 or amount > order.amount:
            return "500", "Refund rejected: amount exceeds the amount paid"
        order.refund_amount = amount
        return "200", "Refund request successfully"
