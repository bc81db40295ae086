"""/api/coupons (contract coupons.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from novabilling.coupons import schemas, service
from novabilling.customers.schemas import customer_out
from novabilling.kit.pagination import PageOut, PageParams, envelope
from novabilling.kit.wire import MessageOut
from novabilling.web.deps import RuntimeDep, TenantSession
from novabilling.web.openapi import returns
from novabilling.web.paging import lenient_page

router = APIRouter(prefix="/api/coupons", tags=["coupons"])

Page = Annotated[PageParams, Depends(lenient_page)]


@router.post(
    "",
    status_code=201,
    summary="Create a coupon",
    responses=returns(schemas.CouponOut, 201),
)
async def create_coupon(
    session: TenantSession, body: schemas.CouponCreate, runtime: RuntimeDep
) -> dict[str, Any]:
    return schemas.coupon_out(await service.create_coupon(session, body=body, clock=runtime.clock))


@router.get(
    "",
    summary="List coupons (paginated)",
    responses=returns(PageOut[schemas.CouponListed]),
)
async def list_coupons(
    session: TenantSession,
    page: Page,
    is_active: Annotated[str | None, Query(alias="isActive")] = None,
) -> dict[str, Any]:
    rows, total = await service.list_coupons(
        session, page=page.page, limit=page.limit, is_active=is_active
    )
    data = [{**schemas.coupon_out(c), "_count": {"appliedCoupons": n}} for c, n in rows]
    return envelope(data, total, page.page, page.limit)


@router.post(
    "/apply",
    status_code=201,
    summary="Apply a coupon to a customer (optionally to one subscription)",
    responses=returns(
        schemas.ApplyOut, 201, errors={404: "Unknown coupon, customer or subscription"}
    ),
)
async def apply_coupon(
    session: TenantSession, body: schemas.CouponApply, runtime: RuntimeDep
) -> dict[str, Any]:
    applied, coupon, customer = await service.apply_coupon(session, body=body, clock=runtime.clock)
    return {
        **schemas.applied_out(applied),
        "coupon": schemas.coupon_out(coupon),
        "customer": customer_out(customer),
    }


@router.delete(
    "/applied/{applied_id}",
    summary="Remove an applied coupon from its customer",
    responses=returns(MessageOut),
)
async def remove_applied(session: TenantSession, applied_id: str) -> dict[str, str]:
    await service.remove_applied(session, applied_id)
    return {"message": "Coupon removed from customer"}


@router.get(
    "/{coupon_id}",
    summary="Get a coupon with its 20 newest applications",
    responses=returns(schemas.CouponDetail),
)
async def get_coupon(session: TenantSession, coupon_id: str) -> dict[str, Any]:
    coupon, count, applied = await service.coupon_detail(session, coupon_id)
    return {
        **schemas.coupon_out(coupon),
        "_count": {"appliedCoupons": count},
        "appliedCoupons": [
            {**schemas.applied_out(a), "customer": schemas.customer_brief(c)} for a, c in applied
        ],
    }


@router.patch(
    "/{coupon_id}",
    summary="Update a coupon's name, description, isActive or expiresAt",
    responses=returns(schemas.CouponOut),
)
async def update_coupon(
    session: TenantSession, coupon_id: str, body: schemas.CouponPatch, runtime: RuntimeDep
) -> dict[str, Any]:
    coupon = await service.update_coupon(session, coupon_id, body=body, clock=runtime.clock)
    return schemas.coupon_out(coupon)


@router.delete(
    "/{coupon_id}",
    summary="Delete a coupon (deactivated instead once applied)",
    responses=returns(MessageOut | schemas.CouponOut),
)
async def delete_coupon(
    session: TenantSession, coupon_id: str, runtime: RuntimeDep
) -> dict[str, Any]:
    coupon = await service.delete_coupon(session, coupon_id, clock=runtime.clock)
    if coupon is None:
        return {"message": "Coupon deleted"}
    return schemas.coupon_out(coupon)
