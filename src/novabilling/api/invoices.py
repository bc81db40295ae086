"""/api/invoices (contract invoices.md). Strict list; action POSTs answer 201."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from novabilling.billing import views
from novabilling.invoices import schemas, service
from novabilling.kit.pagination import PageOut, PageParams, envelope
from novabilling.kit.wire import MessageOut
from novabilling.payments import charge
from novabilling.payments import schemas as payment_schemas
from novabilling.payments import service as payments
from novabilling.payments.credentials import provider_factory
from novabilling.payments.schemas import CheckoutOut, PaymentOut
from novabilling.subscriptions.schemas import SubscriptionOut
from novabilling.web.deps import (
    DataPrincipal,
    RuntimeDep,
    TenantMaker,
    TenantProfileDep,
    TenantSession,
)
from novabilling.web.openapi import PDF_RESPONSE, optional_body, returns
from novabilling.web.paging import strict_page

router = APIRouter(prefix="/api/invoices", tags=["invoices"])


class InvoiceDetailOut(schemas.InvoiceOut):
    """GET /api/invoices/{id}: with its subscription (or null) and payments (oldest first)."""

    subscription: SubscriptionOut | None
    payments: list[PaymentOut]


InvoicePage = Annotated[PageParams, Depends(strict_page(*schemas.LIST_FILTERS))]


async def _loose_body(request: Request) -> dict[str, Any]:
    """Bodies the contract does not validate: any JSON object, else empty."""
    raw = await request.body()
    try:
        parsed = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value.strip() or None if isinstance(value, str) else None


@router.post(
    "",
    status_code=201,
    summary="Create a manual invoice",
    responses=returns(
        schemas.InvoiceOut,
        201,
        errors={404: "Unknown customer or subscription", 409: "invoiceNumber already used"},
    ),
)
async def create_invoice(
    session: TenantSession,
    principal: DataPrincipal,
    body: schemas.InvoiceCreate,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    invoice, customer = await service.create_invoice(
        session, tenant_id=principal.tenant_id, body=body, clock=runtime.clock
    )
    return schemas.invoice_out(invoice, customer)


@router.get(
    "",
    summary="List invoices (paginated, with their customer)",
    responses=returns(PageOut[schemas.InvoiceOut]),
)
async def list_invoices(
    session: TenantSession,
    params: InvoicePage,
    status: str | None = None,
    customer_id: Annotated[str | None, Query(alias="customerId")] = None,
    subscription_id: Annotated[str | None, Query(alias="subscriptionId")] = None,
    date_from: Annotated[str | None, Query(alias="dateFrom")] = None,
    date_to: Annotated[str | None, Query(alias="dateTo")] = None,
) -> dict[str, Any]:
    rows, total = await service.list_invoices(
        session,
        params=params,
        status=status,
        customer_id=customer_id,
        subscription_id=subscription_id,
        date_from=date_from,
        date_to=date_to,
    )
    data = [schemas.invoice_out(invoice, customer) for invoice, customer in rows]
    return envelope(data, total, params.page, params.limit)


@router.get(
    "/{invoice_id}",
    summary="Get an invoice with its customer, subscription and payments",
    responses=returns(InvoiceDetailOut),
)
async def get_invoice(invoice_id: str, session: TenantSession) -> dict[str, Any]:
    return await views.invoice_detail(session, invoice_id)


@router.post(
    "/{invoice_id}/finalize",
    status_code=201,
    summary="Finalize a draft invoice (numbers it, sends it)",
    responses=returns(schemas.InvoiceOut, 201),
)
async def finalize_invoice(
    invoice_id: str, session: TenantSession, tenant: TenantProfileDep, runtime: RuntimeDep
) -> dict[str, Any]:
    invoice, customer = await service.finalize(
        session, tenant=tenant, invoice_id=invoice_id, clock=runtime.clock
    )
    return schemas.invoice_out(invoice, customer)


@router.post(
    "/{invoice_id}/void",
    status_code=201,
    summary="Void an invoice",
    responses=returns(schemas.InvoiceOut, 201),
)
async def void_invoice(
    invoice_id: str, session: TenantSession, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    invoice, customer = await service.void(
        session, tenant_id=principal.tenant_id, invoice_id=invoice_id, clock=runtime.clock
    )
    return schemas.invoice_out(invoice, customer)


@router.post(
    "/{invoice_id}/mark-paid",
    status_code=201,
    openapi_extra=optional_body(schemas.MarkPaidIn),
    summary="Mark an invoice paid outside any provider",
    responses=returns(schemas.InvoiceOut, 201),
)
async def mark_paid(
    invoice_id: str,
    request: Request,
    session: TenantSession,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    body = await _loose_body(request)
    invoice = await payments.mark_paid(
        session,
        tenant_id=principal.tenant_id,
        invoice_id=invoice_id,
        method=_text(body, "paymentMethod") or "manual",
        clock=runtime.clock,
    )
    return schemas.invoice_out(*await service.with_customer(session, invoice))


@router.post(
    "/{invoice_id}/checkout",
    status_code=201,
    openapi_extra=optional_body(schemas.CheckoutIn),
    summary="Start a provider checkout for an invoice",
    responses=returns(CheckoutOut, 201),
)
async def checkout(
    invoice_id: str,
    request: Request,
    maker: TenantMaker,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    body = await _loose_body(request)
    payment = await charge.checkout(
        maker,
        tenant_id=principal.tenant_id,
        invoice_id=invoice_id,
        callback_url=_text(body, "callbackUrl"),
        provider=_text(body, "provider"),
        factory=provider_factory(runtime),
        clock=runtime.clock,
    )
    return payment_schemas.checkout_out(payment)


@router.get(
    "/{invoice_id}/pdf",
    response_class=Response,
    summary="Download the invoice as PDF",
    responses=PDF_RESPONSE,
)
async def invoice_pdf(
    invoice_id: str, session: TenantSession, tenant: TenantProfileDep, runtime: RuntimeDep
) -> Response:
    data = await service.pdf(
        session, tenant=tenant, invoice_id=invoice_id, data_dir=runtime.settings.data_dir
    )
    return Response(
        content=data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="invoice-{invoice_id}.pdf"'},
    )


@router.post(
    "/{invoice_id}/send-email",
    status_code=201,
    openapi_extra=optional_body(schemas.SendEmailIn),
    summary="E-mail the invoice to the customer (queued)",
    responses=returns(MessageOut, 201),
)
async def send_email(
    invoice_id: str, request: Request, session: TenantSession, principal: DataPrincipal
) -> dict[str, str]:
    body = await _loose_body(request)
    recipient = await service.send_email(
        session, tenant_id=principal.tenant_id, invoice_id=invoice_id, email=body.get("email")
    )
    return {"message": f"Invoice email queued for {recipient}"}
