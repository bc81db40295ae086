"""/api/charges (contract charges.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from novabilling.plans.schemas import plan_out
from novabilling.usage import charges as service
from novabilling.usage.charge_schemas import ChargeCreate, ChargePatch, charge_out
from novabilling.usage.metric_schemas import metric_out
from novabilling.web.deps import RuntimeDep, TenantSession

router = APIRouter(prefix="/api/charges", tags=["charges"])


def _out(view: service.ChargeView) -> dict[str, Any]:
    """Charge + ``billableMetric`` (without filters) + ranges + filters."""
    return charge_out(
        view.charge,
        metric=metric_out(view.metric, None),
        ranges=view.ranges,
        filters=view.filters,
    )


@router.post("", status_code=201)
async def create_charge(
    session: TenantSession, body: ChargeCreate, runtime: RuntimeDep
) -> dict[str, Any]:
    return _out(await service.create_charge(session, body=body, clock=runtime.clock))


@router.get("")
async def list_charges(session: TenantSession, planId: str | None = None) -> list[dict[str, Any]]:  # noqa: N803
    return [_out(v) for v in await service.list_charges(session, plan_id=planId)]


@router.get("/plan/{plan_id}")
async def charges_of_plan(session: TenantSession, plan_id: str) -> list[dict[str, Any]]:
    return [_out(v) for v in await service.charges_of_plan(session, plan_id)]


@router.get("/{charge_id}")
async def get_charge(session: TenantSession, charge_id: str) -> dict[str, Any]:
    view, plan = await service.charge_detail(session, charge_id)
    return charge_out(
        view.charge,
        metric=metric_out(view.metric, view.metric_filters),
        ranges=view.ranges,
        filters=view.filters,
        plan=plan_out(plan),
    )


@router.patch("/{charge_id}")
async def update_charge(
    session: TenantSession, charge_id: str, body: ChargePatch, runtime: RuntimeDep
) -> dict[str, Any]:
    return _out(await service.update_charge(session, charge_id, body=body, clock=runtime.clock))


@router.delete("/{charge_id}")
async def delete_charge(session: TenantSession, charge_id: str) -> dict[str, str]:
    await service.delete_charge(session, charge_id)
    return {"message": "Charge deleted successfully"}
