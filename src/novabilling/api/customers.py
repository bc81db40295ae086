"""/api/customers (contract customers.md). Strict list: unknown query parameters -> 400.

Creating and listing customers are the API's busiest calls: ``lean_routes`` serves them
as plain Starlette routes (mounted by app.py ahead of the API routers, like the usage
event intake): no dependency injection, no route-tree walk. Authentication first (401
before 400), then the route's rate limit, then the body or query; errors go through the
app's handlers (the contract body) and the middleware is the same as everywhere. The
FastAPI operations below declare the same paths for the OpenAPI document and call the
same functions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.routing import Route

from novabilling.billing import accounts
from novabilling.customers import schemas, service
from novabilling.invoices.schemas import InvoiceOut
from novabilling.kit.pagination import PageOut, PageParams, envelope, parse_strict
from novabilling.kit.wire import MessageOut
from novabilling.payments import methods
from novabilling.payments.method_schemas import PaymentMethodOut, method_out
from novabilling.payments.schemas import PaymentOut
from novabilling.subscriptions.schemas import SubscriptionWithPlanOut
from novabilling.web.deps import (
    DataPrincipal,
    RuntimeDep,
    TenantReadSession,
    TenantSession,
    check_rate_limit,
    data_principal,
    get_runtime,
    tenant_read_connection,
    tenant_single_write,
)
from novabilling.web.openapi import returns
from novabilling.web.paging import strict_page
from novabilling.web.responses import JSONBytes
from novabilling.web.routing import LeanRoute, parse_body

PATH = "/api/customers"
router = APIRouter(prefix=PATH, tags=["customers"])


class CustomerDetailOut(schemas.CustomerOut):
    """GET /api/customers/{id}: the customer, its subscriptions, its 10 newest invoices."""

    subscriptions: list[SubscriptionWithPlanOut]
    invoices: list[InvoiceOut]


CustomerPage = Annotated[PageParams, Depends(strict_page(*schemas.LIST_QUERY))]


async def post_customer(request: Request) -> JSONBytes:
    principal = await data_principal(request)
    headers = await check_rate_limit(request, PATH)
    body = parse_body(schemas.CustomerCreate, await request.body())
    runtime = get_runtime(request)
    async with tenant_single_write(runtime, principal.tenant_id) as connection:
        customer = await service.create_customer(
            connection, body=body, tenant_id=principal.tenant_id, clock=runtime.clock
        )
    return JSONBytes(schemas.customer_wire(customer), status_code=201, headers=headers)


async def get_customers(request: Request) -> JSONBytes:
    principal = await data_principal(request)
    headers = await check_rate_limit(request, PATH)
    query = request.query_params
    params = parse_strict(query, schemas.LIST_QUERY)
    async with tenant_read_connection(get_runtime(request), principal.tenant_id) as connection:
        rows, total = await accounts.list_customers(
            connection,
            page=params.page,
            limit=params.limit,
            search=query.get("search"),
            country=query.get("country"),
            currency=query.get("currency"),
            sort_by=query.get("sortBy"),
            sort_order=query.get("sortOrder"),
        )
    data = [
        schemas.customer_listed(c, active_subscriptions=n, total_spent=spent)
        for c, n, spent in rows
    ]
    return JSONBytes(envelope(data, total, params.page, params.limit), headers=headers)


def lean_routes() -> list[Route]:
    return [
        LeanRoute(PATH, post_customer, methods=["POST"], include_in_schema=False),
        LeanRoute(PATH, get_customers, methods=["GET"], include_in_schema=False),
    ]


@router.post(
    "",
    status_code=201,
    summary="Create a customer",
    responses=returns(
        schemas.CustomerOut, 201, errors={409: "externalId already used by another customer"}
    ),
)
async def create_customer(body: schemas.CustomerCreate, request: Request) -> JSONBytes:
    """Served by the lean route ahead of this one (same answers)."""
    return await post_customer(request)


@router.get(
    "",
    summary="List customers (paginated, with active subscriptions and total spent)",
    responses=returns(PageOut[schemas.CustomerListedOut]),
)
async def list_customers(
    request: Request,
    params: CustomerPage,
    search: str | None = None,
    country: str | None = None,
    currency: str | None = None,
    sort_by: Annotated[str | None, Query(alias="sortBy")] = None,
    sort_order: Annotated[str | None, Query(alias="sortOrder")] = None,
) -> JSONBytes:
    """Served by the lean route ahead of this one (same answers)."""
    return await get_customers(request)


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
