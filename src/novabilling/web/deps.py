"""Request dependencies: principal -> tenant session. The tenant database is derived
only from the authenticated principal, never from a path or body (DESIGN rule 5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import structlog
from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from novabilling.errors import RateLimited
from novabilling.kit.jobs import job_buffer
from novabilling.runtime import Runtime
from novabilling.tenancy.principal import Principal
from novabilling.tenancy.profiles import TenantProfile
from novabilling.webhooks import outbound


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def runtime_dependency(request: Request) -> Runtime:
    """``async`` on purpose: FastAPI runs a plain ``def`` dependency in the thread pool,
    a thread hand-off per request that cost more than the whole lookup."""
    return get_runtime(request)


RuntimeDep = Annotated[Runtime, Depends(runtime_dependency)]


async def data_principal(request: Request) -> Principal:
    """API key or access token (contract README §2, data routes)."""
    runtime = get_runtime(request)
    principal = await runtime.principals.resolve(
        request.headers.get("authorization"), session_only=False
    )
    structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
    return principal


async def session_principal(request: Request) -> Principal:
    """Access token only (``/api/tenants/me*``)."""
    runtime = get_runtime(request)
    principal = await runtime.principals.resolve(
        request.headers.get("authorization"), session_only=True
    )
    structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
    return principal


async def portal_principal(request: Request) -> Principal:
    """Customer portal routes: a portal token or a data credential (portal.md)."""
    principal = await get_runtime(request).principals.resolve_portal(
        request.headers.get("authorization")
    )
    structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
    return principal


DataPrincipal = Annotated[Principal, Depends(data_principal)]
PortalPrincipal = Annotated[Principal, Depends(portal_principal)]
SessionPrincipal = Annotated[Principal, Depends(session_principal)]


async def tenant_profile(request: Request, principal: DataPrincipal) -> TenantProfile:
    """The caller's tenant profile (cached; ``runtime.tenant_profiles``)."""
    return await get_runtime(request).tenant_profiles.get(principal.tenant_id)


TenantProfileDep = Annotated[TenantProfile, Depends(tenant_profile)]


async def tenant_maker(
    request: Request, principal: DataPrincipal
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the caller's own database, for the few use cases that run several
    transactions of their own (a provider call between them: checkout, refund). The jobs
    their committed transactions queued are pushed at the end, even when a later step
    failed (what was committed stays done)."""
    runtime = get_runtime(request)
    assert runtime.jobs is not None
    maker = await runtime.engines.sessionmaker(principal.tenant_id)
    async with job_buffer(runtime.jobs) as buffer:
        try:
            yield maker
        finally:
            await buffer.flush_committed()


TenantMaker = Annotated[async_sessionmaker[AsyncSession], Depends(tenant_maker, scope="function")]


@asynccontextmanager
async def _committed(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit when the block succeeds, roll back when it raises."""
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


@asynccontextmanager
async def tenant_transaction(runtime: Runtime, tenant_id: str) -> AsyncIterator[AsyncSession]:
    """One transaction on the tenant's own database: commit, then push the jobs it
    queued; roll back and drop them on error."""
    maker = await runtime.engines.sessionmaker(tenant_id)
    profile = await runtime.tenant_profiles.get(tenant_id)
    assert runtime.jobs is not None
    async with maker() as session, job_buffer(runtime.jobs) as buffer:
        with outbound.subscribed(bool(profile.webhook_url)):
            async with _committed(session):
                yield session
        await buffer.flush()


@asynccontextmanager
async def tenant_single_write(runtime: Runtime, tenant_id: str) -> AsyncIterator[AsyncConnection]:
    """For a use case whose only write is one Core statement plus, when the tenant takes
    webhooks, an outbound event. A tenant without ``webhookUrl`` gets no outbox row, so
    there is nothing to keep atomic with the statement: it runs on a connection of the
    read engine (autocommit: one round trip instead of BEGIN, statement, COMMIT; behind
    PgBouncer a transaction) and no ORM session (its bookkeeping was ~8 % of a customer
    create's CPU). With ``webhookUrl``: the connection of a ``tenant_transaction``, whose
    commit writes the outbox row with the statement."""
    profile = await runtime.tenant_profiles.get(tenant_id)
    if profile.webhook_url:
        async with tenant_transaction(runtime, tenant_id) as session:
            yield await session.connection()
        return
    engine = await runtime.engines.read_engine(tenant_id)
    async with engine.begin() as connection:
        with outbound.subscribed(False):
            yield connection


@asynccontextmanager
async def tenant_reads(runtime: Runtime, tenant_id: str) -> AsyncIterator[AsyncSession]:
    """Autocommit reads on the tenant's own database (two round trips fewer than a
    transaction). Never for writes: they would not be atomic."""
    maker = await runtime.engines.read_sessionmaker(tenant_id)
    async with maker() as session:
        yield session


@asynccontextmanager
async def tenant_read_connection(
    runtime: Runtime, tenant_id: str
) -> AsyncIterator[AsyncConnection]:
    """``tenant_reads`` without the ORM session (its connection, transaction and close
    bookkeeping, ~6 % of a customers list request): a Core connection from the same pool
    with the same options, for reads that are Core statements only."""
    engine = await runtime.engines.read_engine(tenant_id)
    async with engine.connect() as connection:
        yield connection


async def tenant_session(request: Request, principal: DataPrincipal) -> AsyncIterator[AsyncSession]:
    """One transaction per request on the caller's own database; commits on success."""
    async with tenant_transaction(get_runtime(request), principal.tenant_id) as session:
        yield session


async def tenant_read_session(
    request: Request, principal: DataPrincipal
) -> AsyncIterator[AsyncSession]:
    """For endpoints that only read: ``tenant_reads`` on the caller's own database."""
    async with tenant_reads(get_runtime(request), principal.tenant_id) as session:
        yield session


async def portal_read_session(
    request: Request, principal: PortalPrincipal
) -> AsyncIterator[AsyncSession]:
    """``tenant_read_session`` for the portal's reads (portal token or data credential)."""
    async with tenant_reads(get_runtime(request), principal.tenant_id) as session:
        yield session


async def portal_maker(
    request: Request, principal: PortalPrincipal
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """``tenant_maker`` for the portal's checkout (portal token or data credential)."""
    runtime = get_runtime(request)
    assert runtime.jobs is not None
    maker = await runtime.engines.sessionmaker(principal.tenant_id)
    async with job_buffer(runtime.jobs) as buffer:
        try:
            yield maker
        finally:
            await buffer.flush_committed()


async def central_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_runtime(request).central() as session, _committed(session):
        yield session


TenantSession = Annotated[AsyncSession, Depends(tenant_session, scope="function")]
CentralSession = Annotated[AsyncSession, Depends(central_session, scope="function")]
TenantReadSession = Annotated[AsyncSession, Depends(tenant_read_session, scope="function")]
PortalReadSession = Annotated[AsyncSession, Depends(portal_read_session, scope="function")]
PortalMaker = Annotated[async_sessionmaker[AsyncSession], Depends(portal_maker, scope="function")]


async def check_rate_limit(request: Request, template: str) -> dict[str, str]:
    """Count one hit of this client IP on this route (contract README §9); the
    ``X-RateLimit-*`` headers for the answer (none when limiting is off). Over the limit:
    ``RateLimited`` (429; the error handlers add the headers, kept on request.state)."""
    runtime = get_runtime(request)
    if runtime.limiter is None or runtime.rate is None:
        return {}
    limit, window = runtime.rate
    client = request.client.host if request.client else "unknown"
    decision = await runtime.limiter.hit(f"{client}:{request.method}:{template}", limit, window)
    headers = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_seconds),
    }
    request.state.rate_limit_headers = headers
    if not decision.allowed:
        raise RateLimited(retry_after=decision.reset_seconds)
    return headers


async def rate_limit(request: Request, response: Response) -> None:
    """Router dependency: ``check_rate_limit`` on the matched route's template."""
    route = request.scope.get("route")
    headers = await check_rate_limit(request, getattr(route, "path", request.url.path))
    response.headers.update(headers)
