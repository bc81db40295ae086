"""/api/credit-notes (contract credit-notes.md). Lenient list, ``limit`` default 20.

Additive: ``POST /{id}/credit-wallet`` (the note credited to a wallet of the customer),
``POST /{id}/refund`` (a FINALIZED note on a PAID invoice refunded to the
provider through the invoice's payment) and ``GET /{id}/pdf`` (the note as a PDF)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from novabilling.billing import credit_notes as outcomes
from novabilling.invoices import credit_notes as service
from novabilling.invoices.credit_note_schemas import (
    CreditNoteCreate,
    CreditNoteOut,
    CreditNotePatch,
    CreditWalletIn,
    credit_note_out,
    invoice_embed,
)
from novabilling.invoices.documents import credit_note_number, credit_note_pdf
from novabilling.kit.pagination import PageOut, envelope, parse_lenient
from novabilling.payments.credentials import provider_factory
from novabilling.web.deps import (
    DataPrincipal,
    RuntimeDep,
    TenantMaker,
    TenantProfileDep,
    TenantSession,
)
from novabilling.web.openapi import PDF_RESPONSE, returns

router = APIRouter(prefix="/api/credit-notes", tags=["credit-notes"])


def _out(found: service.Found, *fields: str) -> dict[str, Any]:
    return credit_note_out(
        found.note, customer=found.customer, invoice=invoice_embed(found.invoice, *fields)
    )


@router.post(
    "",
    status_code=201,
    summary="Create a credit note on an invoice",
    responses=returns(CreditNoteOut, 201, errors={404: "Unknown invoice"}),
)
async def create_credit_note(
    session: TenantSession, body: CreditNoteCreate, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    found = await service.create(
        session, tenant_id=principal.tenant_id, body=body, clock=runtime.clock
    )
    return _out(found)


@router.get("", summary="List credit notes (paginated)", responses=returns(PageOut[CreditNoteOut]))
async def list_credit_notes(
    session: TenantSession,
    request: Request,
    customer_id: Annotated[str | None, Query(alias="customerId")] = None,
    invoice_id: Annotated[str | None, Query(alias="invoiceId")] = None,
    status: str | None = None,
) -> dict[str, Any]:
    params = parse_lenient(request.query_params)
    found, total = await service.list_notes(
        session,
        customer_id=customer_id,
        invoice_id=invoice_id,
        status=status,
        page=params.page,
        limit=params.limit,
    )
    return envelope([_out(f, "currency") for f in found], total, params.page, params.limit)


@router.get("/{note_id}", summary="Get a credit note", responses=returns(CreditNoteOut))
async def get_credit_note(session: TenantSession, note_id: str) -> dict[str, Any]:
    return _out(await service.get(session, note_id), "currency", "status")


@router.patch("/{note_id}", summary="Update a draft credit note", responses=returns(CreditNoteOut))
async def update_credit_note(
    session: TenantSession, note_id: str, body: CreditNotePatch, runtime: RuntimeDep
) -> dict[str, Any]:
    return _out(await service.update_note(session, note_id, body=body, clock=runtime.clock))


@router.post(
    "/{note_id}/finalize",
    status_code=201,
    summary="Finalize a draft credit note",
    responses=returns(CreditNoteOut, 201),
)
async def finalize_credit_note(
    session: TenantSession, note_id: str, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    found = await service.finalize(
        session, note_id, tenant_id=principal.tenant_id, clock=runtime.clock
    )
    return _out(found)


@router.post(
    "/{note_id}/void",
    status_code=201,
    summary="Void a credit note",
    responses=returns(CreditNoteOut, 201),
)
async def void_credit_note(
    session: TenantSession, note_id: str, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    found = await service.void(session, note_id, tenant_id=principal.tenant_id, clock=runtime.clock)
    return _out(found)


@router.post(
    "/{note_id}/refund",
    status_code=201,
    summary="Refund a finalized credit note through the invoice's payment provider",
    responses=returns(CreditNoteOut, 201),
)
async def refund_credit_note(
    note_id: str, maker: TenantMaker, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    found = await outcomes.refund_note(
        maker,
        tenant_id=principal.tenant_id,
        note_id=note_id,
        factory=provider_factory(runtime),
    )
    return _out(found, "currency", "status")


@router.post(
    "/{note_id}/credit-wallet",
    status_code=201,
    summary="Credit a finalized credit note to one of the customer's wallets",
    responses=returns(CreditNoteOut, 201),
)
async def credit_note_to_wallet(
    session: TenantSession,
    note_id: str,
    runtime: RuntimeDep,
    body: CreditWalletIn | None = None,
) -> dict[str, Any]:
    wallet_id = body.wallet_id if body is not None else None
    found = await outcomes.credit_wallet(session, note_id, wallet_id=wallet_id, clock=runtime.clock)
    return _out(found, "currency", "status")


@router.get(
    "/{note_id}/pdf",
    response_class=Response,
    summary="Download the credit note as PDF",
    responses=PDF_RESPONSE,
)
async def credit_note_pdf_file(
    session: TenantSession, note_id: str, tenant: TenantProfileDep
) -> Response:
    found = await service.get(session, note_id)
    data = await credit_note_pdf(session, found.note, found.invoice, tenant)
    name = credit_note_number(found.note)
    return Response(
        content=data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="credit-note-{name}.pdf"'},
    )
