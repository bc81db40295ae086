"""Wire shapes of /api/charges (contract charges.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from novabilling.kit.money import MAX_MINOR, WireAmount, decimal_to_wire
from novabilling.kit.timestamps import to_wire
from novabilling.kit.wire import FreeForm, Timestamp, WireModel, WireOut
from novabilling.usage.metric_schemas import FilterValues, MetricOut, PropertyKey
from novabilling.usage.models import Charge, ChargeFilter, ChargeRange

ChargeModel = Literal["STANDARD", "GRADUATED", "VOLUME", "PACKAGE", "PERCENTAGE"]
Timing = Literal["IN_ARREARS", "IN_ADVANCE"]
Id = Annotated[str, StringConstraints(min_length=1, max_length=255)]
DisplayName = Annotated[str, StringConstraints(max_length=200)]
Units = Annotated[int, Field(ge=0, lt=2**62)]
MinCents = Annotated[int, Field(ge=0, lt=MAX_MINOR)]


class RangeIn(WireModel):
    from_value: Units
    to_value: Units | None = None
    per_unit_amount: WireAmount
    flat_amount: WireAmount | None = None


class ChargeFilterIn(WireModel):
    key: PropertyKey
    values: FilterValues
    properties: dict[str, Any] | None = None


Ranges = Annotated[list[RangeIn], Field(max_length=100)]
ChargeFilters = Annotated[list[ChargeFilterIn], Field(max_length=50)]


class ChargeCreate(WireModel):
    plan_id: Id
    billable_metric_id: Id
    charge_model: ChargeModel
    billing_timing: Timing = "IN_ARREARS"
    invoice_display_name: DisplayName | None = None
    min_amount_cents: MinCents | None = None
    prorated: bool = False
    properties: dict[str, Any] | None = None
    graduated_ranges: Ranges | None = None
    filters: ChargeFilters | None = None


class ChargePatch(WireModel):
    """``planId``, ``billableMetricId`` and ``chargeModel`` are immutable: unknown keys."""

    billing_timing: Timing | None = None
    invoice_display_name: DisplayName | None = None
    min_amount_cents: MinCents | None = None
    prorated: bool | None = None
    properties: dict[str, Any] | None = None
    graduated_ranges: Ranges | None = None
    filters: ChargeFilters | None = None

    def explicit_nulls(self) -> list[str]:
        names = ("billing_timing", "prorated", "properties", "graduated_ranges", "filters")
        return [
            type(self).model_fields[n].alias or n
            for n in names
            if n in self.model_fields_set and getattr(self, n) is None
        ]


def range_out(item: ChargeRange) -> dict[str, Any]:
    return {
        "id": item.id,
        "chargeId": item.charge_id,
        "fromValue": item.from_value,
        "toValue": item.to_value,
        "perUnitAmount": decimal_to_wire(item.per_unit_amount),
        "flatAmount": decimal_to_wire(item.flat_amount),
        "order": item.position,
    }


def filter_out(item: ChargeFilter) -> dict[str, Any]:
    return {
        "id": item.id,
        "chargeId": item.charge_id,
        "key": item.key,
        "values": list(item.values),
        "properties": dict(item.properties or {}),
    }


def charge_row_out(charge: Charge) -> dict[str, Any]:
    """The charge's own fields (the metric's ``charges`` embed)."""
    return {
        "id": charge.id,
        "planId": charge.plan_id,
        "billableMetricId": charge.billable_metric_id,
        "chargeModel": charge.charge_model,
        "billingTiming": charge.billing_timing,
        "invoiceDisplayName": charge.invoice_display_name,
        "minAmountCents": charge.min_amount_cents,
        "prorated": charge.prorated,
        "properties": dict(charge.properties or {}),
        "createdAt": to_wire(charge.created_at),
        "updatedAt": to_wire(charge.updated_at),
    }


def charge_out(
    charge: Charge,
    *,
    metric: dict[str, Any],
    ranges: list[ChargeRange],
    filters: list[ChargeFilter],
    plan: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Charge + ``billableMetric`` (a wire dict) + ``graduatedRanges`` + ``filters``
    (+ ``plan`` on GET by id)."""
    out = charge_row_out(charge)
    out["billableMetric"] = metric
    out["graduatedRanges"] = [range_out(r) for r in ranges]
    out["filters"] = [filter_out(f) for f in filters]
    if plan is not None:
        out["plan"] = plan
    return out


DecimalRate = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$")]


class RangeOut(WireOut):
    id: str
    charge_id: str
    from_value: int
    to_value: int | None
    per_unit_amount: DecimalRate
    flat_amount: DecimalRate
    order: int


class ChargeFilterOut(WireOut):
    id: str
    charge_id: str
    key: str
    values: list[str]
    properties: FreeForm


class ChargeRowOut(WireOut):
    """A charge's own fields (as a metric lists its charges)."""

    id: str
    plan_id: str
    billable_metric_id: str
    charge_model: ChargeModel
    billing_timing: Timing
    invoice_display_name: str | None
    min_amount_cents: int | None
    prorated: bool
    properties: FreeForm
    created_at: Timestamp
    updated_at: Timestamp


class ChargeOut(ChargeRowOut):
    """A charge with its metric, graduated ranges and filters."""

    billable_metric: MetricOut
    graduated_ranges: list[RangeOut]
    filters: list[ChargeFilterOut]
