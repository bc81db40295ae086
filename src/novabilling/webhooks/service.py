"""The delivery log's use cases: list (filters, newest first), one delivery, and a retry
that queues a delivery again with the body it was emitted with."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.errors import BusinessRule, NotFound
from novabilling.kit.clock import Clock
from novabilling.kit.pagination import paginate
from novabilling.webhooks import outbound
from novabilling.webhooks.models import PENDING, WebhookDelivery

log = structlog.get_logger(__name__)

# A delivery PENDING this long without any attempt lost its job (queue outage): it may be
# retried although PENDING. Three attempts with backoff from 2 s take well under a minute.
STUCK_AFTER = timedelta(minutes=15)


async def list_deliveries(
    session: AsyncSession,
    *,
    page: int,
    limit: int,
    status: str | None = None,
    event: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> tuple[list[WebhookDelivery], int]:
    stmt = select(WebhookDelivery)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    if event is not None:
        stmt = stmt.where(WebhookDelivery.event == event)
    if date_from is not None:
        stmt = stmt.where(WebhookDelivery.created_at >= date_from)
    if date_to is not None:
        stmt = stmt.where(WebhookDelivery.created_at <= date_to)
    rows, total = await paginate(session, stmt, page, limit)
    return list(rows), total


async def get_delivery(session: AsyncSession, delivery_id: str) -> WebhookDelivery:
    row = await session.get(WebhookDelivery, delivery_id)
    if row is None:
        raise NotFound("Webhook delivery not found")
    return row


async def retry_delivery(
    session: AsyncSession,
    *,
    tenant_id: str,
    delivery_id: str,
    webhook_url: str | None,
    clock: Clock,
) -> WebhookDelivery:
    """Queue the delivery again (same body and signature; a fresh set of attempts on the
    same row). Refused while it is still PENDING (unless nothing happened to it for
    ``STUCK_AFTER``: its job was lost) or when no webhookUrl is configured."""
    row = await get_delivery(session, delivery_id)
    if not webhook_url:
        raise BusinessRule("No webhookUrl is configured; set one with PATCH /api/tenants/me")
    now = clock.now()
    if row.status == PENDING and row.updated_at > now - STUCK_AFTER:
        raise BusinessRule("This delivery is still pending; it can be retried once it ends")
    row.status = PENDING
    row.updated_at = now
    await session.flush()
    outbound.requeue(
        tenant_id,
        delivery_id=row.id,
        event=row.event,
        data=dict(row.data),
        timestamp=row.event_timestamp,
        round_=row.attempts,
    )
    log.info("webhook.retry_queued", delivery_id=row.id, webhook_event=row.event)
    return row
