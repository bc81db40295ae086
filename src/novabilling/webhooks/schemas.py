"""Wire shape of the delivery log (``GET /api/webhooks/deliveries``)."""

from __future__ import annotations

from typing import Any, Literal

from novabilling.kit import timestamps
from novabilling.kit.wire import FreeForm, Timestamp, WireOut
from novabilling.webhooks.models import WebhookDelivery

DELIVERY_FILTERS = ("status", "event", "dateFrom", "dateTo")


class DeliveryPayloadOut(WireOut):
    """The body as emitted (and as every attempt sends it)."""

    event: str
    data: FreeForm
    timestamp: Timestamp


class DeliveryOut(WireOut):
    """One outbound webhook delivery: ``attempts`` over all its tries (retries included),
    ``lastResponseCode`` the receiver's last HTTP status (null: no answer, see
    ``lastError``)."""

    id: str
    event: str
    status: Literal["PENDING", "SUCCEEDED", "FAILED"]
    attempts: int
    last_response_code: int | None
    last_error: str | None
    url: str | None
    payload: DeliveryPayloadOut
    created_at: Timestamp
    updated_at: Timestamp
    last_attempt_at: Timestamp | None
    delivered_at: Timestamp | None


def _instant(value: Any) -> str | None:
    return timestamps.to_wire(value) if value is not None else None


def delivery_out(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "lastResponseCode": row.last_response_code,
        "lastError": row.last_error,
        "url": row.url,
        "payload": {"event": row.event, "data": row.data, "timestamp": row.event_timestamp},
        "createdAt": timestamps.to_wire(row.created_at),
        "updatedAt": timestamps.to_wire(row.updated_at),
        "lastAttemptAt": _instant(row.last_attempt_at),
        "deliveredAt": _instant(row.delivered_at),
    }
