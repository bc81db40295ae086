"""Stripe events as Stripe sends them: the ``event`` envelope and the ``Stripe-Signature``
header ``t=<unix>,v1=<hex HMAC-SHA256 of "t." + body>`` with one ``v1`` per secret (as
during a rotation)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

API_VERSION = "2024-12-18.acacia"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, body: bytes) -> dict[str, str]:
    parts = [f"t={timestamp}"] + [f"v1={sign(s, timestamp, body)}" for s in secrets]
    return {"Stripe-Signature": ",".join(parts)}


def event(
    type_: str,
    obj: dict[str, Any],
    previous: dict[str, Any] | None,
    *,
    event_id: str,
    created: int,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous:
        data["previous_attributes"] = previous
    return {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }
