"""Wire shapes of /api/auth (contract auth.md) and the Tenant object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import StringConstraints

from novabilling.kit.crypto import Encryptor
from novabilling.kit.timestamps import to_wire
from novabilling.kit.wire import Email, FreeForm, Timestamp, WireModel, WireOut
from novabilling.tenancy.models import Tenant
from novabilling.tenancy.profiles import TenantProfile

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class RegisterIn(WireModel):
    name: Annotated[str, StringConstraints(min_length=2, max_length=100)]
    email: Email
    password: Annotated[str, StringConstraints(min_length=8, max_length=128)]
    company_name: Annotated[str, StringConstraints(min_length=2, max_length=200)]


class LoginIn(WireModel):
    email: Email
    password: NonEmpty


class RefreshIn(WireModel):
    refresh_token: NonEmpty


class ForgotPasswordIn(WireModel):
    email: Email


class ResetPasswordIn(WireModel):
    token: NonEmpty
    new_password: Annotated[str, StringConstraints(min_length=8, max_length=128)]


SMTP_PASSWORD_MASK = "********"


def masked_settings(settings: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Tenant settings with the SMTP password masked (the key is kept)."""
    if settings is None:
        return None
    if not isinstance(settings.get("smtp"), dict):
        return dict(settings)
    smtp = dict(settings["smtp"])
    if smtp.get("password"):
        smtp["password"] = SMTP_PASSWORD_MASK
    return {**settings, "smtp": smtp}


def tenant_out(tenant: Tenant | TenantProfile, encryptor: Encryptor) -> dict[str, Any]:
    """The full Tenant object (register, login, GET /api/tenants/me)."""
    return {
        "id": tenant.id,
        "name": tenant.name,
        "slug": tenant.slug,
        "email": tenant.email,
        "apiKey": encryptor.decrypt(tenant.api_key_encrypted, aad=tenant.id.encode()),
        "webhookUrl": tenant.webhook_url,
        "webhookSecret": encryptor.decrypt(tenant.webhook_secret_encrypted, aad=tenant.id.encode()),
        "isActive": tenant.is_active,
        "settings": masked_settings(tenant.settings),
        "lastLoginAt": to_wire(tenant.last_login_at) if tenant.last_login_at else None,
        "createdAt": to_wire(tenant.created_at),
        "updatedAt": to_wire(tenant.updated_at),
    }


class TenantOut(WireOut):
    """The tenant, with its API key and webhook secret (the SMTP password masked)."""

    id: str
    name: str
    slug: str
    email: str
    api_key: str
    webhook_url: str | None
    webhook_secret: str
    is_active: bool
    settings: FreeForm | None
    last_login_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class TokensOut(WireOut):
    access_token: str
    refresh_token: str


class LoginOut(TokensOut):
    tenant: TenantOut


class RegisterOut(LoginOut):
    api_key: str
