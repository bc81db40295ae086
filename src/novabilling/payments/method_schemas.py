"""Wire shapes of saved payment methods (contract payment-methods.md, customers.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from novabilling.kit.timestamps import to_wire
from novabilling.kit.wire import FreeForm, Timestamp, WireModel, WireOut
from novabilling.payments.models import PaymentMethod

MethodType = Literal["CARD", "BANK_ACCOUNT", "WALLET"]
Id = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Short = Annotated[str, StringConstraints(max_length=255)]


class PaymentMethodCreate(WireModel):
    customer_id: Id
    provider: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    type: MethodType = "CARD"
    token_id: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    last4: Annotated[str, StringConstraints(max_length=4)] | None = None
    brand: Annotated[str, StringConstraints(max_length=50)] | None = None
    cardholder_name: Short | None = None
    country: Annotated[str, StringConstraints(max_length=64)] | None = None
    exp_month: Annotated[int, Field(ge=1, le=12)] | None = None
    exp_year: Annotated[int, Field(ge=2024, le=9999)] | None = None
    # Additive: the provider's customer the token is attached to (Stripe ``cus_...``; an
    # off-session PaymentIntent names both).
    provider_customer_id: Short | None = None


class PaymentMethodOut(WireOut):
    """A saved payment method; ``tokenId`` is masked."""

    id: str
    customer_id: str
    provider: str
    type: MethodType
    token_id: str
    is_default: bool
    last4: str | None
    brand: str | None
    cardholder_name: str | None
    country: str | None
    exp_month: int | None
    exp_year: int | None
    metadata: FreeForm | None
    created_at: Timestamp
    updated_at: Timestamp


def mask(token: str) -> str:
    """``tokenId`` as shown: a reusable charge key is never returned whole (Improve)."""
    if len(token) <= 8:
        return "*" * len(token)
    return f"{token[:4]}...{token[-4:]}"


def method_out(method: PaymentMethod) -> dict[str, Any]:
    return {
        "id": method.id,
        "customerId": method.customer_id,
        "provider": method.provider,
        "type": method.type or "CARD",
        "tokenId": method.token_hint or "****",
        "isDefault": method.is_default,
        "last4": method.last4,
        "brand": method.brand,
        "cardholderName": method.cardholder_name,
        "country": method.country,
        "expMonth": method.exp_month,
        "expYear": method.exp_year,
        "metadata": method.metadata_,
        "createdAt": to_wire(method.created_at),
        "updatedAt": to_wire(method.updated_at),
    }
