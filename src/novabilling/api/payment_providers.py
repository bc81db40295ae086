"""/api/payment-providers (contract payment-providers.md). Thin: parse, call, render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from novabilling.kit.wire import MessageOut
from novabilling.payments import providers_service as service
from novabilling.payments import schemas
from novabilling.payments.credentials import provider_factory
from novabilling.web.deps import DataPrincipal, RuntimeDep, TenantSession
from novabilling.web.openapi import returns

router = APIRouter(prefix="/api/payment-providers", tags=["payment-providers"])


@router.post(
    "",
    status_code=201,
    summary="Register a payment provider's credentials",
    responses=returns(schemas.ProviderOut, 201, errors={409: "The provider is already configured"}),
)
async def create_provider(
    body: schemas.ProviderCreate,
    session: TenantSession,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    row = await service.create_provider(
        session,
        tenant_id=principal.tenant_id,
        encryptor=runtime.encryptor,
        settings=runtime.settings,
        provider_name=body.provider_name,
        credentials=body.credentials,
        is_active=body.is_active,
        priority=body.priority,
        clock=runtime.clock,
    )
    provider_factory(runtime).forget(principal.tenant_id)
    return schemas.provider_out(row)


@router.get(
    "",
    summary="List the configured payment providers",
    responses=returns(list[schemas.ProviderOut]),
)
async def list_providers(session: TenantSession) -> list[dict[str, Any]]:
    return [schemas.provider_out(row) for row in await service.list_providers(session)]


@router.get(
    "/{provider_id}",
    summary="Get a payment provider configuration",
    responses=returns(schemas.ProviderOut),
)
async def get_provider(provider_id: str, session: TenantSession) -> dict[str, Any]:
    return schemas.provider_out(await service.get_provider(session, provider_id=provider_id))


@router.patch(
    "/{provider_id}",
    summary="Update a payment provider's credentials, priority or state",
    responses=returns(schemas.ProviderOut),
)
async def update_provider(
    provider_id: str,
    body: schemas.ProviderUpdate,
    session: TenantSession,
    principal: DataPrincipal,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    row = await service.update_provider(
        session,
        tenant_id=principal.tenant_id,
        encryptor=runtime.encryptor,
        settings=runtime.settings,
        provider_id=provider_id,
        changes=body.model_dump(exclude_unset=True),
        clock=runtime.clock,
    )
    provider_factory(runtime).forget(principal.tenant_id)
    return schemas.provider_out(row)


@router.delete("/{provider_id}", summary="Remove a payment provider", responses=returns(MessageOut))
async def delete_provider(
    provider_id: str, session: TenantSession, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, str]:
    await service.delete_provider(session, provider_id=provider_id)
    provider_factory(runtime).forget(principal.tenant_id)
    return {"message": "Payment provider deleted successfully"}


@router.post(
    "/{provider_id}/test",
    status_code=201,
    summary="Check a provider's credentials against the provider",
    responses=returns(schemas.ProviderTestOut, 201),
)
async def test_provider(
    provider_id: str, session: TenantSession, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    ok, message = await service.check_provider(
        session,
        tenant_id=principal.tenant_id,
        provider_id=provider_id,
        factory=provider_factory(runtime),
    )
    return {"success": ok, "message": message}
