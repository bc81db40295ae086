"""Wire shapes of /api/events (contract events.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, field_validator

from novabilling.kit.timestamps import InstantInput, to_wire
from novabilling.kit.wire import WireModel, WireOut, bounded_freeform

MAX_BATCH = 100
TransactionId = Annotated[str, StringConstraints(min_length=1, max_length=255)]
SubscriptionRef = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class EventIn(WireModel):
    transaction_id: TransactionId
    subscription_id: SubscriptionRef
    code: Code
    timestamp: InstantInput | None = None
    properties: dict[str, Any] | None = None

    @field_validator("properties", mode="after")
    @classmethod
    def _bounded_freeform(cls, value: Any) -> Any:
        """WireModel's check of every field, on the one object field (up to 100 elements a
        request: one call each, not five)."""
        return bounded_freeform(value)


class EventBatchIn(WireModel):
    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_BATCH)]


class EventOut(BaseModel):
    """Event object (documentation of the answers; the routes build dicts)."""

    id: str
    transactionId: str  # noqa: N815 - wire names
    subscriptionId: str  # noqa: N815
    code: str
    timestamp: str
    properties: dict[str, Any]
    createdAt: str  # noqa: N815


class BatchResult(BaseModel):
    transactionId: str  # noqa: N815
    status: str = Field(description="created, duplicate or error")
    error: str | None = Field(default=None, description="Why the element was refused")


class BatchOut(BaseModel):
    total: int
    created: int
    duplicates: int
    errors: int
    results: list[BatchResult]


def event_out(
    *,
    id: str,
    transaction_id: str,
    subscription_id: str,
    code: str,
    timestamp: datetime,
    properties: dict[str, Any] | None,
    created_at: datetime,
) -> dict[str, Any]:
    return {
        "id": id,
        "transactionId": transaction_id,
        "subscriptionId": subscription_id,
        "code": code,
        "timestamp": to_wire(timestamp),
        "properties": properties if properties is not None else {},
        "createdAt": to_wire(created_at),
    }


class EventPageMeta(WireOut):
    total: int
    page: int
    per_page: int
    total_pages: int


class EventPageOut(WireOut):
    data: list[EventOut]
    meta: EventPageMeta
