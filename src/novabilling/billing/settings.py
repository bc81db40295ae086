"""``PATCH /api/tenants/me``: tenant settings that a domain above ``tenants`` owns are
checked by that domain before the profile is written (``tenants`` sits below them and
cannot ask). Today: ``providerOrder`` (``payments.failover``), stored normalised
(currency codes upper-case, provider names canonical); ``null`` clears it."""

from __future__ import annotations

from typing import Any

from novabilling.payments import failover, provider_order
from novabilling.runtime import Runtime
from novabilling.tenancy.models import Tenant
from novabilling.tenants import service as tenants_service


async def update_profile(runtime: Runtime, tenant_id: str, *, changes: dict[str, Any]) -> Tenant:
    settings = changes.get("settings")
    if isinstance(settings, dict) and provider_order.SETTING in settings:
        order = failover.check_order_setting(settings[provider_order.SETTING])
        changes = {**changes, "settings": {**settings, provider_order.SETTING: order}}
    return await tenants_service.update_profile(runtime, tenant_id, changes=changes)
