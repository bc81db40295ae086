"""The delivery log of outbound webhooks (tenant database): one row per emitted event
that reached the delivery job, updated on every attempt (``webhooks.deliveries``).

``status``: ``PENDING`` (queued or between retries), ``SUCCEEDED`` (a 2xx answer),
``FAILED`` (the last attempt failed; ``POST /api/webhooks/deliveries/{id}/retry`` queues
it again). ``data`` and ``event_timestamp`` are the body as emitted, so a retry sends the
very same bytes (and signature).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import TenantBase, id_column

__all__ = ["FAILED", "PENDING", "STATUSES", "SUCCEEDED", "WebhookDelivery"]

PENDING = "PENDING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
STATUSES = (PENDING, SUCCEEDED, FAILED)


class WebhookDelivery(TenantBase):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_created_at", "created_at"),
        Index("ix_webhook_deliveries_status_created_at", "status", "created_at"),
        Index("ix_webhook_deliveries_event_created_at", "event", "created_at"),
    )

    id: Mapped[str] = id_column()
    event: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_response_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(String(2048))
    data: Mapped[dict[str, Any]]
    event_timestamp: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
