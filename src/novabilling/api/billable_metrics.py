"""/api/billable-metrics (contract billable-metrics.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from novabilling.usage import metric_schemas as schemas
from novabilling.usage import metrics as service
from novabilling.usage.charge_schemas import charge_row_out
from novabilling.web.deps import RuntimeDep, TenantSession

router = APIRouter(prefix="/api/billable-metrics", tags=["billable-metrics"])


@router.post("", status_code=201)
async def create_metric(
    session: TenantSession, body: schemas.MetricCreate, runtime: RuntimeDep
) -> dict[str, Any]:
    metric, filters = await service.create_metric(session, body=body, clock=runtime.clock)
    return schemas.metric_out(metric, filters)


@router.get("")
async def list_metrics(session: TenantSession) -> list[dict[str, Any]]:
    return [
        {**schemas.metric_out(metric, filters), "_count": {"charges": count}}
        for metric, filters, count in await service.list_metrics(session)
    ]


@router.get("/{metric_id}")
async def get_metric(session: TenantSession, metric_id: str) -> dict[str, Any]:
    metric, filters, charges = await service.metric_detail(session, metric_id)
    return {**schemas.metric_out(metric, filters), "charges": [charge_row_out(c) for c in charges]}


@router.patch("/{metric_id}")
async def update_metric(
    session: TenantSession, metric_id: str, body: schemas.MetricPatch, runtime: RuntimeDep
) -> dict[str, Any]:
    metric, filters = await service.update_metric(
        session, metric_id, body=body, clock=runtime.clock
    )
    return schemas.metric_out(metric, filters)


@router.delete("/{metric_id}")
async def delete_metric(session: TenantSession, metric_id: str) -> dict[str, str]:
    await service.delete_metric(session, metric_id)
    return {"message": "Billable metric deleted successfully"}
