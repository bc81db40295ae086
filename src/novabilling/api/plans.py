"""/api/plans: plans and their per-currency prices (contract plans.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from novabilling.billing import views
from novabilling.kit.wire import MessageOut
from novabilling.plans import schemas, service
from novabilling.web.deps import RuntimeDep, TenantSession
from novabilling.web.openapi import returns

router = APIRouter(prefix="/api/plans", tags=["plans"])


@router.post(
    "",
    status_code=201,
    summary="Create a plan with its prices",
    responses=returns(schemas.PlanOut, 201, errors={409: "code already used by another plan"}),
)
async def create_plan(
    session: TenantSession, body: schemas.PlanCreate, runtime: RuntimeDep
) -> dict[str, Any]:
    plan, prices = await service.create_plan(session, body=body, clock=runtime.clock)
    return schemas.plan_out(plan, prices)


@router.get("", summary="List plans with their prices", responses=returns(list[schemas.PlanOut]))
async def list_plans(
    session: TenantSession, is_active: Annotated[str | None, Query(alias="isActive")] = None
) -> list[dict[str, Any]]:
    active = None if is_active is None else is_active == "true"
    plans = await service.list_plans(session, is_active=active)
    return [schemas.plan_out(plan, prices) for plan, prices in plans]


@router.get(
    "/{plan_id}",
    summary="Get a plan with its prices and subscription count",
    responses=returns(schemas.PlanDetailOut),
)
async def get_plan(session: TenantSession, plan_id: str) -> dict[str, Any]:
    return await views.plan_detail(session, plan_id)


@router.patch(
    "/{plan_id}", summary="Update a plan (code is immutable)", responses=returns(schemas.PlanOut)
)
async def update_plan(
    session: TenantSession, plan_id: str, body: schemas.PlanPatch, runtime: RuntimeDep
) -> dict[str, Any]:
    plan, prices = await service.update_plan(session, plan_id, body=body, clock=runtime.clock)
    return schemas.plan_out(plan, prices)


@router.delete(
    "/{plan_id}",
    summary="Delete a plan",
    responses=returns(MessageOut, errors={400: "The plan has subscriptions"}),
)
async def delete_plan(session: TenantSession, plan_id: str) -> dict[str, str]:
    await service.delete_plan(session, plan_id)
    return {"message": "Plan deleted successfully"}


@router.post(
    "/{plan_id}/prices",
    status_code=201,
    summary="Add a price in another currency",
    responses=returns(
        schemas.PriceOut, 201, errors={409: "The plan already has a price in that currency"}
    ),
)
async def add_price(
    session: TenantSession, plan_id: str, body: schemas.PriceIn, runtime: RuntimeDep
) -> dict[str, Any]:
    price = await service.add_price(
        session, plan_id, currency=body.currency, amount=body.amount, clock=runtime.clock
    )
    return schemas.price_out(price)


@router.patch(
    "/{plan_id}/prices/{price_id}",
    summary="Change a price's amount",
    responses=returns(schemas.PriceOut),
)
async def update_price(
    session: TenantSession,
    plan_id: str,
    price_id: str,
    body: schemas.PriceUpdate,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    price = await service.update_price(
        session, plan_id, price_id, amount=body.amount, clock=runtime.clock
    )
    return schemas.price_out(price)


@router.delete(
    "/{plan_id}/prices/{price_id}", summary="Delete a price", responses=returns(MessageOut)
)
async def delete_price(session: TenantSession, plan_id: str, price_id: str) -> dict[str, str]:
    await service.delete_price(session, plan_id, price_id)
    return {"message": "Plan price deleted successfully"}
