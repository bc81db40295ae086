"""/api/billable-metrics (contract billable-metrics.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from novabilling.kit.wire import MessageOut
from novabilling.usage import metric_schemas as schemas
from novabilling.usage import metrics as service
from novabilling.usage.charge_schemas import ChargeRowOut, charge_row_out
from novabilling.web.deps import RuntimeDep, TenantSession
from novabilling.web.openapi import returns


class MetricDetailOut(schemas.MetricOut):
    """GET /api/billable-metrics/{id}: the metric with its charges."""

    charges: list[ChargeRowOut]


router = APIRouter(prefix="/api/billable-metrics", tags=["billable-metrics"])


@router.post(
    "",
    status_code=201,
    summary="Create a billable metric",
    responses=returns(schemas.MetricOut, 201, errors={409: "code already used by another metric"}),
)
async def create_metric(
    session: TenantSession, body: schemas.MetricCreate, runtime: RuntimeDep
) -> dict[str, Any]:
    metric, filters = await service.create_metric(session, body=body, clock=runtime.clock)
    return schemas.metric_out(metric, filters)


@router.get(
    "",
    summary="List billable metrics with their charge counts",
    responses=returns(list[schemas.MetricListedOut]),
)
async def list_metrics(session: TenantSession) -> list[dict[str, Any]]:
    return [
        {**schemas.metric_out(metric, filters), "_count": {"charges": count}}
        for metric, filters, count in await service.list_metrics(session)
    ]


@router.get(
    "/{metric_id}",
    summary="Get a billable metric with its charges",
    responses=returns(MetricDetailOut),
)
async def get_metric(session: TenantSession, metric_id: str) -> dict[str, Any]:
    metric, filters, charges = await service.metric_detail(session, metric_id)
    return {**schemas.metric_out(metric, filters), "charges": [charge_row_out(c) for c in charges]}


@router.patch(
    "/{metric_id}",
    summary="Update a billable metric (code and aggregation are immutable)",
    responses=returns(schemas.MetricOut),
)
async def update_metric(
    session: TenantSession, metric_id: str, body: schemas.MetricPatch, runtime: RuntimeDep
) -> dict[str, Any]:
    metric, filters = await service.update_metric(
        session, metric_id, body=body, clock=runtime.clock
    )
    return schemas.metric_out(metric, filters)


@router.delete(
    "/{metric_id}",
    summary="Delete a billable metric",
    responses=returns(MessageOut, errors={400: "The metric is used by a charge"}),
)
async def delete_metric(session: TenantSession, metric_id: str) -> dict[str, str]:
    await service.delete_metric(session, metric_id)
    return {"message": "Billable metric deleted successfully"}
