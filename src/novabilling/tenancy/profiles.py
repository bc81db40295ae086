"""The tenant profile: a read-only snapshot of a tenant's central row, and the one
per-process cache of it.

Everything that needs a tenant's name, settings or webhook URL (invoices, e-mails, the
billing tick, outbound webhooks, ``GET /api/tenants/me``) reads it through
``TenantProfiles.get``. A writer drops the entry after its commit
(``TenantProfiles.drop``); a reader that loaded the row before that commit cannot put the
stale snapshot back (versioned put, ``kit.ttlcache``). Other processes see a change after
at most the cache's TTL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.errors import NotFound
from novabilling.kit.ttlcache import TTLCache
from novabilling.tenancy.models import Tenant

__all__ = ["TenantProfile", "TenantProfiles"]


@dataclass(frozen=True)
class TenantProfile:
    """A tenant as of one read of its row (secrets stay sealed)."""

    id: str
    name: str
    email: str
    created_at: datetime
    updated_at: datetime
    slug: str = ""
    is_active: bool = True
    settings: Mapping[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None
    api_key_encrypted: str = ""
    webhook_secret_encrypted: str = ""
    last_login_at: datetime | None = None

    @classmethod
    def of(cls, tenant: Tenant) -> TenantProfile:
        return cls(
            id=tenant.id,
            name=tenant.name,
            email=tenant.email,
            slug=tenant.slug,
            is_active=tenant.is_active,
            settings=dict(tenant.settings or {}),
            webhook_url=tenant.webhook_url,
            api_key_encrypted=tenant.api_key_encrypted,
            webhook_secret_encrypted=tenant.webhook_secret_encrypted,
            last_login_at=tenant.last_login_at,
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
        )

    def setting_int(self, key: str) -> int | None:
        """``settings[key]`` as an int, or None when unset or not a number."""
        value = self.settings.get(key)
        if isinstance(value, bool) or value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            return None


class TenantProfiles:
    """The per-process profile cache (``runtime.tenant_profiles``)."""

    def __init__(self, central: async_sessionmaker[AsyncSession], *, ttl: float) -> None:
        self.central = central
        self._cache: TTLCache[str, TenantProfile] = TTLCache(ttl)

    async def get(self, tenant_id: str) -> TenantProfile:
        """The tenant's profile (cached); ``NotFound`` for an unknown tenant."""
        hit = self._cache.get(tenant_id)
        if hit is not None:
            return hit
        version = self._cache.version(tenant_id)
        async with self.central() as session:
            tenant = await session.scalar(select(Tenant).where(Tenant.id == tenant_id))
        if tenant is None:
            raise NotFound("Tenant not found")
        profile = TenantProfile.of(tenant)
        self._cache.put(tenant_id, profile, if_version=version)
        return profile

    def peek(self, tenant_id: str) -> TenantProfile | None:
        """The cached profile, if any (no database read)."""
        return self._cache.get(tenant_id)

    def drop(self, tenant_id: str) -> None:
        """Forget the tenant's profile; call after the commit that changed its row."""
        self._cache.drop(tenant_id)
