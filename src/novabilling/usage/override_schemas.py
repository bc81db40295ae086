"""Wire shapes of /api/plan-overrides (contract plan-overrides.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from novabilling.kit.money import WireAmount
from novabilling.kit.timestamps import to_wire
from novabilling.kit.wire import DecimalText, FreeForm, Timestamp, WireModel, WireOut
from novabilling.plans.schemas import e4_to_wire
from novabilling.usage.charge_schemas import RangeIn, Units
from novabilling.usage.models import PlanOverride

Id = Annotated[str, StringConstraints(min_length=1, max_length=255)]
CurrencyCode = Annotated[str, StringConstraints(min_length=1, max_length=3)]


class PriceOverrideIn(WireModel):
    currency: CurrencyCode
    amount: WireAmount


class RangeOverrideIn(RangeIn):
    """Like a charge's range, but ``toValue`` must be sent (``null``: the open end)."""

    to_value: Units | None


class ChargeOverrideIn(WireModel):
    charge_id: Id
    properties: dict[str, Any] | None = None
    graduated_ranges: Annotated[list[RangeOverrideIn], Field(max_length=100)] | None = None


Prices = Annotated[list[PriceOverrideIn], Field(max_length=100)]
ChargeOverrides = Annotated[list[ChargeOverrideIn], Field(max_length=100)]


class OverrideCreate(WireModel):
    customer_id: Id
    plan_id: Id
    overridden_prices: Prices | None = None
    overridden_minimum_commitment: WireAmount | None = None
    overridden_charges: ChargeOverrides | None = None
    metadata: dict[str, Any] | None = None


class OverridePatch(WireModel):
    """Each sent field replaces the stored one; ``null`` clears it (contract Improve).
    ``customerId`` and ``planId`` are immutable: unknown keys."""

    overridden_prices: Prices | None = None
    overridden_minimum_commitment: WireAmount | None = None
    overridden_charges: ChargeOverrides | None = None
    metadata: dict[str, Any] | None = None


def override_out(
    item: PlanOverride,
    *,
    customer: dict[str, Any] | None = None,
    plan: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Override object; ``customer`` {id, name, email} and ``plan`` {id, name, code}
    embedded on the reads."""
    out: dict[str, Any] = {
        "id": item.id,
        "customerId": item.customer_id,
        "planId": item.plan_id,
        "overriddenPrices": item.overridden_prices,
        "overriddenMinimumCommitment": e4_to_wire(item.overridden_minimum_commitment_e4),
        "overriddenCharges": item.overridden_charges,
        "metadata": item.metadata_,
        "createdAt": to_wire(item.created_at),
        "updatedAt": to_wire(item.updated_at),
    }
    if customer is not None:
        out["customer"] = customer
    if plan is not None:
        out["plan"] = plan
    return out


class OverrideCustomerOut(WireOut):
    id: str
    name: str | None
    email: str


class OverridePlanOut(WireOut):
    id: str
    name: str
    code: str


class OverrideOut(WireOut):
    """A plan override; ``customer`` and ``plan`` (short) embedded on the reads."""

    id: str
    customer_id: str
    plan_id: str
    overridden_prices: list[FreeForm] | None
    overridden_minimum_commitment: DecimalText | None
    overridden_charges: list[FreeForm] | None
    metadata: FreeForm | None
    created_at: Timestamp
    updated_at: Timestamp
    customer: OverrideCustomerOut | None = None
    plan: OverridePlanOut | None = None
