"""The PostgreSQL servers that hold tenant databases (NB_TENANT_DATABASE_URLS) and where a
new tenant goes: the server with the fewest tenants, by the placements recorded centrally
(``database_connections.server``). A server is named ``host:port`` from its URL."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.config import Settings
from novabilling.errors import NotFound
from novabilling.tenancy.models import DatabaseConnection


@dataclass(frozen=True)
class Server:
    name: str
    url: str  # admin URL: rights to CREATE DATABASE / ROLE


def server_name(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def configured(settings: Settings) -> list[Server]:
    """The tenant database servers, in the order given; empty when embedded (SQLite)."""
    servers: list[Server] = []
    for url in settings.tenant_server_urls:
        server = Server(server_name(url), url)
        if server.name in {s.name for s in servers}:
            raise ValueError(f"tenant database server listed twice: {server.name}")
        servers.append(server)
    return servers


def by_name(settings: Settings, name: str) -> Server:
    for server in configured(settings):
        if server.name == name:
            return server
    known = ", ".join(s.name for s in configured(settings)) or "none (embedded SQLite)"
    raise NotFound(f"Unknown tenant database server {name!r}; configured: {known}")


async def tenant_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(DatabaseConnection.server, func.count())
        .where(DatabaseConnection.server.is_not(None))
        .group_by(DatabaseConnection.server)
    )
    return {name: count for name, count in rows if name is not None}


async def choose(session: AsyncSession, settings: Settings) -> Server | None:
    """The server for a new tenant: fewest tenants, ties to the first listed."""
    servers = configured(settings)
    if not servers:
        return None
    if len(servers) == 1:
        return servers[0]
    counts = await tenant_counts(session)
    return min(servers, key=lambda s: counts.get(s.name, 0))
