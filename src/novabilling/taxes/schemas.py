"""Wire shapes of /api/taxes (contract taxes.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from novabilling.kit.money import WireAmount, decimal_to_wire
from novabilling.kit.timestamps import to_wire
from novabilling.kit.wire import Timestamp, WireModel, WireOut
from novabilling.taxes.models import Tax

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")]
Description = Annotated[str, StringConstraints(max_length=2000)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class TaxCreate(WireModel):
    name: Name
    code: Code
    rate: WireAmount
    description: Description | None = None
    applied_by_default: bool = False


class TaxPatch(WireModel):
    """``code`` is immutable: sending it is an unknown key (400)."""

    name: Name | None = None
    rate: WireAmount | None = None
    description: Description | None = None
    applied_by_default: bool | None = None

    def explicit_nulls(self) -> list[str]:
        """Wire names of fields sent as null that may not be null."""
        return [
            type(self).model_fields[n].alias or n
            for n in ("name", "rate", "applied_by_default")
            if n in self.model_fields_set and getattr(self, n) is None
        ]


class Assign(WireModel):
    tax_id: Id


def tax_out(tax: Tax) -> dict[str, Any]:
    return {
        "id": tax.id,
        "name": tax.name,
        "code": tax.code,
        "rate": decimal_to_wire(tax.rate),
        "description": tax.description,
        "appliedByDefault": tax.applied_by_default,
        "createdAt": to_wire(tax.created_at),
        "updatedAt": to_wire(tax.updated_at),
    }


def assignment_out(row: Any, owner_field: str, owner_id: str) -> dict[str, Any]:
    return {"id": row.id, owner_field: owner_id, "taxId": row.tax_id}


class TaxOut(WireOut):
    """A tax rate (``rate`` is a percentage as a decimal string)."""

    id: str
    name: str
    code: str
    rate: str = Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", examples=["7.5"])
    description: str | None
    applied_by_default: bool
    created_at: Timestamp
    updated_at: Timestamp


class CustomerTaxOut(WireOut):
    id: str
    customer_id: str
    tax_id: str


class PlanTaxOut(WireOut):
    id: str
    plan_id: str
    tax_id: str


class ChargeTaxOut(WireOut):
    id: str
    charge_id: str
    tax_id: str
