"""Wire shapes of /api/coupons (contract coupons.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from novabilling.coupons.models import AppliedCoupon, Coupon
from novabilling.customers.models import Customer
from novabilling.customers.schemas import CustomerOut
from novabilling.kit.money import WireAmount, decimal_to_wire
from novabilling.kit.timestamps import InstantInput, to_wire
from novabilling.kit.wire import DecimalText, Timestamp, WireModel, WireOut

Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Description = Annotated[str, StringConstraints(max_length=1000)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
PlanIds = Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=1000)]
Positive = Annotated[int, Field(ge=1, le=2_000_000_000)]


class CouponCreate(WireModel):
    code: Code
    name: Name
    description: Description | None = None
    discount_type: Literal["PERCENTAGE", "FIXED_AMOUNT"]
    discount_value: WireAmount
    currency: Annotated[str, StringConstraints(max_length=3)] | None = None
    max_redemptions: Positive | None = None
    applies_to_plan_ids: PlanIds = []
    expires_at: InstantInput | None = None
    created_at: InstantInput | None = None


class CouponPatch(WireModel):
    name: Name | None = None
    description: Description | None = None
    is_active: bool | None = None
    expires_at: InstantInput | None = None


class CouponApply(WireModel):
    coupon_id: Id
    customer_id: Id
    subscription_id: Id | None = None
    uses_remaining: Positive | None = None


def _value(coupon: Coupon) -> str:
    return decimal_to_wire(Decimal(coupon.discount_value_e4).scaleb(-4))


def coupon_out(coupon: Coupon) -> dict[str, Any]:
    return {
        "id": coupon.id,
        "code": coupon.code,
        "name": coupon.name,
        "description": coupon.description,
        "discountType": coupon.discount_type,
        "discountValue": _value(coupon),
        "currency": coupon.currency,
        "maxRedemptions": coupon.max_redemptions,
        "redemptionCount": coupon.redemption_count,
        "appliesToPlanIds": list(coupon.applies_to_plan_ids or []),
        "isActive": coupon.is_active,
        "expiresAt": to_wire(coupon.expires_at) if coupon.expires_at else None,
        "createdAt": to_wire(coupon.created_at),
        "updatedAt": to_wire(coupon.updated_at),
    }


def applied_out(applied: AppliedCoupon) -> dict[str, Any]:
    return {
        "id": applied.id,
        "couponId": applied.coupon_id,
        "customerId": applied.customer_id,
        "subscriptionId": applied.subscription_id,
        "amountOff": None,
        "usesRemaining": applied.uses_remaining,
        "createdAt": to_wire(applied.created_at),
    }


def customer_brief(customer: Customer) -> dict[str, Any]:
    return {"id": customer.id, "name": customer.name, "email": customer.email}


class CouponOut(WireOut):
    """A coupon (decimal value as a string)."""

    id: str
    code: str
    name: str
    description: str | None
    discount_type: str
    discount_value: DecimalText
    currency: str | None
    max_redemptions: int | None
    redemption_count: int
    applies_to_plan_ids: list[str]
    is_active: bool
    expires_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class AppliedCount(WireOut):
    applied_coupons: int


class CouponListed(CouponOut):
    count: AppliedCount = Field(alias="_count")


class CustomerBrief(WireOut):
    id: str
    name: str | None
    email: str


class AppliedOut(WireOut):
    id: str
    coupon_id: str
    customer_id: str
    subscription_id: str | None
    amount_off: None
    uses_remaining: int | None
    created_at: Timestamp


class AppliedWithCustomer(AppliedOut):
    customer: CustomerBrief


class CouponDetail(CouponListed):
    applied_coupons: list[AppliedWithCustomer]


class ApplyOut(AppliedOut):
    """The applied coupon with its coupon and customer."""

    coupon: CouponOut
    customer: CustomerOut
