"""/api/payment-methods (contract payment-methods.md). Improve applied: API keys are
accepted too (data auth, as every other data route)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from novabilling.kit.wire import MessageOut
from novabilling.payments import methods
from novabilling.payments.method_schemas import PaymentMethodCreate, PaymentMethodOut, method_out
from novabilling.web.deps import DataPrincipal, RuntimeDep, TenantSession
from novabilling.web.openapi import returns

router = APIRouter(prefix="/api/payment-methods", tags=["payment-methods"])


@router.post(
    "",
    status_code=201,
    summary="Save a payment method for a customer",
    responses=returns(PaymentMethodOut, 201, errors={404: "Unknown customer"}),
)
async def create_payment_method(
    session: TenantSession,
    body: PaymentMethodCreate,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    method = await methods.create_method(
        session,
        tenant_id=principal.tenant_id,
        body=body,
        encryptor=runtime.encryptor,
        clock=runtime.clock,
    )
    return method_out(method)


@router.get(
    "/customer/{customer_id}",
    summary="List a customer's payment methods (default first)",
    responses=returns(list[PaymentMethodOut]),
)
async def customer_payment_methods(
    session: TenantSession, customer_id: str
) -> list[dict[str, Any]]:
    """Bare array, default first then newest first; an unknown customer has none."""
    return [method_out(m) for m in await methods.list_for_customer(session, customer_id)]


@router.get("/{method_id}", summary="Get a payment method", responses=returns(PaymentMethodOut))
async def get_payment_method(session: TenantSession, method_id: str) -> dict[str, Any]:
    return method_out(await methods.get_method(session, method_id))


@router.patch(
    "/{method_id}/set-default",
    summary="Make a payment method the customer's default",
    responses=returns(PaymentMethodOut),
)
async def set_default_payment_method(
    session: TenantSession, method_id: str, runtime: RuntimeDep
) -> dict[str, Any]:
    return method_out(await methods.set_default(session, method_id, clock=runtime.clock))


@router.delete(
    "/{method_id}",
    summary="Delete a payment method",
    responses=returns(MessageOut, errors={400: "An active subscription uses the method"}),
)
async def delete_payment_method(
    session: TenantSession, method_id: str, runtime: RuntimeDep
) -> dict[str, str]:
    await methods.delete_method(session, method_id, clock=runtime.clock)
    return {"message": "Payment method deleted successfully"}
