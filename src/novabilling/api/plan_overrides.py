"""/api/plan-overrides (contract plan-overrides.md). Lenient list, ``limit`` default 50."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from novabilling.kit.pagination import PageOut, envelope, parse_lenient
from novabilling.kit.wire import MessageOut
from novabilling.usage import overrides as service
from novabilling.usage.override_schemas import (
    OverrideCreate,
    OverrideOut,
    OverridePatch,
    override_out,
)
from novabilling.web.deps import RuntimeDep, TenantSession
from novabilling.web.openapi import returns

router = APIRouter(prefix="/api/plan-overrides", tags=["plan-overrides"])

DEFAULT_LIMIT = 50


def _out(found: service.Embedded) -> dict[str, Any]:
    return override_out(found.override, customer=found.customer, plan=found.plan)


@router.post(
    "",
    status_code=201,
    summary="Override a plan's prices or charges for one customer",
    responses=returns(
        OverrideOut,
        201,
        errors={
            404: "Unknown customer, plan or charge",
            409: "The customer already has an override of that plan",
        },
    ),
)
async def create_override(
    session: TenantSession, body: OverrideCreate, runtime: RuntimeDep
) -> dict[str, Any]:
    return override_out(await service.create_override(session, body=body, clock=runtime.clock))


@router.get("", summary="List plan overrides (paginated)", responses=returns(PageOut[OverrideOut]))
async def list_overrides(
    session: TenantSession,
    request: Request,
    customer_id: Annotated[str | None, Query(alias="customerId")] = None,
    plan_id: Annotated[str | None, Query(alias="planId")] = None,
) -> dict[str, Any]:
    params = parse_lenient(request.query_params, default_limit=DEFAULT_LIMIT)
    found, total = await service.list_overrides(
        session, customer_id=customer_id, plan_id=plan_id, page=params.page, limit=params.limit
    )
    return envelope([_out(f) for f in found], total, params.page, params.limit)


@router.get("/{override_id}", summary="Get a plan override", responses=returns(OverrideOut))
async def get_override(session: TenantSession, override_id: str) -> dict[str, Any]:
    return _out(await service.get_override(session, override_id))


@router.patch(
    "/{override_id}",
    summary="Update a plan override (null clears a field)",
    responses=returns(OverrideOut),
)
async def update_override(
    session: TenantSession, override_id: str, body: OverridePatch, runtime: RuntimeDep
) -> dict[str, Any]:
    item = await service.update_override(session, override_id, body=body, clock=runtime.clock)
    return override_out(item)


@router.delete("/{override_id}", summary="Delete a plan override", responses=returns(MessageOut))
async def delete_override(session: TenantSession, override_id: str) -> dict[str, str]:
    await service.delete_override(session, override_id)
    return {"message": "Plan override deleted successfully"}
