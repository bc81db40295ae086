"""The Flutterwave simulator's records: a hosted payment link and a transaction as
Flutterwave shows it (amounts are MAJOR units, kept as ``Decimal``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

CREATED_AT = "2025-01-01T09:14:34.000Z"


def number(amount: Decimal) -> int | float:
    """JSON edge only: an exact Decimal rendered as a JSON number (``50.25`` / ``5000``)."""
    return int(amount) if amount == amount.to_integral_value() else float(str(amount))


def flw_ref(tx_ref: str) -> str:
    return f"FLW-MOCK-{hashlib.md5(tx_ref.encode()).hexdigest()}"


@dataclass
class Payment:
    tx_ref: str
    amount: Decimal
    currency: str
    email: str
    redirect_url: str
    link: str
    meta: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    phone: str | None = None


@dataclass
class Transaction:
    id: int
    tx_ref: str
    amount: Decimal
    currency: str
    status: str
    email: str
    processor_response: str
    token: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    refunded: Decimal = Decimal(0)
    auth_model: str = "PIN"
    narration: str = "CARD Transaction "

    def as_data(self, *, with_token: bool = True) -> dict[str, Any]:
        card: dict[str, Any] = {
            "first_6digits": "553188",
            "last_4digits": "2950",
            "issuer": "MASTERCARD  CREDIT",
            "country": "NG",
            "type": "MASTERCARD",
            "expiry": "09/32",
        }
        if with_token and self.token:
            card["token"] = self.token
        return {
            "id": self.id,
            "tx_ref": self.tx_ref,
            "flw_ref": flw_ref(self.tx_ref),
            "device_fingerprint": "N/A",
            "amount": number(self.amount),
            "currency": self.currency,
            "charged_amount": number(self.amount),
            "app_fee": 0,
            "merchant_fee": 0,
            "processor_response": self.processor_response,
            "auth_model": self.auth_model,
            "ip": "127.0.0.1",
            "narration": self.narration,
            "status": self.status,
            "payment_type": "card",
            "created_at": CREATED_AT,
            "account_id": 20937,
            "card": card,
            "meta": self.meta or None,
            "customer": {
                "id": 2362222,
                "name": "Sim Customer",
                "phone_number": None,
                "email": self.email,
                "created_at": CREATED_AT,
            },
        }
