"""/api/customers (contract customers.md). Strict list: unknown query parameters -> 400."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from novabilling.billing import accounts
from novabilling.customers import schemas, service
from novabilling.invoices.schemas import InvoiceOut
from novabilling.kit.pagination import PageOut, PageParams, envelope, strict_page
from novabilling.kit.wire import MessageOut
from novabilling.payments import methods
from novabilling.payments.method_schemas import PaymentMethodOut, method_out
from novabilling.payments.schemas import PaymentOut
from novabilling.subscriptions.schemas import SubscriptionWithPlanOut
from novabilling.web.deps import DataPrincipal, RuntimeDep, TenantReadSession, TenantSession
from novabilling.web.openapi import returns

router = APIRouter(prefix="/api/customers", tags=["customers"])


class CustomerDetailOut(schemas.CustomerOut):
    """GET /api/customers/{id}: the customer, its subscriptions, its 10 newest invoices."""

    subscriptions: list[SubscriptionWithPlanOut]
    invoices: list[InvoiceOut]


CustomerPage = Annotated[PageParams, Depends(strict_page(*schemas.LIST_QUERY))]


@router.post(
    "",
    status_code=201,
    summary="Create a customer",
    responses=returns(
        schemas.CustomerOut, 201, errors={409: "externalId already used by another customer"}
    ),
)
async def create_customer(
    session: TenantSession,
    body: schemas.CustomerCreate,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    customer = await service.create_customer(
        session, body=body, tenant_id=principal.tenant_id, clock=runtime.clock
    )
    return schemas.customer_out(customer)


@router.get(
    "",
    summary="List customers (paginated, with active subscriptions and total spent)",
    responses=returns(PageOut[schemas.CustomerListedOut]),
)
async def list_customers(
    session: TenantReadSession,
    params: CustomerPage,
    search: str | None = None,
    country: str | None = None,
    currency: str | None = None,
    sort_by: Annotated[str | None, Query(alias="sortBy")] = None,
    sort_order: Annotated[str | None, Query(alias="sortOrder")] = None,
) -> dict[str, Any]:
    rows, total = await accounts.list_customers(
        session,
        page=params.page,
        limit=params.limit,
        search=search,
        country=country,
        currency=currency,
        sort_by=sort_by,
        sort_order=sort_order,
    )
    data = [
        schemas.customer_listed(c, active_subscriptions=n, total_spent=spent)
        for c, n, spent in rows
    ]
    return envelope(data, total, params.page, params.limit)


@router.get(
    "/{customer_id}",
    summary="Get a customer with its subscriptions and 10 newest invoices",
    responses=returns(CustomerDetailOut),
)
async def get_customer(session: TenantReadSession, customer_id: str) -> dict[str, Any]:
    customer = await service.get_customer(session, customer_id)
    subscriptions = await accounts.subscriptions_for_customer(session, customer.id)
    invoices = await accounts.invoices_for_customer(session, customer.id, limit=10)
    return schemas.customer_detail(customer, subscriptions=subscriptions, invoices=invoices)


@router.patch(
    "/{customer_id}",
    summary="Update a customer",
    responses=returns(
        schemas.CustomerOut, errors={409: "externalId already used by another customer"}
    ),
)
async def update_customer(
    session: TenantSession,
    customer_id: str,
    body: schemas.CustomerPatch,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    customer = await service.update_customer(
        session, customer_id, body=body, tenant_id=principal.tenant_id, clock=runtime.clock
    )
    return schemas.customer_out(customer)


@router.delete(
    "/{customer_id}",
    summary="Delete a customer and everything it owns",
    responses=returns(MessageOut, errors={400: "The customer has an ACTIVE subscription"}),
)
async def delete_customer(
    session: TenantSession, customer_id: str, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, str]:
    await accounts.delete_customer(
        session,
        customer_id,
        tenant_id=principal.tenant_id,
        clock=runtime.clock,
        data_dir=runtime.settings.data_dir,
    )
    return {"message": "Customer deleted successfully"}


@router.get(
    "/{customer_id}/subscriptions",
    summary="List a customer's subscriptions (newest first)",
    responses=returns(list[SubscriptionWithPlanOut]),
)
async def customer_subscriptions(
    session: TenantReadSession, customer_id: str
) -> list[dict[str, Any]]:
    customer = await service.get_customer(session, customer_id)
    return await accounts.subscriptions_for_customer(session, customer.id)


@router.get(
    "/{customer_id}/invoices",
    summary="List a customer's invoices (newest first)",
    responses=returns(list[InvoiceOut]),
)
async def customer_invoices(session: TenantReadSession, customer_id: str) -> list[dict[str, Any]]:
    customer = await service.get_customer(session, customer_id)
    return await accounts.invoices_for_customer(session, customer.id)


@router.get(
    "/{customer_id}/payments",
    summary="List the payments of a customer's invoices",
    responses=returns(list[PaymentOut]),
)
async def customer_payments(session: TenantReadSession, customer_id: str) -> list[dict[str, Any]]:
    customer = await service.get_customer(session, customer_id)
    return await accounts.payments_for_customer(session, customer.id)


@router.get(
    "/{customer_id}/payment-methods",
    summary="List a customer's saved payment methods (newest first)",
    responses=returns(list[PaymentMethodOut]),
)
async def customer_payment_methods(
    session: TenantReadSession, customer_id: str
) -> list[dict[str, Any]]:
    """Newest first (the default not sorted first, as the contract's sub-route)."""
    customer = await service.get_customer(session, customer_id)
    found = await methods.list_for_customer(session, customer.id, default_first=False)
    return [method_out(m) for m in found]


@router.delete(
    "/{customer_id}/payment-methods/{method_id}",
    summary="Delete a saved payment method of a customer",
    responses=returns(MessageOut, errors={400: "An active subscription uses the method"}),
)
async def delete_customer_payment_method(
    session: TenantSession, customer_id: str, method_id: str, runtime: RuntimeDep
) -> dict[str, str]:
    """Improve applied: the subscription check and the default hand-over as the main route."""
    await methods.delete_method(session, method_id, clock=runtime.clock, customer_id=customer_id)
    return {"message": "Payment method deleted successfully"}
