"""Daraja callbacks -> :class:`WebhookEvent`. They are unsigned: only the shape is checked
and every event is marked ``raw["needs_confirmation"] = True`` (confirm with the STK query).
Parsing changes nothing: a confirmed event is recorded with ``Ledger.accept`` (the intake
calls ``MpesaProvider.accept_callback`` once the provider agreed).

* STK callback ``{"Body": {"stkCallback": ...}}``: event id
  ``"<CheckoutRequestID>:<ResultCode>"``; the receipt (``MpesaReceiptNumber``, needed for a
  reversal) is reported in ``raw["receipt"]``.
* Reversal ``{"Result": ...}``: ``REFUND_UPDATED``; ``R000001`` (already reversed) counts
  as succeeded: the money is back either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from novabilling.payments.providers.base import (
    EventKind,
    Outcome,
    SignatureError,
    WebhookEvent,
)
from novabilling.payments.providers.mpesa.client import parse_json
from novabilling.payments.providers.mpesa.fields import result_outcome
from novabilling.payments.providers.mpesa.ledger import Ledger


def parse_callback(body: bytes, *, provider: str, ledger: Ledger) -> WebhookEvent:
    """The normalised event; ``ledger`` is only read (our reference of a known push)."""
    payload = parse_json(body)
    envelope = payload.get("Body")
    callback = envelope.get("stkCallback") if isinstance(envelope, Mapping) else None
    if isinstance(callback, Mapping):
        return stk_event(callback, provider=provider, ledger=ledger)
    result = payload.get("Result") if payload else None
    if isinstance(result, Mapping):
        return reversal_event(result, provider=provider)
    raise SignatureError("not an M-Pesa STK callback or Result body")


def _minor(amount: Any) -> int | None:
    """A callback ``Amount`` (whole shillings) in cents; None when absent or fractional."""
    if amount is None or isinstance(amount, bool):
        return None
    scaled = Decimal(str(amount)) * 100
    return int(scaled) if scaled == scaled.to_integral_value() else None


def stk_event(callback: Mapping[str, Any], *, provider: str, ledger: Ledger) -> WebhookEvent:
    checkout_request_id = callback.get("CheckoutRequestID")
    code = callback.get("ResultCode")
    if not isinstance(checkout_request_id, str) or isinstance(code, bool) or code is None:
        raise SignatureError("STK callback without CheckoutRequestID/ResultCode")
    try:
        code = int(code)
    except (TypeError, ValueError) as exc:
        raise SignatureError("STK callback ResultCode is not a number") from exc
    items = (callback.get("CallbackMetadata") or {}).get("Item") or []
    meta = {i["Name"]: i.get("Value") for i in items if isinstance(i, Mapping) and "Name" in i}
    receipt = meta.get("MpesaReceiptNumber")
    push = ledger.pushes.get(checkout_request_id)
    return WebhookEvent(
        provider=provider,
        event_id=f"{checkout_request_id}:{code}",
        kind=EventKind.PAYMENT_SUCCEEDED if code == 0 else EventKind.PAYMENT_FAILED,
        reference=push.reference if push else None,
        outcome=result_outcome(code),
        amount_minor=_minor(meta.get("Amount")),
        currency="KES",
        provider_reference=checkout_request_id,
        raw={
            "needs_confirmation": True,  # unsigned: confirm with verify_transaction
            "result_code": code,
            "result_desc": callback.get("ResultDesc"),
            "receipt": str(receipt) if receipt else None,
            "phone": meta.get("PhoneNumber"),
            "callback": dict(callback),
        },
    )


def reversal_event(result: Mapping[str, Any], *, provider: str) -> WebhookEvent:
    conversation = result.get("ConversationID")
    code = result.get("ResultCode")
    if not isinstance(conversation, str) or code is None:
        raise SignatureError("Result callback without ConversationID/ResultCode")
    ok = str(code) in ("0", "R000001")  # R000001 = already reversed
    return WebhookEvent(
        provider=provider,
        event_id=f"reversal:{conversation}:{code}",
        kind=EventKind.REFUND_UPDATED,
        reference=None,
        outcome=Outcome.SUCCEEDED if ok else Outcome.FAILED,
        provider_reference=conversation,
        raw={
            "needs_confirmation": True,
            "result_desc": str(result.get("ResultDesc") or code),
            "result": dict(result),
        },
    )
