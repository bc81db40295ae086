"""/api/coupons (contract coupons.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from novabilling.coupons import schemas, service
from novabilling.customers.schemas import customer_out
from novabilling.kit.pagination import PageParams, envelope, lenient_page
from novabilling.web.deps import RuntimeDep, TenantSession

router = APIRouter(prefix="/api/coupons", tags=["coupons"])

Page = Annotated[PageParams, Depends(lenient_page)]


@router.post("", status_code=201)
async def create_coupon(
    session: TenantSession, body: schemas.CouponCreate, runtime: RuntimeDep
) -> dict[str, Any]:
    return schemas.coupon_out(await service.create_coupon(session, body=body, clock=runtime.clock))


@router.get("")
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


@router.post("/apply", status_code=201)
async def apply_coupon(
    session: TenantSession, body: schemas.CouponApply, runtime: RuntimeDep
) -> dict[str, Any]:
    applied, coupon, customer = await service.apply_coupon(session, body=body, clock=runtime.clock)
    return {
        **schemas.applied_out(applied),
        "coupon": schemas.coupon_out(coupon),
        "customer": customer_out(customer),
    }


@router.delete("/applied/{applied_id}")
async def remove_applied(session: TenantSession, applied_id: str) -> dict[str, str]:
    await service.remove_applied(session, applied_id)
    return {"message": "Coupon removed from customer"}


@router.get("/{coupon_id}")
async def get_coupon(session: TenantSession, coupon_id: str) -> dict[str, Any]:
    coupon, count, applied = await service.coupon_detail(session, coupon_id)
    return {
        **schemas.coupon_out(coupon),
        "_count": {"appliedCoupons": count},
        "appliedCoupons": [
            {**schemas.applied_out(a), "customer": schemas.customer_brief(c)} for a, c in applied
        ],
    }


@router.patch("/{coupon_id}")
async def update_coupon(
    session: TenantSession, coupon_id: str, body: schemas.CouponPatch, runtime: RuntimeDep
) -> dict[str, Any]:
    coupon = await service.update_coupon(session, coupon_id, body=body, clock=runtime.clock)
    return schemas.coupon_out(coupon)


@router.delete("/{coupon_id}")
async def delete_coupon(
    session: TenantSession, coupon_id: str, runtime: RuntimeDep
) -> dict[str, Any]:
    coupon = await service.delete_coupon(session, coupon_id, clock=runtime.clock)
    if coupon is None:
        return {"message": "Coupon deleted"}
    return schemas.coupon_out(coupon)
