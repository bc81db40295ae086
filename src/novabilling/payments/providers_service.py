"""Tenant payment-provider configurations (contract payment-providers.md).

Names are stored lower-cased; unknown names and missing required credential keys are 400
(contract "Improve"). Credentials are sealed at rest and never returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.config import Settings
from novabilling.errors import Conflict, FieldError, Invalid, NotFound
from novabilling.kit.clock import Clock
from novabilling.kit.crypto import DecryptionError, Encryptor
from novabilling.payments import provider_policy
from novabilling.payments.charge import supports
from novabilling.payments.credentials import ProviderFactory, seal, unseal
from novabilling.payments.models import PaymentProviderConfig
from novabilling.payments.providers import registry
from novabilling.payments.providers.base import ProviderError, ProviderUnavailable

log = structlog.get_logger(__name__)


def _invalid(errors: list[FieldError]) -> Invalid:
    error = Invalid(errors[0].field, errors[0].message)
    error.errors = errors
    return error


def _clean_credentials(
    name: str, credentials: Mapping[str, Any], *, settings: Settings
) -> dict[str, str]:
    """String values only (numbers are accepted and kept as text); exactly the keys the
    provider declares (registry spec): every unknown, missing or mistyped key and every
    value outside its allowed choices is a 400 naming ``credentials.<key>``."""
    declared = registry.spec(name)
    clean: dict[str, str] = {}
    errors: list[FieldError] = []
    for key in registry.unknown_credentials(name, credentials):
        known = ", ".join(declared.keys)
        errors.append(_field(key, f"is not a {name} credential key (known: {known})"))
    mistyped: set[str] = set()
    for key, value in credentials.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            errors.append(_field(key, "must be a string"))
            mistyped.add(key)
            continue
        clean[key] = str(value).strip().lower() if key in declared.choices else str(value)
    for key in registry.missing_credentials(name, clean):
        if key not in mistyped:
            errors.append(_field(key, f"is required for {name}"))
    for key, allowed in registry.bad_choices(name, clean).items():
        errors.append(_field(key, f"must be one of: {', '.join(allowed)}"))
    try:
        provider_policy.check_base_url(clean.get("baseUrl"), settings=settings)
    except provider_policy.BaseUrlRefused as exc:
        errors.append(_field("baseUrl", str(exc).removeprefix("baseUrl ")))
    if errors:
        raise _invalid(errors)
    return clean


def _field(key: str, message: str) -> FieldError:
    field = f"credentials.{key}"
    return FieldError(field=field, message=f"{field} {message}")


def _name(provider_name: str) -> str:
    try:
        return registry.normalize_name(provider_name)
    except registry.UnknownProvider:
        known = ", ".join(sorted(registry.PROVIDERS))
        raise Invalid(
            "providerName", f"providerName must be one of the supported providers: {known}"
        ) from None


async def create_provider(
    session: AsyncSession,
    *,
    tenant_id: str,
    encryptor: Encryptor,
    settings: Settings,
    provider_name: str,
    credentials: Mapping[str, Any],
    is_active: bool | None,
    priority: int | None,
    clock: Clock,
) -> PaymentProviderConfig:
    name = _name(provider_name)
    clean = _clean_credentials(name, credentials, settings=settings)
    exists = await session.scalar(
        select(PaymentProviderConfig.id).where(PaymentProviderConfig.provider_name == name)
    )
    if exists:
        raise Conflict(f"Payment provider {name} is already configured")
    now = clock.now()
    row = PaymentProviderConfig(
        provider_name=name,
        credentials_encrypted=seal(encryptor, tenant_id, clean),
        is_active=True if is_active is None else is_active,
        priority=1 if priority is None else priority,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Payment provider {name} is already configured") from None
    log.info("payment_providers.created", provider=name, provider_id=row.id)
    return row


async def list_providers(session: AsyncSession) -> list[PaymentProviderConfig]:
    rows = await session.scalars(
        select(PaymentProviderConfig).order_by(
            PaymentProviderConfig.priority, PaymentProviderConfig.created_at
        )
    )
    return list(rows)


async def get_provider(session: AsyncSession, *, provider_id: str) -> PaymentProviderConfig:
    row = await session.get(PaymentProviderConfig, provider_id)
    if row is None:
        raise NotFound("Payment provider not found")
    return row


async def update_provider(
    session: AsyncSession,
    *,
    tenant_id: str,
    encryptor: Encryptor,
    settings: Settings,
    provider_id: str,
    changes: Mapping[str, Any],
    clock: Clock,
) -> PaymentProviderConfig:
    """``changes`` keys: is_active, priority, credentials (replaces them entirely);
    ``provider_name`` is accepted and ignored (contract)."""
    row = await get_provider(session, provider_id=provider_id)
    if changes.get("is_active") is not None:
        row.is_active = bool(changes["is_active"])
    if changes.get("priority") is not None:
        row.priority = int(changes["priority"])
    if changes.get("credentials") is not None:
        clean = _clean_credentials(row.provider_name, changes["credentials"], settings=settings)
        row.credentials_encrypted = seal(encryptor, tenant_id, clean)
    row.updated_at = clock.now()
    await session.flush()
    log.info("payment_providers.updated", provider=row.provider_name, provider_id=row.id)
    return row


async def delete_provider(session: AsyncSession, *, provider_id: str) -> None:
    row = await get_provider(session, provider_id=provider_id)
    await session.delete(row)
    await session.flush()
    log.info("payment_providers.deleted", provider=row.provider_name, provider_id=row.id)


async def check_provider(
    session: AsyncSession, *, tenant_id: str, provider_id: str, factory: ProviderFactory
) -> tuple[bool, str]:
    """A harmless authenticated call; failures are ``(False, text)``, never errors
    (contract). The text names the provider and the cause: not supported, refused
    configuration, unreachable (no network details in production), or rejected."""
    row = await get_provider(session, provider_id=provider_id)
    name = row.provider_name
    settings = factory.runtime.settings
    try:
        config = unseal(factory.runtime.encryptor, tenant_id, row.credentials_encrypted)
    except (DecryptionError, ValueError):
        return False, "Stored credentials could not be decrypted"
    try:
        adapter = factory.build(name, config, tenant_id=tenant_id)
        ok = await adapter.verify_credentials()
    except (registry.UnknownProvider, registry.MissingCredentials, registry.NotSupported) as exc:
        return False, str(exc)
    except provider_policy.BaseUrlRefused as exc:
        return False, f"{name}: {exc}"
    except ProviderUnavailable as exc:
        return False, provider_policy.public_message(name, exc, settings=settings)
    except ProviderError as exc:
        return False, f"{name} rejected the credentials: {exc.message}"
    log.info("payment_providers.tested", provider=name, success=ok)
    if ok:
        return True, f"Connection to {name} succeeded"
    return False, f"{name} rejected the credentials"


async def can_charge(session: AsyncSession, currency: str) -> bool | None:
    """Whether an active configured provider can charge ``currency``; None when the
    tenant has no active provider at all (nothing to charge with yet)."""
    rows = await session.scalars(
        select(PaymentProviderConfig.provider_name).where(PaymentProviderConfig.is_active.is_(True))
    )
    names = list(rows)
    if not names:
        return None
    return any(supports(name, currency) for name in names)
