"""Register, login, refresh (rotation + reuse detection), password reset."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.auth.schemas import tenant_out
from novabilling.errors import BusinessRule, Conflict, Unauthorized
from novabilling.kit import passwords
from novabilling.kit.crypto import random_hex, sha256_hex
from novabilling.kit.ids import new_id
from novabilling.kit.tokens import TokenError
from novabilling.runtime import Runtime
from novabilling.tenancy import provisioning, servers
from novabilling.tenancy.models import DatabaseConnection, PasswordReset, RefreshToken, Tenant
from novabilling.tenancy.principal import API_KEY_PREFIX

log = structlog.get_logger(__name__)

RESET_TTL = timedelta(hours=1)
_BAD_LOGIN = "Invalid email or password"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_api_key() -> str:
    return API_KEY_PREFIX + random_hex(32)


def slugify(company: str) -> str:
    slug = re.sub(r"[^a-z0-9\s-]", "", company.lower())
    slug = re.sub(r"\s+", "-", slug)
    return re.sub(r"-+", "-", slug)


def _base36(value: int) -> str:
    out = ""
    while value:
        value, rem = divmod(value, 36)
        out = _BASE36[rem] + out
    return out or "0"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str


async def _issue_tokens(
    runtime: Runtime, session: AsyncSession, tenant: Tenant, *, family_id: str | None = None
) -> TokenPair:
    now = runtime.clock.now()
    token_id = new_id()
    family = family_id or new_id()
    session.add(
        RefreshToken(
            id=token_id,
            tenant_id=tenant.id,
            family_id=family,
            expires_at=now + runtime.signer.refresh_ttl,
            created_at=now,
        )
    )
    return TokenPair(
        access_token=runtime.signer.access_token(tenant_id=tenant.id, email=tenant.email, now=now),
        refresh_token=runtime.signer.refresh_token(
            tenant_id=tenant.id, token_id=token_id, family_id=family, now=now
        ),
    )


async def _unique_slug(session: AsyncSession, base: str, now: datetime) -> str:
    taken = await session.scalar(select(Tenant.id).where(Tenant.slug == base))
    if taken is None and base:
        return base
    return f"{base}-{_base36(int(now.timestamp() * 1000))}".strip("-")


async def _email_taken(session: AsyncSession, email: str, *, except_id: str | None = None) -> bool:
    query = select(Tenant.id).where(func.lower(Tenant.email) == email.lower())
    if except_id:
        query = query.where(Tenant.id != except_id)
    return (await session.scalar(query)) is not None


async def register(
    runtime: Runtime, *, name: str, email: str, password: str, company_name: str
) -> dict[str, Any]:
    """Create the tenant and its own database, all or nothing."""
    async with runtime.central() as session:
        if await _email_taken(session, email):
            raise Conflict("Email already registered")
        server = await servers.choose(session, runtime.settings)
    tenant_id = new_id()
    password_hash = await passwords.hash_password(password)
    db = await provisioning.provision(runtime.settings, tenant_id, server=server)
    try:
        async with runtime.central() as session:
            now = runtime.clock.now()
            api_key = new_api_key()
            aad = tenant_id.encode()
            tenant = Tenant(
                id=tenant_id,
                name=company_name,
                slug=await _unique_slug(session, slugify(company_name), now),
                email=email,
                password_hash=password_hash,
                api_key_hash=sha256_hex(api_key),
                api_key_encrypted=runtime.encryptor.encrypt(api_key, aad=aad),
                webhook_secret_encrypted=runtime.encryptor.encrypt(random_hex(32), aad=aad),
                is_active=True,
                settings={"ownerName": name},
                created_at=now,
                updated_at=now,
            )
            session.add(tenant)
            await session.flush()
            session.add(
                DatabaseConnection(
                    tenant_id=tenant_id,
                    dialect=db.dialect,
                    database_name=db.database_name,
                    url_encrypted=runtime.encryptor.encrypt(db.url, aad=aad),
                    server=db.server,
                    created_at=now,
                )
            )
            await session.flush()
            tokens = await _issue_tokens(runtime, session, tenant)
            await session.commit()
    except IntegrityError as exc:
        log.warning("tenant.register_conflict", error=str(exc.orig))
        await provisioning.drop(runtime.settings, tenant_id, server=server)
        raise Conflict("Email already registered") from exc
    except BaseException:
        await provisioning.drop(runtime.settings, tenant_id, server=server)
        raise
    log.info("tenant.registered", tenant_id=tenant_id, dialect=db.dialect)
    return {
        "tenant": tenant_out(tenant, runtime.encryptor),
        "apiKey": api_key,
        "accessToken": tokens.access_token,
        "refreshToken": tokens.refresh_token,
    }


async def login(runtime: Runtime, *, email: str, password: str) -> dict[str, Any]:
    async with runtime.central() as session:
        tenant = await session.scalar(
            select(Tenant).where(func.lower(Tenant.email) == email.lower())
        )
        ok = await passwords.verify_password(tenant.password_hash if tenant else None, password)
        if tenant is None or not ok:
            log.info("auth.login_failed")
            raise Unauthorized(_BAD_LOGIN)
        if not tenant.is_active:
            raise Unauthorized("Tenant is deactivated")
        body = tenant_out(tenant, runtime.encryptor)  # lastLoginAt from before this login
        tenant.last_login_at = runtime.clock.now()
        tokens = await _issue_tokens(runtime, session, tenant)
        await session.commit()
    runtime.tenant_profiles.drop(tenant.id)
    log.info("auth.login", tenant_id=tenant.id)
    return {
        "tenant": body,
        "accessToken": tokens.access_token,
        "refreshToken": tokens.refresh_token,
    }


def _within_grace(row: RefreshToken, *, now: datetime, grace: timedelta) -> bool:
    """A used (not revoked) token presented again shortly after its first use: the client
    refreshed once per failed request (auth.md grace window)."""
    return row.revoked_at is None and row.used_at is not None and now - row.used_at <= grace


async def _revoke_family(session: AsyncSession, row: RefreshToken, *, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.commit()
    log.warning("auth.refresh_reuse", tenant_id=row.tenant_id, family=row.family_id)


async def refresh(runtime: Runtime, *, refresh_token: str) -> dict[str, str]:
    """Rotate: the first use of a refresh token marks it used and issues a new pair of the
    same family. Presented again within the grace window it issues another pair of that
    family; after the window (or once revoked) the whole family is revoked.

    The claim is one conditional UPDATE issued before anything else in the transaction:
    PostgreSQL serialises concurrent claims on the row lock (the losers re-check the
    committed ``used_at``), SQLite on its write lock, so exactly one request is the first
    use and every other one sees it."""
    now = runtime.clock.now()
    try:
        claims = runtime.signer.read_refresh(refresh_token, now=now)
    except TokenError as exc:
        raise Unauthorized("Invalid refresh token") from exc
    grace = timedelta(seconds=runtime.settings.refresh_reuse_grace_seconds)
    async with runtime.central() as session:
        claimed = await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == claims.token_id,
                RefreshToken.tenant_id == claims.tenant_id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=now)
        )
        row = await session.scalar(
            select(RefreshToken)
            .where(RefreshToken.id == claims.token_id)
            .execution_options(populate_existing=True)
        )
        if row is None or row.tenant_id != claims.tenant_id:
            raise Unauthorized("Invalid refresh token")
        first_use = claimed.rowcount == 1  # type: ignore[attr-defined]
        if not first_use and not _within_grace(row, now=now, grace=grace):
            await _revoke_family(session, row, now=now)
            raise Unauthorized("Refresh token already used; session revoked")
        tenant = await session.get(Tenant, claims.tenant_id)
        if tenant is None or not tenant.is_active:
            raise Unauthorized("Tenant not found or deactivated")
        tokens = await _issue_tokens(runtime, session, tenant, family_id=row.family_id)
        await session.commit()
    if not first_use:
        log.info("auth.refresh_grace_reuse", tenant_id=row.tenant_id, family=row.family_id)
    return {"accessToken": tokens.access_token, "refreshToken": tokens.refresh_token}


async def forgot_password(runtime: Runtime, *, email: str) -> str | None:
    """Create a single-use reset token; returns it (for the email) or None if unknown."""
    async with runtime.central() as session:
        tenant = await session.scalar(
            select(Tenant).where(func.lower(Tenant.email) == email.lower())
        )
        if tenant is None or not tenant.is_active:
            return None
        token = random_hex(32)
        session.add(
            PasswordReset(
                tenant_id=tenant.id,
                token_hash=sha256_hex(token),
                expires_at=runtime.clock.now() + RESET_TTL,
                created_at=runtime.clock.now(),
            )
        )
        await session.commit()
    log.info("auth.password_reset_requested", tenant_id=tenant.id)
    return token


async def reset_password(runtime: Runtime, *, token: str, new_password: str) -> None:
    now = runtime.clock.now()
    password_hash = await passwords.hash_password(new_password)
    async with runtime.central() as session:
        reset = await session.scalar(
            select(PasswordReset).where(PasswordReset.token_hash == sha256_hex(token))
        )
        if reset is None or reset.used_at is not None or reset.expires_at <= now:
            raise BusinessRule("Invalid or expired reset token")
        claimed = await session.execute(
            update(PasswordReset)
            .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
            .values(used_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise BusinessRule("Invalid or expired reset token")
        await session.execute(
            update(Tenant).where(Tenant.id == reset.tenant_id).values(password_hash=password_hash)
        )
        # a password change ends every session
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.tenant_id == reset.tenant_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await session.commit()
    log.info("auth.password_reset", tenant_id=reset.tenant_id)
