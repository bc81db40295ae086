"""/api/payments (contract payments.md). Thin: parse, call one service, render.
(``POST /api/invoices/{id}/checkout`` lives in the invoices router and calls
``payments.charge.checkout``.) A refund runs its own transactions around the provider
call (``payments.refunds``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from novabilling.errors import Invalid
from novabilling.kit.pagination import PageOut, PageParams, envelope
from novabilling.kit.timestamps import query_instant
from novabilling.payments import refunds, schemas, service
from novabilling.payments.credentials import provider_factory
from novabilling.payments.models import STATUSES
from novabilling.web.deps import DataPrincipal, RuntimeDep, TenantMaker, TenantSession
from novabilling.web.openapi import returns
from novabilling.web.paging import strict_page

router = APIRouter(tags=["payments"])
PaymentPage = Annotated[PageParams, Depends(strict_page(*schemas.PAYMENT_FILTERS))]


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    status = q.get("status")
    if status is not None and status not in STATUSES:
        raise Invalid("status", f"status must be one of: {', '.join(STATUSES)}")
    out: dict[str, Any] = {
        "status": status,
        "provider": q.get("provider"),
        "invoice_id": q.get("invoiceId"),
    }
    for wire, key in (("dateFrom", "date_from"), ("dateTo", "date_to")):
        out[key] = query_instant(wire, q.get(wire))
    return out


@router.get(
    "/api/payments",
    summary="List payments (paginated, with their invoice)",
    responses=returns(PageOut[schemas.PaymentOut]),
)
async def list_payments(
    session: TenantSession, params: PaymentPage, request: Request
) -> dict[str, Any]:
    rows, total = await service.list_payments(
        session, page=params.page, limit=params.limit, **_filters(request)
    )
    return envelope(await service.render(session, rows), total, params.page, params.limit)


@router.get(
    "/api/payments/{payment_id}",
    summary="Get a payment with its invoice",
    responses=returns(schemas.PaymentOut),
)
async def get_payment(payment_id: str, session: TenantSession) -> dict[str, Any]:
    payment = await service.get_payment(session, payment_id=payment_id)
    return (await service.render(session, [payment]))[0]


@router.post(
    "/api/payments",
    status_code=201,
    summary="Record a payment made elsewhere",
    responses=returns(schemas.PaymentOut, 201, errors={404: "Unknown invoice"}),
)
async def create_payment(
    body: schemas.PaymentCreate,
    session: TenantSession,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    payment = await service.create_manual(
        session, tenant_id=principal.tenant_id, body=body, clock=runtime.clock
    )
    return (await service.render(session, [payment]))[0]


@router.post(
    "/api/payments/{payment_id}/refund",
    status_code=201,
    summary="Refund a payment in full or in part through its provider",
    responses=returns(schemas.PaymentOut, 201),
)
async def refund_payment(
    payment_id: str,
    body: schemas.RefundCreate,
    maker: TenantMaker,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    await refunds.refund_payment(
        maker,
        tenant_id=principal.tenant_id,
        payment_id=payment_id,
        amount=body.amount,
        reason=body.reason,
        factory=provider_factory(runtime),
    )
    async with maker() as session:
        payment = await service.get_payment(session, payment_id=payment_id)
        return (await service.render(session, [payment]))[0]
