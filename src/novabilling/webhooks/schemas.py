"""Wire shape of the delivery log (``GET /api/webhooks/deliveries``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from novabilling.kit import timestamps
from novabilling.kit.wire import FreeForm, Timestamp, WireOut
from novabilling.webhooks.models import WebhookDelivery

DELIVERY_FILTERS = ("status", "event", "dateFrom", "dateTo")


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


class DeliveryPayloadOut(WireOut):
    """What was (or will be) POSTed to the tenant's webhook URL."""

    event: str
    data: FreeForm
    timestamp: str


class DeliveryOut(WireOut):
    """One outbound webhook event and its delivery attempts."""

    id: str
    event: str = Field(examples=["invoice.paid"])
    status: str
    attempts: int
    last_response_code: int | None
    last_error: str | None
    url: str | None
    payload: DeliveryPayloadOut
    created_at: Timestamp
    updated_at: Timestamp
    last_attempt_at: Timestamp | None
    delivered_at: Timestamp | None
