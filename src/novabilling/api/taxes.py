"""/api/taxes (contract taxes.md). Lenient list, ``limit`` default 50."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from novabilling.kit.pagination import PageOut, envelope, parse_lenient
from novabilling.kit.wire import MessageOut
from novabilling.taxes import schemas, service
from novabilling.taxes.schemas import Assign, TaxCreate, TaxPatch, assignment_out, tax_out
from novabilling.web.deps import RuntimeDep, TenantSession
from novabilling.web.openapi import returns

router = APIRouter(prefix="/api/taxes", tags=["taxes"])

DEFAULT_LIMIT = 50
_UNASSIGNED = {
    "customer": "Tax unassigned from customer",
    "plan": "Tax unassigned from plan",
    "charge": "Tax unassigned from charge",
}


@router.post(
    "",
    status_code=201,
    summary="Create a tax rate",
    responses=returns(schemas.TaxOut, 201, errors={409: "code already used by another tax"}),
)
async def create_tax(
    session: TenantSession, body: TaxCreate, runtime: RuntimeDep
) -> dict[str, Any]:
    return tax_out(await service.create_tax(session, body=body, clock=runtime.clock))


@router.get("", summary="List tax rates (paginated)", responses=returns(PageOut[schemas.TaxOut]))
async def list_taxes(
    session: TenantSession,
    request: Request,
    applied_by_default: Annotated[str | None, Query(alias="appliedByDefault")] = None,
) -> dict[str, Any]:
    params = parse_lenient(request.query_params, default_limit=DEFAULT_LIMIT)
    taxes, total = await service.list_taxes(
        session, applied_by_default=applied_by_default, page=params.page, limit=params.limit
    )
    return envelope([tax_out(t) for t in taxes], total, params.page, params.limit)


async def _taxes_of(session: TenantSession, kind: str, owner_id: str) -> list[dict[str, Any]]:
    return [tax_out(t) for t in await service.taxes_of(session, kind, owner_id)]


async def _assign(
    session: TenantSession, kind: str, owner_id: str, body: Assign, runtime: RuntimeDep
) -> dict[str, Any]:
    row = await service.assign(session, kind, owner_id, tax_id=body.tax_id, clock=runtime.clock)
    return assignment_out(row, service.KINDS[kind].wire, owner_id)


async def _unassign(
    session: TenantSession, kind: str, owner_id: str, tax_id: str
) -> dict[str, str]:
    await service.unassign(session, kind, owner_id, tax_id)
    return {"message": _UNASSIGNED[kind]}


@router.get(
    "/customer/{customer_id}",
    summary="List the taxes assigned to a customer",
    responses=returns(list[schemas.TaxOut]),
)
async def customer_taxes(session: TenantSession, customer_id: str) -> list[dict[str, Any]]:
    return await _taxes_of(session, "customer", customer_id)


@router.post(
    "/customer/{customer_id}",
    status_code=201,
    summary="Assign a tax to a customer",
    responses=returns(schemas.CustomerTaxOut, 201, errors={409: "Already assigned"}),
)
async def assign_customer_tax(
    session: TenantSession, customer_id: str, body: Assign, runtime: RuntimeDep
) -> dict[str, Any]:
    return await _assign(session, "customer", customer_id, body, runtime)


@router.delete(
    "/customer/{customer_id}/{tax_id}",
    summary="Unassign a tax from a customer",
    responses=returns(MessageOut),
)
async def unassign_customer_tax(
    session: TenantSession, customer_id: str, tax_id: str
) -> dict[str, str]:
    return await _unassign(session, "customer", customer_id, tax_id)


@router.get(
    "/plan/{plan_id}",
    summary="List the taxes assigned to a plan",
    responses=returns(list[schemas.TaxOut]),
)
async def plan_taxes(session: TenantSession, plan_id: str) -> list[dict[str, Any]]:
    return await _taxes_of(session, "plan", plan_id)


@router.post(
    "/plan/{plan_id}",
    status_code=201,
    summary="Assign a tax to a plan",
    responses=returns(schemas.PlanTaxOut, 201, errors={409: "Already assigned"}),
)
async def assign_plan_tax(
    session: TenantSession, plan_id: str, body: Assign, runtime: RuntimeDep
) -> dict[str, Any]:
    return await _assign(session, "plan", plan_id, body, runtime)


@router.delete(
    "/plan/{plan_id}/{tax_id}", summary="Unassign a tax from a plan", responses=returns(MessageOut)
)
async def unassign_plan_tax(session: TenantSession, plan_id: str, tax_id: str) -> dict[str, str]:
    return await _unassign(session, "plan", plan_id, tax_id)


@router.get(
    "/charge/{charge_id}",
    summary="List the taxes assigned to a charge",
    responses=returns(list[schemas.TaxOut]),
)
async def charge_taxes(session: TenantSession, charge_id: str) -> list[dict[str, Any]]:
    return await _taxes_of(session, "charge", charge_id)


@router.post(
    "/charge/{charge_id}",
    status_code=201,
    summary="Assign a tax to a charge",
    responses=returns(schemas.ChargeTaxOut, 201, errors={409: "Already assigned"}),
)
async def assign_charge_tax(
    session: TenantSession, charge_id: str, body: Assign, runtime: RuntimeDep
) -> dict[str, Any]:
    return await _assign(session, "charge", charge_id, body, runtime)


@router.delete(
    "/charge/{charge_id}/{tax_id}",
    summary="Unassign a tax from a charge",
    responses=returns(MessageOut),
)
async def unassign_charge_tax(
    session: TenantSession, charge_id: str, tax_id: str
) -> dict[str, str]:
    return await _unassign(session, "charge", charge_id, tax_id)


@router.get("/{tax_id}", summary="Get a tax rate", responses=returns(schemas.TaxOut))
async def get_tax(session: TenantSession, tax_id: str) -> dict[str, Any]:
    return tax_out(await service.get_tax(session, tax_id))


@router.patch(
    "/{tax_id}", summary="Update a tax rate (code is immutable)", responses=returns(schemas.TaxOut)
)
async def update_tax(
    session: TenantSession, tax_id: str, body: TaxPatch, runtime: RuntimeDep
) -> dict[str, Any]:
    return tax_out(await service.update_tax(session, tax_id, body=body, clock=runtime.clock))


@router.delete("/{tax_id}", summary="Delete a tax rate", responses=returns(MessageOut))
async def delete_tax(session: TenantSession, tax_id: str) -> dict[str, str]:
    await service.delete_tax(session, tax_id)
    return {"message": "Tax deleted successfully"}
