"""Wire shapes of /api/tenants/me (contract tenants.md)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints

from novabilling.auth.schemas import masked_settings
from novabilling.kit.timestamps import InstantInput, to_wire
from novabilling.kit.wire import DecimalText, Email, FreeForm, Timestamp, WireModel, WireOut
from novabilling.tenancy.models import ApiKey, Tenant


def _check_url(value: str | None) -> str | None:
    if value is None:
        return None
    candidate = value if "://" in value else f"http://{value}"
    parts = urlsplit(candidate)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or len(value) > 2048:
        raise ValueError("must be a URL address")
    try:
        ipaddress.ip_address(host)
        return value
    except ValueError:
        pass
    labels = host.split(".")
    if host != "localhost" and (len(labels) < 2 or not labels[-1].isalpha() or len(labels[-1]) < 2):
        raise ValueError("must be a URL address")
    return value


class TenantPatch(WireModel):
    name: Annotated[str, StringConstraints(min_length=2, max_length=100)] | None = None
    email: Annotated[str, StringConstraints(min_length=1, max_length=320)] | None = None
    webhook_url: Annotated[str | None, AfterValidator(_check_url)] = None
    settings: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Merged into the stored settings (a key set to null is removed where noted). "
            "Keys with a meaning: `backBilling` (boolean or null; true: a subscription far "
            "behind - its period ended more than 31 days ago - is invoiced for every missed "
            "period instead of its current period only), `fxRates` (analytics rates, null "
            "restores the defaults), `netPaymentTerms`, `providerOrder` (per currency code "
            'the payment providers to use first, e.g. `{"NGN": ["flutterwave", '
            '"paystack"]}`: checkout\'s default provider and the order of automatic '
            "charges, which move on to the next provider after a decline or no answer; "
            "null clears it), `smtp`."
        ),
    )


class ApiKeyCreate(WireModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    scopes: list[Annotated[str, StringConstraints(max_length=100)]]
    expires_at: InstantInput | None = None  # null allowed (optional field)


class SmtpTestIn(WireModel):
    to: Email  # a syntactic address: no CR/LF (header injection), no display-name tricks


def tenant_reduced(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "slug": tenant.slug,
        "email": tenant.email,
        "webhookUrl": tenant.webhook_url,
        "isActive": tenant.is_active,
        "settings": masked_settings(tenant.settings),
        "createdAt": to_wire(tenant.created_at),
        "updatedAt": to_wire(tenant.updated_at),
    }


def api_key_listed(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "key": "****" + key.key_last4,
        "name": key.name,
        "scopes": key.scopes,
        "lastUsed": to_wire(key.last_used) if key.last_used else None,
        "expiresAt": to_wire(key.expires_at) if key.expires_at else None,
        "createdAt": to_wire(key.created_at),
    }


def api_key_created(key: ApiKey, full_key: str) -> dict[str, Any]:
    return {
        "id": key.id,
        "key": full_key,
        "name": key.name,
        "scopes": key.scopes,
        "expiresAt": to_wire(key.expires_at) if key.expires_at else None,
        "createdAt": to_wire(key.created_at),
    }


class TenantReducedOut(WireOut):
    """The tenant without its secrets (the answer of PATCH /api/tenants/me)."""

    id: str
    name: str
    slug: str
    email: str
    webhook_url: str | None
    is_active: bool
    settings: FreeForm | None
    created_at: Timestamp
    updated_at: Timestamp


class TenantUsageOut(WireOut):
    customers: int
    active_subscriptions: int
    total_invoices: int
    total_revenue: DecimalText


class ApiKeyListedOut(WireOut):
    """An API key as listed: only its last four characters."""

    id: str
    key: str
    name: str
    scopes: list[str]
    last_used: Timestamp | None
    expires_at: Timestamp | None
    created_at: Timestamp


class ApiKeyCreatedOut(WireOut):
    """A new API key: the full key, shown this once."""

    id: str
    key: str
    name: str
    scopes: list[str]
    expires_at: Timestamp | None
    created_at: Timestamp
