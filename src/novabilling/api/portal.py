"""/api/portal/customers/{externalId} (contract portal.md) and its portal tokens.

Portal routes accept a data credential (API key, access token) or a portal token for that
one customer. Tokens come from ``POST /api/portal/customers/{externalId}/token`` (portal.md
Improve) or ``POST /api/customers/{id}/portal-token`` (same answer, by customer id), both
with the tenant's credential only; their life is ``expiresInMinutes`` of the body (1-1440)
or ``NB_PORTAL_TOKEN_MINUTES`` (default 60).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request

from novabilling.billing import portal
from novabilling.billing.portal_schemas import (
    PortalBillingOut,
    PortalCheckoutIn,
    PortalCheckoutOut,
    PortalInvoiceOut,
    PortalPaymentOut,
    PortalTokenIn,
    PortalTokenOut,
)
from novabilling.customers import service as customers_service
from novabilling.kit.pagination import PageOut, PageParams, envelope
from novabilling.payments.credentials import provider_factory
from novabilling.subscriptions.schemas import SubscriptionWithPlanOut
from novabilling.web.deps import (
    DataPrincipal,
    PortalMaker,
    PortalPrincipal,
    PortalReadSession,
    RuntimeDep,
    TenantReadSession,
)
from novabilling.web.openapi import optional_body, returns
from novabilling.web.paging import lenient_page

router = APIRouter(tags=["portal"])
PREFIX = "/api/portal/customers/{external_id}"
Page = Annotated[PageParams, Depends(lenient_page)]


async def _loose_body(request: Request) -> dict[str, Any]:
    """Bodies the contract does not validate: any JSON object, else empty."""
    raw = await request.body()
    try:
        parsed = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


@router.post(
    PREFIX + "/token",
    status_code=201,
    openapi_extra=optional_body(PortalTokenIn),
    summary="Issue a portal token for a customer (by external id)",
    responses=returns(PortalTokenOut, 201),
)
async def portal_token(
    external_id: str,
    request: Request,
    session: TenantReadSession,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    minutes = portal.token_minutes(
        await _loose_body(request), runtime.settings.portal_token_minutes
    )
    customer = await customers_service.get_by_external_id(session, external_id)
    issued = portal.issue_token(
        tenant_id=principal.tenant_id,
        customer=customer,
        minutes=minutes,
        signer=runtime.signer,
        clock=runtime.clock,
    )
    return portal.token_out(issued)


@router.post(
    "/api/customers/{customer_id}/portal-token",
    status_code=201,
    openapi_extra=optional_body(PortalTokenIn),
    summary="Issue a portal token for a customer (by id)",
    responses=returns(PortalTokenOut, 201),
)
async def customer_portal_token(
    customer_id: str,
    request: Request,
    session: TenantReadSession,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    minutes = portal.token_minutes(
        await _loose_body(request), runtime.settings.portal_token_minutes
    )
    customer = await customers_service.get_customer(session, customer_id)
    issued = portal.issue_token(
        tenant_id=principal.tenant_id,
        customer=customer,
        minutes=minutes,
        signer=runtime.signer,
        clock=runtime.clock,
    )
    return portal.token_out(issued)


@router.get(
    PREFIX + "/billing",
    summary="Portal: the customer's billing overview",
    responses=returns(PortalBillingOut),
)
async def portal_billing(
    external_id: str, session: PortalReadSession, principal: PortalPrincipal
) -> dict[str, Any]:
    customer = await portal.portal_customer(session, principal, external_id)
    return await portal.billing(session, customer)


@router.get(
    PREFIX + "/subscriptions",
    summary="Portal: the customer's subscriptions",
    responses=returns(list[SubscriptionWithPlanOut]),
)
async def portal_subscriptions(
    external_id: str, session: PortalReadSession, principal: PortalPrincipal
) -> list[dict[str, Any]]:
    customer = await portal.portal_customer(session, principal, external_id)
    return await portal.subscriptions(session, customer)


@router.get(
    PREFIX + "/invoices",
    summary="Portal: the customer's invoices (paginated)",
    responses=returns(PageOut[PortalInvoiceOut]),
)
async def portal_invoices(
    external_id: str,
    session: PortalReadSession,
    principal: PortalPrincipal,
    params: Page,
    status: str | None = None,
) -> dict[str, Any]:
    customer = await portal.portal_customer(session, principal, external_id)
    rows, total = await portal.invoices(
        session,
        customer,
        status=portal.invoice_status(status),
        page=params.page,
        limit=params.limit,
    )
    return envelope(rows, total, params.page, params.limit)


@router.get(
    PREFIX + "/payments",
    summary="Portal: the customer's payments (paginated)",
    responses=returns(PageOut[PortalPaymentOut]),
)
async def portal_payments(
    external_id: str, session: PortalReadSession, principal: PortalPrincipal, params: Page
) -> dict[str, Any]:
    customer = await portal.portal_customer(session, principal, external_id)
    rows, total = await portal.payments(session, customer, page=params.page, limit=params.limit)
    return envelope(rows, total, params.page, params.limit)


@router.post(
    PREFIX + "/invoices/{invoice_id}/checkout",
    status_code=201,
    openapi_extra=optional_body(PortalCheckoutIn),
    summary="Portal: pay one of the customer's invoices",
    responses=returns(PortalCheckoutOut, 201),
)
async def portal_checkout(
    external_id: str,
    invoice_id: str,
    request: Request,
    maker: PortalMaker,
    principal: PortalPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    body = await _loose_body(request)
    callback = body.get("callbackUrl")
    return await portal.checkout(
        maker,
        principal=principal,
        external_id=external_id,
        invoice_id=invoice_id,
        callback_url=callback.strip() or None if isinstance(callback, str) else None,
        factory=provider_factory(runtime),
        clock=runtime.clock,
    )
