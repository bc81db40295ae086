"""/api/tenants/me: session endpoints, access token only (contract tenants.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from novabilling.auth.schemas import TenantOut
from novabilling.billing import settings as tenant_settings
from novabilling.kit.wire import MessageOut
from novabilling.tenants import schemas, service, usage
from novabilling.web.deps import CentralSession, RuntimeDep, SessionPrincipal
from novabilling.web.openapi import returns

router = APIRouter(prefix="/api/tenants/me", tags=["tenants"])


@router.get(
    "", summary="Get the tenant (with its API key and webhook secret)", responses=returns(TenantOut)
)
async def get_me(principal: SessionPrincipal, runtime: RuntimeDep) -> dict[str, Any]:
    return await service.tenant_view(runtime, principal.tenant_id)


@router.patch(
    "",
    summary="Update the tenant's profile, webhook URL or settings",
    responses=returns(schemas.TenantReducedOut),
)
async def patch_me(
    body: schemas.TenantPatch, principal: SessionPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    """Update the tenant. `settings` is shallow-merged (top-level keys replaced). Checked
    settings: `fxRates` (analytics) and `providerOrder` - per currency, the payment
    providers to charge first, most preferred first, e.g.
    `{"NGN": ["flutterwave", "paystack"], "KES": ["mpesa", "pesapal"]}`; an automatic
    charge that is declined or gets no answer moves on to the next provider with a saved
    method for the customer. Unknown currencies or providers, duplicates and providers that
    cannot charge the currency are 400 naming `settings.providerOrder.<CODE>`; `null`
    clears the setting."""
    tenant = await tenant_settings.update_profile(
        runtime, principal.tenant_id, changes=body.model_dump(exclude_unset=True)
    )
    return schemas.tenant_reduced(tenant)


@router.get(
    "/usage",
    summary="Count the tenant's customers, subscriptions, invoices and revenue",
    responses=returns(schemas.TenantUsageOut),
)
async def get_usage(principal: SessionPrincipal, runtime: RuntimeDep) -> dict[str, Any]:
    maker = await runtime.engines.sessionmaker(principal.tenant_id)
    async with maker() as session:
        return await usage.tenant_usage(session)


@router.get(
    "/api-keys", summary="List API keys (masked)", responses=returns(list[schemas.ApiKeyListedOut])
)
async def list_keys(principal: SessionPrincipal, session: CentralSession) -> list[dict[str, Any]]:
    keys = await service.list_api_keys(session, principal.tenant_id)
    return [schemas.api_key_listed(k) for k in keys]


@router.post(
    "/api-keys",
    status_code=201,
    summary="Create an API key (the full key is shown once)",
    responses=returns(schemas.ApiKeyCreatedOut, 201),
)
async def create_key(
    body: schemas.ApiKeyCreate,
    principal: SessionPrincipal,
    session: CentralSession,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    key, full = await service.create_api_key(
        session,
        principal.tenant_id,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        clock=runtime.clock,
    )
    return schemas.api_key_created(key, full)


@router.delete("/api-keys/{key_id}", summary="Revoke an API key", responses=returns(MessageOut))
async def revoke_key(
    key_id: str, principal: SessionPrincipal, session: CentralSession, runtime: RuntimeDep
) -> dict[str, str]:
    digest = await service.revoke_api_key(session, principal.tenant_id, key_id, clock=runtime.clock)
    runtime.principals.forget_key(digest=digest)
    return {"message": "API key revoked successfully"}


@router.post(
    "/smtp/test",
    status_code=201,
    summary="Send a test e-mail through the tenant's SMTP settings",
    responses=returns(MessageOut, 201),
)
async def smtp_test(
    body: schemas.SmtpTestIn,
    principal: SessionPrincipal,
    session: CentralSession,
    runtime: RuntimeDep,
) -> dict[str, str]:
    tenant = await service.get_tenant(session, principal.tenant_id)
    await service.send_smtp_test(runtime, tenant, recipient=body.to)
    return {"message": f"Test email sent to {body.to}"}
