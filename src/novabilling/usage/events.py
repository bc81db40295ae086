"""Reading usage events (contract events.md): one by id, a subscription's by time.
Writing them is ``usage.ingest`` (the intake's lean path)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.errors import NotFound
from novabilling.usage.event_schemas import event_out
from novabilling.usage.models import UsageEvent

__all__ = ["DEFAULT_PER_PAGE", "MAX_PER_PAGE", "EventPage", "get_event", "list_for_subscription"]

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 1000  # contract "Improve: cap perPage"


def wire(event: UsageEvent) -> dict[str, Any]:
    return event_out(
        id=event.id,
        transaction_id=event.transaction_id,
        subscription_id=event.subscription_id,
        code=event.code,
        timestamp=event.timestamp,
        properties=event.properties,
        created_at=event.created_at,
    )


async def get_event(session: AsyncSession, event_id: str) -> dict[str, Any]:
    event = await session.get(UsageEvent, event_id)
    if event is None:
        raise NotFound("Usage event not found")
    return wire(event)


@dataclass(frozen=True)
class EventPage:
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE


def parse_page(query: dict[str, str]) -> EventPage:
    """Lenient: a bad or < 1 value falls back to the default; ``perPage`` capped."""

    def number(name: str, default: int) -> int:
        raw = query.get(name, "")
        text = raw[1:] if raw.startswith("-") else raw
        value = int(raw) if text.isdigit() and len(text) <= 9 else default
        return value if value >= 1 else default

    return EventPage(
        page=number("page", 1), per_page=min(number("perPage", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    )


async def list_for_subscription(
    session: AsyncSession,
    subscription_id: str,
    *,
    code: str | None,
    start: datetime | None,
    end: datetime | None,
    page: EventPage,
) -> dict[str, Any]:
    """Newest ``timestamp`` first (ties by id); ``start``/``end`` inclusive. An unknown
    subscription is an empty list."""
    stmt = select(UsageEvent).where(UsageEvent.subscription_id == subscription_id)
    if code is not None:
        stmt = stmt.where(UsageEvent.code == code)
    if start is not None:
        stmt = stmt.where(UsageEvent.timestamp >= start)
    if end is not None:
        stmt = stmt.where(UsageEvent.timestamp <= end)
    total = int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = await session.scalars(
        stmt.order_by(UsageEvent.timestamp.desc(), UsageEvent.id.desc())
        .limit(page.per_page)
        .offset((page.page - 1) * page.per_page)
    )
    return {
        "data": [wire(e) for e in rows],
        "meta": {
            "total": total,
            "page": page.page,
            "perPage": page.per_page,
            "totalPages": -(-total // page.per_page) if total else 0,
        },
    }
