"""POST /webhooks/{provider}[/{tenantKey}]: no /api prefix, no credential (contract
webhooks.md). Thin: raw bytes in, ``inbound.receive``, the contract's 200 body out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from novabilling.tenancy.deps import RuntimeDep
from novabilling.webhooks import inbound

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("/{provider}")
async def provider_webhook(provider: str, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    return await inbound.receive(
        runtime,
        provider=provider,
        tenant_key=None,
        body=await request.body(),
        headers=request.headers,
    )


@router.post("/{provider}/{tenant_key}")
async def tenant_webhook(
    provider: str, tenant_key: str, request: Request, runtime: RuntimeDep
) -> dict[str, Any]:
    return await inbound.receive(
        runtime,
        provider=provider,
        tenant_key=tenant_key,
        body=await request.body(),
        headers=request.headers,
    )
