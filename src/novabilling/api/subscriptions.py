"""/api/subscriptions (contract subscriptions.md). Action POSTs answer 201 (README §8)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from novabilling.billing import subscriptions as billing
from novabilling.billing import views
from novabilling.invoices.schemas import InvoiceOut
from novabilling.kit.pagination import PageOut, PageParams, envelope
from novabilling.subscriptions import schemas, service
from novabilling.web.deps import DataPrincipal, RuntimeDep, TenantProfileDep, TenantSession
from novabilling.web.openapi import returns
from novabilling.web.paging import lenient_page

router = APIRouter(prefix="/api/subscriptions", tags=["subscriptions"])


class SubscriptionDetailOut(schemas.SubscriptionViewOut):
    """GET /api/subscriptions/{id}: with the subscription's 10 newest invoices."""

    invoices: list[InvoiceOut]


Page = Annotated[PageParams, Depends(lenient_page)]


@router.post(
    "",
    status_code=201,
    summary="Subscribe a customer to a plan (issues the first invoice when due)",
    responses=returns(schemas.SubscriptionViewOut, 201, errors={404: "Unknown customer or plan"}),
)
async def create_subscription(
    session: TenantSession,
    body: schemas.SubscriptionCreate,
    tenant: TenantProfileDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    view = await billing.create(session, data=body, tenant=tenant, clock=runtime.clock)
    return schemas.view_out(view)


@router.get(
    "",
    summary="List subscriptions (paginated)",
    responses=returns(PageOut[schemas.SubscriptionViewOut]),
)
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


@router.get(
    "/{subscription_id}",
    summary="Get a subscription with its customer, plan and 10 newest invoices",
    responses=returns(SubscriptionDetailOut),
)
async def get_subscription(session: TenantSession, subscription_id: str) -> dict[str, Any]:
    return await views.subscription_detail(session, subscription_id)


@router.patch(
    "/{subscription_id}",
    summary="Replace a subscription's metadata",
    responses=returns(schemas.SubscriptionViewOut),
)
async def update_subscription(
    session: TenantSession,
    subscription_id: str,
    body: schemas.SubscriptionPatch,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    view = await billing.update(session, subscription_id, body=body, clock=runtime.clock)
    return schemas.view_out(view)


@router.post(
    "/{subscription_id}/cancel",
    status_code=201,
    summary="Cancel a subscription now or at the end of its period",
    responses=returns(schemas.SubscriptionViewOut, 201),
)
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


@router.post(
    "/{subscription_id}/pause",
    status_code=201,
    summary="Pause an active subscription",
    responses=returns(schemas.SubscriptionViewOut, 201),
)
async def pause_subscription(
    session: TenantSession, subscription_id: str, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    view = await billing.pause(
        session, subscription_id, tenant_id=principal.tenant_id, clock=runtime.clock
    )
    return schemas.view_out(view)


@router.post(
    "/{subscription_id}/resume",
    status_code=201,
    summary="Resume a paused subscription",
    responses=returns(schemas.SubscriptionViewOut, 201),
)
async def resume_subscription(
    session: TenantSession, subscription_id: str, tenant: TenantProfileDep, runtime: RuntimeDep
) -> dict[str, Any]:
    view = await billing.resume(session, subscription_id, tenant=tenant, clock=runtime.clock)
    return schemas.view_out(view)


@router.post(
    "/{subscription_id}/change-plan",
    status_code=201,
    summary="Move a subscription to another plan (optionally prorated)",
    responses=returns(schemas.SubscriptionViewOut, 201),
)
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
