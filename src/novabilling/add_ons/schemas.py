"""Wire shapes of /api/add-ons (contract add-ons.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from novabilling.add_ons.models import AddOn, AddOnPrice, AppliedAddOn
from novabilling.kit.money import WireAmount, to_wire
from novabilling.kit.timestamps import InstantInput
from novabilling.kit.timestamps import to_wire as time_wire
from novabilling.kit.wire import DecimalText, Timestamp, WireModel, WireOut

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text = Annotated[str, StringConstraints(max_length=1000)]
DisplayName = Annotated[str, StringConstraints(max_length=255)]
Currency = Annotated[str, StringConstraints(min_length=1, max_length=3)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class PriceIn(WireModel):
    currency: Currency
    amount: WireAmount


Prices = Annotated[list[PriceIn], Field(max_length=100)]


class AddOnCreate(WireModel):
    name: Name
    code: Code
    description: Text | None = None
    invoice_display_name: DisplayName | None = None
    prices: Prices
    created_at: InstantInput | None = None


class AddOnPatch(WireModel):
    name: Name | None = None
    description: Text | None = None
    invoice_display_name: DisplayName | None = None
    prices: Prices | None = None


class AddOnApply(WireModel):
    add_on_id: Id
    customer_id: Id
    subscription_id: Id | None = None
    # optional (contract Improve): the add-on's price in ``currency`` when absent
    amount: WireAmount | None = None
    currency: Currency


def price_out(price: AddOnPrice) -> dict[str, Any]:
    return {
        "id": price.id,
        "addOnId": price.add_on_id,
        "currency": price.currency,
        "amount": to_wire(price.amount_minor, price.currency),
    }


def add_on_out(add_on: AddOn, prices: list[AddOnPrice]) -> dict[str, Any]:
    return {
        "id": add_on.id,
        "name": add_on.name,
        "code": add_on.code,
        "description": add_on.description,
        "invoiceDisplayName": add_on.invoice_display_name,
        "createdAt": time_wire(add_on.created_at),
        "updatedAt": time_wire(add_on.updated_at),
        "prices": [price_out(p) for p in prices],
    }


def applied_out(applied: AppliedAddOn) -> dict[str, Any]:
    return {
        "id": applied.id,
        "addOnId": applied.add_on_id,
        "customerId": applied.customer_id,
        "subscriptionId": applied.subscription_id,
        "amount": to_wire(applied.amount_minor, applied.currency),
        "currency": applied.currency,
        "invoiceId": applied.invoice_id,
        "createdAt": time_wire(applied.created_at),
    }


class AddOnPriceOut(WireOut):
    id: str
    add_on_id: str
    currency: str
    amount: DecimalText


class AddOnOut(WireOut):
    """An add-on with its per-currency prices."""

    id: str
    name: str
    code: str
    description: str | None
    invoice_display_name: str | None
    created_at: Timestamp
    updated_at: Timestamp
    prices: list[AddOnPriceOut]


class AppliedAddOnOut(WireOut):
    """A one-time charge waiting for (or billed on) the customer's next invoice."""

    id: str
    add_on_id: str
    customer_id: str
    subscription_id: str | None
    amount: DecimalText
    currency: str
    invoice_id: str | None
    created_at: Timestamp
