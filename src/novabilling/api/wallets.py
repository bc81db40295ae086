"""/api/wallets (contract wallets.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from novabilling.kit.pagination import PageOut, PageParams, envelope
from novabilling.wallets import schemas, service
from novabilling.web.deps import DataPrincipal, RuntimeDep, TenantProfileDep, TenantSession
from novabilling.web.openapi import returns
from novabilling.web.paging import lenient_page

router = APIRouter(prefix="/api/wallets", tags=["wallets"])

Page = Annotated[PageParams, Depends(lenient_page)]


@router.post(
    "",
    status_code=201,
    summary="Create a prepaid credit wallet for a customer",
    responses=returns(
        schemas.WalletOut,
        201,
        errors={404: "Unknown customer"},
    ),
)
async def create_wallet(
    session: TenantSession,
    body: schemas.WalletCreate,
    tenant: TenantProfileDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    wallet, customer = await service.create_wallet(
        session, body=body, tenant=tenant, clock=runtime.clock
    )
    return schemas.wallet_out(wallet, customer)


@router.get("", summary="List wallets (paginated)", responses=returns(PageOut[schemas.WalletOut]))
async def list_wallets(
    session: TenantSession,
    page: Page,
    customer_id: Annotated[str | None, Query(alias="customerId")] = None,
    status: str | None = None,
) -> dict[str, Any]:
    rows, total = await service.list_wallets(
        session, page=page.page, limit=page.limit, customer_id=customer_id, status=status
    )
    return envelope([schemas.wallet_out(w, c) for w, c in rows], total, page.page, page.limit)


@router.post(
    "/transactions",
    status_code=201,
    summary="Top up a wallet (paid and/or granted credits)",
    responses=returns(schemas.TopUpOut, 201, errors={404: "Unknown wallet"}),
)
async def top_up(
    session: TenantSession,
    body: schemas.TopUp,
    tenant: TenantProfileDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    txs, wallet, customer = await service.top_up(
        session, body=body, tenant=tenant, clock=runtime.clock
    )
    return {
        "transactions": [schemas.transaction_out(t) for t in txs],
        "wallet": schemas.wallet_out(wallet, customer),
    }


@router.get("/{wallet_id}", summary="Get a wallet", responses=returns(schemas.WalletOut))
async def get_wallet(session: TenantSession, wallet_id: str) -> dict[str, Any]:
    return schemas.wallet_out(*await service.get_wallet(session, wallet_id))


@router.patch("/{wallet_id}", summary="Update a wallet", responses=returns(schemas.WalletOut))
async def update_wallet(
    session: TenantSession,
    wallet_id: str,
    body: schemas.WalletPatch,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    wallet, customer = await service.update_wallet(
        session, wallet_id, body=body, tenant_id=principal.tenant_id, clock=runtime.clock
    )
    return schemas.wallet_out(wallet, customer)


@router.delete("/{wallet_id}", summary="Terminate a wallet", responses=returns(schemas.WalletOut))
async def terminate_wallet(
    session: TenantSession, wallet_id: str, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    wallet, customer = await service.terminate(
        session, wallet_id, tenant_id=principal.tenant_id, clock=runtime.clock
    )
    return schemas.wallet_out(wallet, customer)


@router.get(
    "/{wallet_id}/transactions",
    summary="List a wallet's transactions (paginated)",
    responses=returns(PageOut[schemas.TransactionOut]),
)
async def list_transactions(
    session: TenantSession,
    wallet_id: str,
    page: Page,
    status: str | None = None,
    transaction_status: Annotated[str | None, Query(alias="transactionStatus")] = None,
    transaction_type: Annotated[str | None, Query(alias="transactionType")] = None,
) -> dict[str, Any]:
    rows, total = await service.list_transactions(
        session,
        wallet_id,
        page=page.page,
        limit=page.limit,
        status=status,
        transaction_status=transaction_status,
        transaction_type=transaction_type,
    )
    return envelope([schemas.transaction_out(t) for t in rows], total, page.page, page.limit)
