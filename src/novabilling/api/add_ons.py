"""/api/add-ons (contract add-ons.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from novabilling.add_ons import schemas, service
from novabilling.kit.pagination import PageOut, PageParams, envelope
from novabilling.kit.wire import MessageOut
from novabilling.web.deps import RuntimeDep, TenantSession
from novabilling.web.openapi import returns
from novabilling.web.paging import lenient_page

router = APIRouter(prefix="/api/add-ons", tags=["add-ons"])

Page = Annotated[PageParams, Depends(lenient_page)]


@router.post(
    "",
    status_code=201,
    summary="Create an add-on with its per-currency prices",
    responses=returns(schemas.AddOnOut, 201),
)
async def create_add_on(
    session: TenantSession, body: schemas.AddOnCreate, runtime: RuntimeDep
) -> dict[str, Any]:
    add_on, prices = await service.create_add_on(session, body=body, clock=runtime.clock)
    return schemas.add_on_out(add_on, prices)


@router.get("", summary="List add-ons (paginated)", responses=returns(PageOut[schemas.AddOnOut]))
async def list_add_ons(session: TenantSession, page: Page) -> dict[str, Any]:
    rows, total = await service.list_add_ons(session, page=page.page, limit=page.limit)
    return envelope([schemas.add_on_out(a, p) for a, p in rows], total, page.page, page.limit)


@router.post(
    "/apply",
    status_code=201,
    summary="Apply an add-on to a customer (billed once on the next invoice)",
    responses=returns(
        schemas.AppliedAddOnOut, 201, errors={404: "Unknown add-on, customer or subscription"}
    ),
)
async def apply_add_on(
    session: TenantSession, body: schemas.AddOnApply, runtime: RuntimeDep
) -> dict[str, Any]:
    applied = await service.apply_add_on(session, body=body, clock=runtime.clock)
    return schemas.applied_out(applied)


@router.get(
    "/applied/list",
    summary="List applied add-ons (paginated)",
    responses=returns(PageOut[schemas.AppliedAddOnOut]),
)
async def list_applied(
    session: TenantSession,
    page: Page,
    customer_id: Annotated[str | None, Query(alias="customerId")] = None,
    invoiced: str | None = None,
) -> dict[str, Any]:
    rows, total = await service.list_applied(
        session, page=page.page, limit=page.limit, customer_id=customer_id, invoiced=invoiced
    )
    return envelope([schemas.applied_out(a) for a in rows], total, page.page, page.limit)


@router.delete(
    "/applied/{applied_id}",
    summary="Remove a pending applied add-on",
    responses=returns(MessageOut),
)
async def remove_applied(session: TenantSession, applied_id: str) -> dict[str, str]:
    await service.remove_applied(session, applied_id)
    return {"message": "Applied add-on removed"}


@router.get("/{add_on_id}", summary="Get an add-on", responses=returns(schemas.AddOnOut))
async def get_add_on(session: TenantSession, add_on_id: str) -> dict[str, Any]:
    return schemas.add_on_out(*await service.get_add_on(session, add_on_id))


@router.patch(
    "/{add_on_id}",
    summary="Update an add-on (prices replace the whole set)",
    responses=returns(schemas.AddOnOut),
)
async def update_add_on(
    session: TenantSession, add_on_id: str, body: schemas.AddOnPatch, runtime: RuntimeDep
) -> dict[str, Any]:
    add_on, prices = await service.update_add_on(session, add_on_id, body=body, clock=runtime.clock)
    return schemas.add_on_out(add_on, prices)


@router.delete("/{add_on_id}", summary="Delete an add-on", responses=returns(MessageOut))
async def delete_add_on(session: TenantSession, add_on_id: str) -> dict[str, str]:
    await service.delete_add_on(session, add_on_id)
    return {"message": "Add-on deleted"}
