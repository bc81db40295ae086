"""Wire shapes of /api/plans (contract plans.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from novabilling.kit.money import WireAmount, to_wire
from novabilling.kit.timestamps import to_wire as time_wire
from novabilling.kit.wire import DecimalText, Timestamp, WireModel, WireOut
from novabilling.plans.models import Plan, PlanPrice

Interval = Literal["HOURLY", "DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY"]
Timing = Literal["IN_ADVANCE", "IN_ARREARS"]

Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")]
Description = Annotated[str, StringConstraints(max_length=500)]
Feature = Annotated[str, StringConstraints(max_length=500)]
Features = Annotated[list[Feature], Field(max_length=100)]
CurrencyCode = Annotated[str, StringConstraints(min_length=1, max_length=3)]
NetTerms = Annotated[int, Field(ge=0, le=365)]
GraceDays = Annotated[int, Field(ge=0, le=90)]

E4 = 10_000  # plan-level decimals keep 4 fractional digits (``*_e4`` columns)


class PriceIn(WireModel):
    currency: CurrencyCode
    amount: WireAmount


class PlanCreate(WireModel):
    name: Name
    code: Code
    description: Description | None = None
    billing_interval: Interval
    billing_timing: Timing = "IN_ARREARS"
    features: Features = []
    prices: Annotated[list[PriceIn], Field(max_length=100)] = []
    net_payment_terms: NetTerms | None = None
    invoice_grace_period_days: GraceDays = 0
    progressive_billing_threshold: WireAmount | None = None


_NOT_NULL = (
    "name",
    "billing_interval",
    "billing_timing",
    "features",
    "is_active",
    "invoice_grace_period_days",
)


class PlanPatch(WireModel):
    """``code`` is immutable: sending it is an unknown key (400 ``property``)."""

    name: Name | None = None
    description: Description | None = None
    billing_interval: Interval | None = None
    billing_timing: Timing | None = None
    features: Features | None = None
    is_active: bool | None = None
    net_payment_terms: NetTerms | None = None
    invoice_grace_period_days: GraceDays | None = None
    progressive_billing_threshold: WireAmount | None = None

    def explicit_nulls(self) -> list[str]:
        """Wire names of fields sent as null that may not be null."""
        return [
            type(self).model_fields[n].alias or n
            for n in _NOT_NULL
            if n in self.model_fields_set and getattr(self, n) is None
        ]


class PriceUpdate(WireModel):
    """Contract: unknown keys are ignored here (compatibility); ``amount`` is validated."""

    model_config = ConfigDict(extra="ignore")

    amount: WireAmount | None = None


def e4_to_wire(value: int | None) -> str | None:
    """Canonical decimal string of a value stored scaled by 10**4 (``"12.5"``, ``"0"``)."""
    if value is None:
        return None
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), E4)
    fraction = str(frac).rjust(4, "0").rstrip("0")
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def price_out(price: PlanPrice) -> dict[str, Any]:
    return {
        "id": price.id,
        "planId": price.plan_id,
        "currency": price.currency,
        "amount": to_wire(price.amount_minor, price.currency),
        "isActive": price.is_active,
        "createdAt": time_wire(price.created_at),
        "updatedAt": time_wire(price.updated_at),
    }


def plan_out(plan: Plan, prices: list[PlanPrice] | None = None) -> dict[str, Any]:
    """Plan object; ``prices`` embedded unless None (embeds "without prices")."""
    out: dict[str, Any] = {
        "id": plan.id,
        "name": plan.name,
        "code": plan.code,
        "description": plan.description,
        "billingInterval": plan.billing_interval,
        "billingTiming": plan.billing_timing,
        "features": list(plan.features or []),
        "isActive": plan.is_active,
        "minimumCommitment": e4_to_wire(plan.minimum_commitment_e4),
        "netPaymentTerms": plan.net_payment_terms,
        "invoiceGracePeriodDays": plan.invoice_grace_period_days,
        "progressiveBillingThreshold": e4_to_wire(plan.progressive_billing_threshold_e4),
        "createdAt": time_wire(plan.created_at),
        "updatedAt": time_wire(plan.updated_at),
    }
    if prices is not None:
        out["prices"] = [price_out(p) for p in prices]
    return out


class PriceOut(WireOut):
    """A plan's price in one currency."""

    id: str
    plan_id: str
    currency: str
    amount: DecimalText
    is_active: bool
    created_at: Timestamp
    updated_at: Timestamp


class PlanOut(WireOut):
    """The Plan object; ``prices`` is left out where plans are embedded."""

    id: str
    name: str
    code: str
    description: str | None
    billing_interval: Interval
    billing_timing: Timing
    features: list[str]
    is_active: bool
    minimum_commitment: DecimalText | None
    net_payment_terms: int | None
    invoice_grace_period_days: int
    progressive_billing_threshold: DecimalText | None
    created_at: Timestamp
    updated_at: Timestamp
    prices: list[PriceOut] | None = None


class PlanCount(WireOut):
    subscriptions: int


class PlanDetailOut(PlanOut):
    """GET /api/plans/{id}: the plan with ``_count.subscriptions``."""

    count: PlanCount = Field(alias="_count")
