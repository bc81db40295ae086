"""/api/events (contract events.md). Action POSTs answer 201.

The two POSTs are the intake of metered usage, the API's hottest writes, so they are
served by plain Starlette routes (``lean_routes``, mounted by app.py ahead of the API
routers), like the webhook intake: no dependency injection, the body parsed straight into
its model, one call into ``usage.ingest``. Authentication comes first (401 before 400),
then the per-route rate limit (contract README §9); errors use the app's handlers (the
contract body), and the middleware (request id, idempotency keys, size limit) is the same
as everywhere. ``router`` declares the same operations for the OpenAPI document and
serves the two reads.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.routing import Route

from novabilling.errors import BusinessRule, Invalid, NotFound
from novabilling.kit.timestamps import parse_instant
from novabilling.usage import events as service
from novabilling.usage import ingest
from novabilling.usage.event_schemas import (
    BatchOut,
    EventBatchIn,
    EventIn,
    EventOut,
    EventPageOut,
)
from novabilling.web.deps import TenantReadSession, check_rate_limit, data_principal, get_runtime
from novabilling.web.openapi import returns
from novabilling.web.responses import JSONBytes
from novabilling.web.routing import LeanRoute, parse_body

router = APIRouter(prefix="/api/events", tags=["events"])

SINGLE = "/api/events"
BATCH = "/api/events/batch"


def _refusal(outcome: ingest.Outcome) -> Exception:
    text = outcome.error or "Event refused"
    if outcome.status == 404:
        return NotFound(text)
    if outcome.field is not None:
        return Invalid(outcome.field, text)
    return BusinessRule(text)


async def post_event(request: Request) -> JSONBytes:
    principal = await data_principal(request)
    headers = await check_rate_limit(request, SINGLE)
    event = parse_body(EventIn, await request.body())
    [result] = await ingest.ingest(get_runtime(request), principal.tenant_id, [event], detail=True)
    if isinstance(result, ingest.Outcome):
        if result.result == "error":
            raise _refusal(result)
        return JSONBytes(result.event, status_code=201, headers=headers)
    return JSONBytes(result.wire(), status_code=201, headers=headers)


async def post_batch(request: Request) -> JSONBytes:
    principal = await data_principal(request)
    headers = await check_rate_limit(request, BATCH)
    batch = parse_body(EventBatchIn, await request.body())
    results = await ingest.ingest(get_runtime(request), principal.tenant_id, batch.events)
    return JSONBytes(ingest.batch_body(results), status_code=201, headers=headers)


def lean_routes() -> list[Route]:
    return [
        LeanRoute(SINGLE, post_event, methods=["POST"], include_in_schema=False),
        LeanRoute(BATCH, post_batch, methods=["POST"], include_in_schema=False),
    ]


@router.post(
    "",
    status_code=201,
    response_model=EventOut,
    summary="Ingest one usage event (idempotent by transactionId)",
    responses={404: {"description": "Unknown subscription or metric code"}},
)
async def create_event(body: EventIn, request: Request) -> JSONBytes:
    """A repeated ``transactionId`` returns the stored event unchanged (201). 400: a
    CANCELED subscription, a timestamp before the subscription started or more than 5
    minutes ahead, a non-numeric ``properties[fieldName]`` for SUM, MAX, LATEST and
    WEIGHTED_SUM. Served by the lean route ahead of this one (same answers)."""
    return await post_event(request)


@router.post(
    "/batch",
    status_code=201,
    response_model=BatchOut,
    summary="Ingest 1-100 usage events; one result per element (created, duplicate, error)",
)
async def create_batch(body: EventBatchIn, request: Request) -> JSONBytes:
    """Elements are independent: an unknown subscription or code, or any refusal of the
    single route, is an ``error`` result, never an HTTP error; an invalid element (or 0 or
    more than 100 elements) is a 400 for the whole batch. Served by the lean route ahead
    of this one (same answers)."""
    return await post_batch(request)


def _instant(value: str | None, field: str) -> Any:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise Invalid(field, f"{field} {exc}") from None


@router.get(
    "/subscription/{subscription_id}",
    summary="List a subscription's usage events (paginated, newest first)",
    responses=returns(EventPageOut),
)
async def list_events(
    session: TenantReadSession,
    subscription_id: str,
    request: Request,
    code: str | None = None,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    return await service.list_for_subscription(
        session,
        subscription_id,
        code=code,
        start=_instant(start, "from"),
        end=_instant(end, "to"),
        page=service.parse_page(dict(request.query_params)),
    )


@router.get("/{event_id}", summary="Get a usage event", responses=returns(EventOut))
async def get_event(session: TenantReadSession, event_id: str) -> dict[str, Any]:
    return await service.get_event(session, event_id)
