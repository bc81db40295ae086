"""Who is calling: an access token or an API key resolved to a tenant.

Lookups are cached in process for ``ttl`` seconds so the hot path costs no database round
trip; a revoked key is dropped from this process's cache at once and stops working in
other processes within the TTL.

A miss (a tenant not seen for ``ttl`` seconds: with many tenants, most of them) is one
statement on an autocommit session (``reads``): the key, its tenant and whether that tenant
is active, whether it is an extra key or the tenant's primary key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import BindParameter, String, bindparam, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.errors import Unauthorized
from novabilling.kit.clock import Clock
from novabilling.kit.crypto import sha256_hex
from novabilling.kit.tokens import TokenError, TokenSigner
from novabilling.kit.ttlcache import TTLCache
from novabilling.tenancy.models import ApiKey, Tenant

API_KEY_PREFIX = "sk_live_"
_LAST_USED_EVERY = 60.0


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    kind: Literal["access", "api_key", "primary_key", "portal"]
    key_id: str | None = None
    # portal tokens only: the one customer they open (by id and externalId)
    customer_id: str | None = None
    external_id: str | None = None


_DIGEST: BindParameter[str] = bindparam("digest", type_=String())
# An extra key (not revoked) or a tenant's primary key, with the tenant's is_active: both
# hashes are unique and come from random keys, so at most one row matches.
_KEY_LOOKUP = (
    select(
        ApiKey.tenant_id.label("tenant_id"),
        ApiKey.id.label("key_id"),
        ApiKey.expires_at.label("expires_at"),
        Tenant.is_active.label("is_active"),
    )
    .join(Tenant, Tenant.id == ApiKey.tenant_id)
    .where(ApiKey.key_hash == _DIGEST, ApiKey.revoked_at.is_(None))
    .union_all(
        select(Tenant.id, null(), null(), Tenant.is_active).where(Tenant.api_key_hash == _DIGEST)
    )
)


@dataclass(frozen=True)
class _KeyEntry:
    tenant_id: str
    key_id: str | None
    expires_at: datetime | None


class PrincipalResolver:
    def __init__(
        self,
        *,
        central: async_sessionmaker[AsyncSession],
        signer: TokenSigner,
        clock: Clock,
        ttl: float,
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        """``central``: sessions for the ``lastUsed`` write; ``reads``: sessions for the
        look-ups (autocommit ones, ``kit.db.read_sessions``; ``central`` when not given)."""
        self._central = central
        self._reads = reads or central
        self._signer = signer
        self._clock = clock
        self._keys: TTLCache[str, _KeyEntry | None] = TTLCache(ttl)
        self._active: TTLCache[str, bool] = TTLCache(ttl)
        self._last_used_written: dict[str, float] = {}

    async def resolve(self, authorization: str | None, *, session_only: bool) -> Principal:
        credential = _credential(authorization, require_bearer=session_only)
        if credential.count(".") == 2:
            return await self._from_access_token(credential)
        if session_only or not credential.startswith(API_KEY_PREFIX):
            raise Unauthorized("Unauthorized" if session_only else "Invalid API key")
        return await self._from_api_key(credential)

    async def resolve_portal(self, authorization: str | None) -> Principal:
        """Customer portal routes: a portal token (kind ``portal``, one customer) or any
        data credential. Everywhere else a portal token fails like a bad access token."""
        credential = _credential(authorization, require_bearer=False)
        if credential.count(".") == 2:
            try:
                claims = self._signer.read_portal(credential, now=self._clock.now())
            except TokenError:
                return await self._from_access_token(credential)
            await self._require_active(claims.tenant_id)
            return Principal(
                claims.tenant_id,
                "portal",
                customer_id=claims.customer_id,
                external_id=claims.external_id,
            )
        return await self.resolve(authorization, session_only=False)

    async def _from_access_token(self, token: str) -> Principal:
        try:
            tenant_id = self._signer.read_access(token, now=self._clock.now())
        except TokenError as exc:
            raise Unauthorized("Invalid or expired token") from exc
        await self._require_active(tenant_id)
        return Principal(tenant_id=tenant_id, kind="access")

    async def _from_api_key(self, key: str) -> Principal:
        digest = sha256_hex(key)
        entry = self._keys.get(digest)
        if entry is None:
            entry = await self._lookup_key(digest)
            self._keys.put(digest, entry)
        if entry is None:
            raise Unauthorized("Invalid API key")
        if entry.expires_at is not None and entry.expires_at <= self._clock.now():
            raise Unauthorized("API key has expired")
        await self._require_active(entry.tenant_id)
        if entry.key_id is not None:
            await self._touch(entry.key_id)
            return Principal(entry.tenant_id, "api_key", entry.key_id)
        return Principal(entry.tenant_id, "primary_key")

    async def _lookup_key(self, digest: str) -> _KeyEntry | None:
        async with self._reads() as session:
            row = (await session.execute(_KEY_LOOKUP, {"digest": digest})).first()
        if row is None:
            return None
        self._active.put(row.tenant_id, bool(row.is_active))
        return _KeyEntry(row.tenant_id, row.key_id, row.expires_at)

    async def _require_active(self, tenant_id: str) -> None:
        active = self._active.get(tenant_id)
        if active is None:
            async with self._reads() as session:
                active = bool(
                    await session.scalar(select(Tenant.is_active).where(Tenant.id == tenant_id))
                )
            self._active.put(tenant_id, active)
        if not active:
            raise Unauthorized("Tenant not found or deactivated")

    async def _touch(self, key_id: str) -> None:
        """Record ``lastUsed`` at most once a minute per key per process."""
        now_mono = time.monotonic()
        if now_mono - self._last_used_written.get(key_id, 0.0) < _LAST_USED_EVERY:
            return
        self._last_used_written[key_id] = now_mono
        async with self._central() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(last_used=self._clock.now())
            )
            await session.commit()

    def forget_key(self, key: str | None = None, *, digest: str | None = None) -> None:
        self._keys.drop(digest or sha256_hex(key or ""))

    def forget_tenant(self, tenant_id: str) -> None:
        self._active.drop(tenant_id)
        self._keys.clear()


def _credential(authorization: str | None, *, require_bearer: bool) -> str:
    if not authorization or not authorization.strip():
        raise Unauthorized("Unauthorized" if require_bearer else "Missing API key")
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    if require_bearer:
        raise Unauthorized("Unauthorized")
    return value
