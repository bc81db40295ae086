"""/api/charges (contract charges.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from novabilling.kit.wire import MessageOut
from novabilling.plans.schemas import PlanOut, plan_out
from novabilling.usage import charges as service
from novabilling.usage.charge_schemas import ChargeCreate, ChargeOut, ChargePatch, charge_out
from novabilling.usage.metric_schemas import metric_out
from novabilling.web.deps import RuntimeDep, TenantSession
from novabilling.web.openapi import returns


class ChargeDetailOut(ChargeOut):
    """GET /api/charges/{id}: with the metric's filters and the plan."""

    plan: PlanOut


router = APIRouter(prefix="/api/charges", tags=["charges"])


def _out(view: service.ChargeView) -> dict[str, Any]:
    """Charge + ``billableMetric`` (without filters) + ranges + filters."""
    return charge_out(
        view.charge,
        metric=metric_out(view.metric, None),
        ranges=view.ranges,
        filters=view.filters,
    )


@router.post(
    "",
    status_code=201,
    summary="Attach a usage charge to a plan",
    responses=returns(ChargeOut, 201, errors={404: "Unknown plan or billable metric"}),
)
async def create_charge(
    session: TenantSession, body: ChargeCreate, runtime: RuntimeDep
) -> dict[str, Any]:
    return _out(await service.create_charge(session, body=body, clock=runtime.clock))


@router.get("", summary="List charges (optionally of one plan)", responses=returns(list[ChargeOut]))
async def list_charges(session: TenantSession, planId: str | None = None) -> list[dict[str, Any]]:  # noqa: N803
    return [_out(v) for v in await service.list_charges(session, plan_id=planId)]


@router.get("/plan/{plan_id}", summary="List a plan's charges", responses=returns(list[ChargeOut]))
async def charges_of_plan(session: TenantSession, plan_id: str) -> list[dict[str, Any]]:
    return [_out(v) for v in await service.charges_of_plan(session, plan_id)]


@router.get(
    "/{charge_id}",
    summary="Get a charge with its metric (and filters) and plan",
    responses=returns(ChargeDetailOut),
)
async def get_charge(session: TenantSession, charge_id: str) -> dict[str, Any]:
    view, plan = await service.charge_detail(session, charge_id)
    return charge_out(
        view.charge,
        metric=metric_out(view.metric, view.metric_filters),
        ranges=view.ranges,
        filters=view.filters,
        plan=plan_out(plan),
    )


@router.patch(
    "/{charge_id}",
    summary="Update a charge (plan, metric and model are immutable)",
    responses=returns(ChargeOut),
)
async def update_charge(
    session: TenantSession, charge_id: str, body: ChargePatch, runtime: RuntimeDep
) -> dict[str, Any]:
    return _out(await service.update_charge(session, charge_id, body=body, clock=runtime.clock))


@router.delete("/{charge_id}", summary="Delete a charge", responses=returns(MessageOut))
async def delete_charge(session: TenantSession, charge_id: str) -> dict[str, str]:
    await service.delete_charge(session, charge_id)
    return {"message": "Charge deleted successfully"}
