"""Paystack webhooks as Paystack sends them: ``x-paystack-signature`` = hex
HMAC-SHA512(secret key, raw body); ``charge.success`` and ``refund.*`` bodies."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

SIGNATURE_HEADER = "x-paystack-signature"


def sign(secret_key: str, body: bytes) -> str:
    return hmac.new(secret_key.encode(), body, hashlib.sha512).hexdigest()


def charge_success(data: dict[str, Any]) -> dict[str, Any]:
    return {"event": "charge.success", "data": data}


def refund_event(event: str, refund: dict[str, Any], *, email: str) -> dict[str, Any]:
    data = {
        "status": refund["status"],
        "transaction_reference": refund["transaction"]["reference"],
        "refund_reference": refund["refund_reference"],
        "amount": str(refund["amount"]),  # a string in Paystack's refund events
        "currency": refund["currency"],
        "processor": "mpgs_zen",
        "customer": {"first_name": "Amina", "last_name": "Okafor", "email": email},
        "integration": refund["integration"],
        "domain": "test",
    }
    return {"event": event, "data": data}
