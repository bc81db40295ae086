"""/api/webhooks/deliveries: the outbound webhook delivery log (issue 12) and its retry.
Thin: parse, call one service, render."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from novabilling.errors import Invalid
from novabilling.kit.pagination import PageOut, PageParams, envelope
from novabilling.kit.timestamps import query_instant
from novabilling.web.deps import DataPrincipal, RuntimeDep, TenantProfileDep, TenantSession
from novabilling.web.openapi import returns
from novabilling.web.paging import strict_page
from novabilling.webhooks import schemas, service
from novabilling.webhooks.models import STATUSES

router = APIRouter(tags=["webhooks"])
DeliveryPage = Annotated[PageParams, Depends(strict_page(*schemas.DELIVERY_FILTERS))]


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    status = q.get("status")
    if status is not None and status not in STATUSES:
        raise Invalid("status", f"status must be one of: {', '.join(STATUSES)}")
    event = q.get("event")
    if event is not None and not 0 < len(event) <= 64:
        raise Invalid("event", "event must be an event name such as invoice.paid")
    out: dict[str, Any] = {"status": status, "event": event}
    for wire, key in (("dateFrom", "date_from"), ("dateTo", "date_to")):
        out[key] = query_instant(wire, q.get(wire))
    return out


@router.get(
    "/api/webhooks/deliveries",
    summary="List outbound webhook deliveries (paginated, newest first)",
    responses=returns(PageOut[schemas.DeliveryOut]),
)
async def list_deliveries(
    session: TenantSession, params: DeliveryPage, request: Request
) -> dict[str, Any]:
    rows, total = await service.list_deliveries(
        session, page=params.page, limit=params.limit, **_filters(request)
    )
    return envelope([schemas.delivery_out(r) for r in rows], total, params.page, params.limit)


@router.get(
    "/api/webhooks/deliveries/{delivery_id}",
    summary="Get an outbound webhook delivery",
    responses=returns(schemas.DeliveryOut),
)
async def get_delivery(delivery_id: str, session: TenantSession) -> dict[str, Any]:
    return schemas.delivery_out(await service.get_delivery(session, delivery_id))


@router.post(
    "/api/webhooks/deliveries/{delivery_id}/retry",
    status_code=201,
    summary="Send an outbound webhook delivery again (same body and signature)",
    responses=returns(schemas.DeliveryOut, 201),
)
async def retry_delivery(
    delivery_id: str,
    session: TenantSession,
    principal: DataPrincipal,
    runtime: RuntimeDep,
    tenant: TenantProfileDep,
) -> dict[str, Any]:
    row = await service.retry_delivery(
        session,
        tenant_id=principal.tenant_id,
        delivery_id=delivery_id,
        webhook_url=tenant.webhook_url,
        clock=runtime.clock,
    )
    return schemas.delivery_out(row)
