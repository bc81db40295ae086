"""Flutterwave webhooks: the v3 ``charge.completed`` envelope or the legacy flat camelCase
body, with ``verif-hash`` (the secret hash itself) and/or ``flutterwave-signature``
(base64 HMAC-SHA256 of the body keyed by the secret hash)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from novabilling.simulators.flutterwave.records import CREATED_AT, Transaction, flw_ref, number


def signature_headers(secret_hash: str | None, mode: str, body: bytes) -> dict[str, str]:
    """``mode``: "both", "verif-hash" or "signature"."""
    if not secret_hash:
        return {}
    headers: dict[str, str] = {}
    if mode in ("both", "verif-hash"):
        headers["verif-hash"] = secret_hash
    if mode in ("both", "signature"):
        mac = hmac.new(secret_hash.encode(), body, hashlib.sha256).digest()
        headers["flutterwave-signature"] = base64.b64encode(mac).decode()
    return headers


def charge_completed(tx: Transaction, *, legacy: bool) -> dict[str, Any]:
    if legacy:
        return {
            "id": tx.id,
            "txRef": tx.tx_ref,
            "flwRef": flw_ref(tx.tx_ref),
            "orderRef": f"URF_{tx.id}",
            "createdAt": CREATED_AT,
            "amount": number(tx.amount),
            "charged_amount": number(tx.amount),
            "status": tx.status,
            "IP": "127.0.0.1",
            "currency": tx.currency,
            "customer": {"id": 2362222, "fullName": "Sim Customer", "email": tx.email},
            "entity": {"card6": "553188", "card_last4": "2950"},
            "event.type": "CARD_TRANSACTION",
        }
    return {
        "event": "charge.completed",
        "data": tx.as_data(with_token=False),
        "event.type": "CARD_TRANSACTION",
    }
