"""create_app(): middleware, routers, error handlers — no logic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from novabilling import routes
from novabilling.api.customers import lean_routes as customer_routes
from novabilling.api.events import lean_routes as event_routes
from novabilling.api.webhooks import intake_routes
from novabilling.billing.scheduler import EmbeddedScheduler
from novabilling.bootstrap import build_runtime
from novabilling.config import Settings, get_settings
from novabilling.kit import heap
from novabilling.kit.logging import configure_logging
from novabilling.runtime import Runtime
from novabilling.web import docs, errors, health, openapi
from novabilling.web.deps import data_principal, portal_principal, rate_limit, session_principal
from novabilling.web.guard import InputGuardMiddleware
from novabilling.web.idempotency import IdempotencyMiddleware
from novabilling.web.middleware import RequestContextMiddleware
from novabilling.web.responses import JSONBytes

_PUBLIC_PREFIXES = (
    "/api/auth",
    "/api/currencies",
    "/api/docs",
    "/api/reference",
    "/api/openapi.json",
)


async def _auth_guard(request: Request) -> None:
    """Resolve the credential a route needs (used to answer 401 before 400)."""
    path = request.url.path
    if not path.startswith("/api") or path.startswith(_PUBLIC_PREFIXES):
        return
    if path.startswith("/api/tenants/me"):
        await session_principal(request)
    elif path.startswith("/api/portal/"):  # a portal token is a credential there
        await portal_principal(request)
    else:
        await data_principal(request)


class _TrailingSlash:
    """``/api/customers/`` is ``/api/customers`` (no redirect; contract README §1)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope["path"] = path.rstrip("/") or "/"
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime else get_settings())
    configure_logging(json=settings.json_logs, level=settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = runtime is None
        app.state.runtime = runtime or build_runtime(settings)
        scheduler = None
        if settings.run_scheduler:
            scheduler = EmbeddedScheduler(app.state.runtime)
            scheduler.start()
        trimmer = asyncio.create_task(heap.trim_every(), name="heap-trim")
        heap.settle()
        try:
            yield
        finally:
            await heap.stop(trimmer)
            if scheduler is not None:
                await scheduler.stop()
            if own:
                await app.state.runtime.close()

    app = FastAPI(
        title="NovaBilling API",
        version="1.0.0",
        description="Multi-tenant subscription billing for Africa and the world.",
        default_response_class=JSONBytes,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    if runtime is not None:
        app.state.runtime = runtime
    app.state.auth_guard = _auth_guard
    errors.install(app)
    limited = APIRouter(dependencies=[Depends(rate_limit)])
    for router in routes.api_routers():
        limited.include_router(router)
    app.include_router(limited)
    app.router.routes[:0] = intake_routes()  # first: the webhook intake skips DI (its module)
    app.router.routes[:0] = event_routes()  # same for usage event intake (api/events.py)
    app.router.routes[:0] = customer_routes()  # and creating/listing customers
    app.router.routes[:0] = health.lean_routes()  # and the liveness probe
    for router in routes.static_routers():
        app.include_router(router)
    app.include_router(health.router)
    docs.install(app)
    openapi.install(app, public_prefixes=_PUBLIC_PREFIXES)
    app.add_middleware(IdempotencyMiddleware)  # innermost: after the input guard
    app.add_middleware(InputGuardMiddleware)  # its answers get CORS and ids too
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=[
            "X-Request-Id",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Retry-After",
        ],
    )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(_TrailingSlash)
    return app
