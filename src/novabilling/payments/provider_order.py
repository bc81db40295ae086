"""The tenant's order of payment providers per currency: the ``providerOrder`` setting
(``PATCH /api/tenants/me {"settings": {"providerOrder": {"NGN": ["flutterwave",
"paystack"]}}}``), checked when saved by ``failover.check_order_setting``. Checkouts
without a named provider take the first active one of the list for the invoice currency;
automatic charges try providers in this order (``failover``); providers not listed come
after, by ``priority``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from novabilling.payments.credentials import ProviderFactory

SETTING = "providerOrder"

Order = Mapping[str, Sequence[str]]
"""Currency code -> provider names, most preferred first."""


def from_settings(settings: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """The stored setting, read leniently (anything unexpected is ignored)."""
    raw = (settings or {}).get(SETTING)
    if not isinstance(raw, dict):
        return {}
    return {
        str(code).upper(): [str(n).lower() for n in names if isinstance(n, str)]
        for code, names in raw.items()
        if isinstance(names, list)
    }


async def for_tenant(factory: ProviderFactory, tenant_id: str) -> dict[str, list[str]]:
    """The tenant's order (its cached profile)."""
    profile = await factory.runtime.tenant_profiles.get(tenant_id)
    return from_settings(profile.settings)


def rank(preferred: Sequence[str], name: str) -> int:
    """Sort key: the position of ``name`` in ``preferred``, unlisted names last."""
    return list(preferred).index(name) if name in preferred else len(preferred)
