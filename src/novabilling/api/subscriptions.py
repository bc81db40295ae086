"""/api/subscriptions (contract subscriptions.md). Action POSTs answer 201 (README §8)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from novabilling.billing import subscriptions as billing
from novabilling.billing import views
from novabilling.kit.pagination import PageParams, envelope, lenient_page
from novabilling.subscriptions import schemas, service
from novabilling.web.deps import DataPrincipal, RuntimeDep, TenantProfileDep, TenantSession

router = APIRouter(prefix="/api/subscriptions", tags=["subscriptions"])

Page = Annotated[PageParams, Depends(lenient_page)]


@router.post("", status_code=201)
async def create_subscription(
    session: TenantSession,
    body: schemas.SubscriptionCreate,
    tenant: TenantProfileDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    view = await billing.create(session, data=body, tenant=tenant, clock=runtime.clock)
    return schemas.view_out(view)


@router.get("")
async def list_subscriptions(
    session: TenantSession,
    page: Page,
    status: str | None = None,
    customer_id: Annotated[str | None, Query(alias="customerId")] = None,
    plan_id: Annotated[str | None, Query(alias="planId")] = None,
) -> dict[str, Any]:
    views, total = await service.list_subscriptions(
        session,
        page=page.page,
        limit=page.limit,
        status=status,
        customer_id=customer_id,
        plan_id=plan_id,
    )
    return envelope([schemas.view_out(v) for v in views], total, page.page, page.limit)


@router.get("/{subscription_id}")
async def get_subscription(session: TenantSession, subscription_id: str) -> dict[str, Any]:
    return await views.subscription_detail(session, subscription_id)


@router.patch("/{subscription_id}")
async def update_subscription(
    session: TenantSession,
    subscription_id: str,
    body: schemas.SubscriptionPatch,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    view = await service.update_metadata(
        session, subscription_id, metadata=body.metadata, clock=runtime.clock
    )
    return schemas.view_out(view)


@router.post("/{subscription_id}/cancel", status_code=201)
async def cancel_subscription(
    session: TenantSession,
    subscription_id: str,
    body: schemas.CancelIn,
    tenant: TenantProfileDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    view = await billing.cancel(
        session, subscription_id, body=body, tenant=tenant, clock=runtime.clock
    )
    return schemas.view_out(view)


@router.post("/{subscription_id}/pause", status_code=201)
async def pause_subscription(
    session: TenantSession, subscription_id: str, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    view = await billing.pause(
        session, subscription_id, tenant_id=principal.tenant_id, clock=runtime.clock
    )
    return schemas.view_out(view)


@router.post("/{subscription_id}/resume", status_code=201)
async def resume_subscription(
    session: TenantSession, subscription_id: str, tenant: TenantProfileDep, runtime: RuntimeDep
) -> dict[str, Any]:
    view = await billing.resume(session, subscription_id, tenant=tenant, clock=runtime.clock)
    return schemas.view_out(view)


@router.post("/{subscription_id}/change-plan", status_code=201)
async def change_plan(
    session: TenantSession,
    subscription_id: str,
    body: schemas.ChangePlanIn,
    tenant: TenantProfileDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    view = await billing.change_plan(
        session, subscription_id, body=body, tenant=tenant, clock=runtime.clock
    )
    return schemas.view_out(view)
