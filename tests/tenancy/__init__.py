"""Shared helpers for the foundation proof tests.

``install_probe(app)`` mounts a tiny *data* route (``GET /api/_probe``) behind the real
``TenantSession`` / ``DataPrincipal`` dependencies, so the principal and tenant-session
plumbing can be proven before any domain router exists. ``app_client`` serves a runtime
of its own (custom settings or a ``TestClock``) with an app lent by tests/apps.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import text

from novabilling.bootstrap import build_runtime
from novabilling.config import Settings
from novabilling.kit.clock import Clock
from novabilling.runtime import Runtime
from novabilling.web.deps import DataPrincipal, TenantSession, rate_limit
from tests.apps import APPS

PROBE = "/api/_probe"


def install_probe(app: FastAPI) -> None:
    """Add ``GET /api/_probe`` (a data route: API key or access token) once."""
    if getattr(app.state, "probe_installed", False):
        return
    app.state.probe_installed = True
    router = APIRouter(dependencies=[Depends(rate_limit)])

    @router.get(PROBE)
    async def probe(principal: DataPrincipal, session: TenantSession) -> dict[str, Any]:
        one = await session.scalar(text("SELECT 1"))
        return {"tenantId": principal.tenant_id, "kind": principal.kind, "db": one}

    app.include_router(router)


async def has_route(client: httpx.AsyncClient, path: str) -> bool:
    """A mounted API route answers an anonymous GET with anything but 404 (usually 401)."""
    return (await client.get(path)).status_code != 404


def client_app(client: httpx.AsyncClient) -> FastAPI:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    return app


@asynccontextmanager
async def app_client(
    settings: Settings, *, clock: Clock | None = None, probe: bool = True
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    runtime = build_runtime(settings, clock=clock)
    app = APPS.lend(runtime)
    if probe:
        install_probe(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c, runtime
    finally:
        APPS.give_back(runtime)
        await runtime.close()
