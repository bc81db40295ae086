"""Tenant profile and API keys (central database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.auth.schemas import SMTP_PASSWORD_MASK, tenant_out
from novabilling.auth.service import new_api_key
from novabilling.errors import BusinessRule, Conflict, Invalid, NotFound, Unauthorized
from novabilling.kit import fx
from novabilling.kit.clock import Clock
from novabilling.kit.crypto import Encryptor, sha256_hex
from novabilling.kit.netguard import UnsafeDestination, check_public_url
from novabilling.notifications import messages
from novabilling.notifications.mailer import Mailer, MailError, SmtpMailer, sender_from_settings
from novabilling.notifications.smtp_settings import open_settings, seal_password
from novabilling.runtime import Runtime
from novabilling.tenancy.models import ApiKey, Tenant

# Tenant setting read by the billing tick (``billing.renewals.back_billing``): true bills
# every period a far-behind subscription missed instead of its current period only.
BACK_BILLING = "backBilling"

log = structlog.get_logger(__name__)


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None or not tenant.is_active:
        raise Unauthorized("Unauthorized")
    return tenant


async def tenant_view(runtime: Runtime, tenant_id: str) -> dict[str, Any]:
    """The full Tenant object from the cached profile (the dashboard polls it). A profile
    read while a PATCH commits is not cached (``TenantProfiles``, dropped after commit)."""
    profile = await runtime.tenant_profiles.get(tenant_id)
    if not profile.is_active:
        raise Unauthorized("Unauthorized")
    return tenant_out(profile, runtime.encryptor)


async def update_profile(runtime: Runtime, tenant_id: str, *, changes: dict[str, Any]) -> Tenant:
    """PATCH /api/tenants/me as one unit of work: update, commit, then drop the cached view.
    Dropping only after the commit (and the versioned put in ``tenant_view``) means no GET
    can cache the old profile past the PATCH answer."""
    async with runtime.central() as session:
        tenant = await update_tenant(
            session,
            tenant_id,
            changes=changes,
            clock=runtime.clock,
            encryptor=runtime.encryptor,
            public_webhooks=runtime.settings.webhooks_public_only,
        )
        await session.commit()
    runtime.tenant_profiles.drop(tenant_id)
    return tenant


async def update_tenant(
    session: AsyncSession,
    tenant_id: str,
    *,
    changes: dict[str, Any],
    clock: Clock,
    encryptor: Encryptor,
    public_webhooks: bool = False,
) -> Tenant:
    tenant = await get_tenant(session, tenant_id)
    if "email" in changes and changes["email"] is not None:
        taken = await session.scalar(
            select(Tenant.id).where(
                func.lower(Tenant.email) == changes["email"].lower(), Tenant.id != tenant_id
            )
        )
        if taken:
            raise Conflict("Email already in use by another account")
        tenant.email = changes["email"]
    if changes.get("name") is not None:
        tenant.name = changes["name"]
    if "webhook_url" in changes:
        if public_webhooks and changes["webhook_url"] is not None:
            _check_public_webhook(changes["webhook_url"])
        tenant.webhook_url = changes["webhook_url"]
    if changes.get("settings") is not None:
        incoming = _smtp_password_sealed(
            changes["settings"], tenant.settings, encryptor=encryptor, tenant_id=tenant_id
        )
        merged = {**(tenant.settings or {}), **incoming}
        if fx.SETTING in incoming:  # analytics' rates: checked, null clears them
            rates = fx.check_setting(incoming[fx.SETTING])
            merged.pop(fx.SETTING)
            if rates:
                merged[fx.SETTING] = rates
        if BACK_BILLING in incoming:  # the billing engine's catch-up bound: a boolean
            flag = incoming[BACK_BILLING]
            if flag is not None and not isinstance(flag, bool):
                raise Invalid(f"settings.{BACK_BILLING}", "must be true, false or null")
            if flag is None:
                merged.pop(BACK_BILLING)
        tenant.settings = merged
    tenant.updated_at = clock.now()
    await session.flush()
    log.info("tenant.updated", fields=sorted(changes))
    return tenant


def _check_public_webhook(url: str) -> None:
    try:
        check_public_url(url)
    except UnsafeDestination as exc:
        raise Invalid("webhookUrl", f"webhookUrl {exc}") from None


def _smtp_password_sealed(
    incoming: dict[str, Any],
    existing: dict[str, Any] | None,
    *,
    encryptor: Encryptor,
    tenant_id: str,
) -> dict[str, Any]:
    """A new SMTP password is stored sealed (never in clear). A settings.smtp echoed back
    with the masked password keeps the stored one (GET shows ``********``; sending that
    back must not overwrite the real password)."""
    smtp, old = incoming.get("smtp"), (existing or {}).get("smtp")
    if not isinstance(smtp, dict):
        return incoming
    if smtp.get("password") == SMTP_PASSWORD_MASK:
        kept = old.get("password") if isinstance(old, dict) else None
        return {**incoming, "smtp": {**smtp, "password": kept}}
    sealed = seal_password(smtp, encryptor=encryptor, tenant_id=tenant_id)
    return {**incoming, "smtp": sealed}


async def send_smtp_test(runtime: Runtime, tenant: Tenant, *, recipient: str) -> None:
    """POST /api/tenants/me/smtp/test: through the tenant's own SMTP settings (password
    opened here, for this send only) or the system mailer. Any failure is a 400 whose
    message carries the server's reply, never the password."""
    smtp = (tenant.settings or {}).get("smtp")
    try:
        if isinstance(smtp, dict):
            opened = open_settings(smtp, encryptor=runtime.encryptor, tenant_id=tenant.id)
            mailer: Mailer = SmtpMailer.from_tenant_settings(opened)
            sender = sender_from_settings(opened) or runtime.sender
        else:
            mailer, sender = runtime.mailer, runtime.sender
        message = messages.smtp_test(
            tenant_name=tenant.name, sent_at=runtime.clock.now(), sender=sender, recipient=recipient
        )
        await mailer.send(message)
    except MailError as exc:
        raise BusinessRule(f"Failed to send test email: {exc.message}") from None
    except ValueError:  # e.g. a CR/LF in settings.smtp.from: no header injection
        raise BusinessRule(
            "Failed to send test email: settings.smtp holds an invalid address"
        ) from None
    log.info("tenant.smtp_tested", own_server=isinstance(smtp, dict))


async def list_api_keys(session: AsyncSession, tenant_id: str) -> list[ApiKey]:
    rows = await session.scalars(
        select(ApiKey)
        .where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    return list(rows)


async def create_api_key(
    session: AsyncSession,
    tenant_id: str,
    *,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
    clock: Clock,
) -> tuple[ApiKey, str]:
    full = new_api_key()
    key = ApiKey(
        tenant_id=tenant_id,
        name=name,
        key_hash=sha256_hex(full),
        key_prefix=full[:8],
        key_last4=full[-4:],
        scopes=scopes,
        expires_at=expires_at,
        created_at=clock.now(),
    )
    session.add(key)
    await session.flush()
    log.info("api_key.created", key_id=key.id)
    return key, full


async def revoke_api_key(
    session: AsyncSession, tenant_id: str, key_id: str, *, clock: Clock
) -> str:
    """Revoke; returns the key hash so the caller can drop it from the principal cache."""
    key = await session.scalar(
        select(ApiKey).where(
            ApiKey.id == key_id, ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None)
        )
    )
    if key is None:
        raise NotFound("API key not found")
    key.revoked_at = clock.now()
    await session.flush()
    log.info("api_key.revoked", key_id=key.id)
    return key.key_hash
