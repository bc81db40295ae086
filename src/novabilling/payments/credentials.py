"""Provider credentials at rest, and the adapter factory (DESIGN rule 6).

- ``seal`` / ``unseal``: the credentials object is JSON sealed with AES-256-GCM
  (``runtime.encryptor``), aad = the tenant id, so a row copied to another tenant fails.
- ``ProviderFactory``: builds an adapter from a tenant's stored configuration through
  ``registry.create_provider``. A ``baseUrl`` credential key points an adapter at a
  simulator or sandbox; ``transports`` maps such a base URL to an in-process transport
  (tests and the demo use ``httpx.ASGITransport(app=sim.app)``). Decrypted configurations
  and their adapters are cached per (tenant, provider) for ``ttl`` seconds, negative
  answers included, so the webhook intake does no tenant-DB query per delivery. Writes
  through the providers API call ``forget(tenant_id)``; other processes see a change after
  at most ``ttl`` seconds.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select

from novabilling.kit.crypto import Encryptor
from novabilling.payments import provider_policy
from novabilling.payments.models import PaymentProviderConfig
from novabilling.payments.providers import registry
from novabilling.payments.providers.base import PaymentProvider
from novabilling.tenancy.models import Tenant

if TYPE_CHECKING:
    from novabilling.runtime import Runtime

DEFAULT_TTL_SECONDS = 30.0
MAX_ENTRIES = 4096
_EXTRAS_KEY = "payments.provider_factory"


def seal(encryptor: Encryptor, tenant_id: str, config: Mapping[str, Any]) -> str:
    return encryptor.encrypt(json.dumps(dict(config), sort_keys=True), aad=tenant_id.encode())


def unseal(encryptor: Encryptor, tenant_id: str, token: str) -> dict[str, Any]:
    """The credentials object; ``kit.crypto.DecryptionError`` if it cannot be opened."""
    value = json.loads(encryptor.decrypt(token, aad=tenant_id.encode()))
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ProviderHandle:
    """An active configuration of one provider for one tenant, with its adapter."""

    tenant_id: str
    config_id: str
    name: str
    config: Mapping[str, Any]
    adapter: PaymentProvider


@dataclass
class _Cached:
    handle: ProviderHandle | None
    expires: float


RETURN_PATH = "/checkout/complete"
"""Our page a payer returns to from a hosted checkout opened without ``callbackUrl``."""

# Adapters whose hosted checkout needs a return address (Stripe's success_url, Flutterwave's
# redirect_url): without the caller's callbackUrl they send the payer to our page.
_RETURN_TO_US = frozenset({"stripe", "flutterwave"})


class ProviderFactory:
    def __init__(
        self,
        runtime: Runtime,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        transports: dict[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.runtime = runtime
        self.ttl = ttl
        self.transports: dict[str, httpx.AsyncBaseTransport] = dict(transports or {})
        self._cache: OrderedDict[tuple[str, str], _Cached] = OrderedDict()

    # -- adapters -------------------------------------------------------------------------

    def callback_url(self, name: str, tenant_id: str) -> str:
        """Our per-tenant webhook URL for ``name`` (M-Pesa CallBackURL / ResultURL)."""
        base = self.runtime.settings.public_url.rstrip("/")
        return f"{base}/webhooks/{name}/{tenant_id}"

    def build(self, name: str, config: Mapping[str, Any], *, tenant_id: str) -> PaymentProvider:
        """An adapter for ``config`` (``registry.MissingCredentials`` / ``UnknownProvider`` /
        ``NotSupported``; ``provider_policy.BaseUrlRefused`` for a ``baseUrl`` this
        deployment does not let adapters call)."""
        key = registry.normalize_name(name)
        values = {k: str(v) for k, v in config.items() if v is not None}
        provider_policy.check_base_url(values.get("baseUrl"), settings=self.runtime.settings)
        if key == "mpesa":
            url = self.callback_url(key, tenant_id)
            values.setdefault("callbackUrl", url)
            values.setdefault("resultUrl", url)
        elif key in ("payu", "pesapal"):  # they notify the URL named in each request
            values.setdefault("notifyUrl", self.callback_url(key, tenant_id))
        credentials = registry.credentials_from_config(key, values)
        kwargs: dict[str, Any] = {}
        base_url = (credentials.base_url or "").rstrip("/")
        if base_url and base_url in self.transports:
            kwargs["transport"] = self.transports[base_url]
        if key == "stripe":
            clock = self.runtime.clock
            kwargs["now"] = lambda: clock.now().timestamp()
        if key in _RETURN_TO_US:
            kwargs["return_url"] = self.runtime.settings.public_url.rstrip("/") + RETURN_PATH
        return registry.create_provider(key, credentials, **kwargs)

    # -- cached lookup --------------------------------------------------------------------

    async def get(self, tenant_id: str, name: str) -> ProviderHandle | None:
        """The tenant's active configuration of ``name`` (None: unknown/inactive tenant,
        no such active provider, or credentials that cannot be opened)."""
        key = (tenant_id, name)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached.expires > now:
            return cached.handle
        handle = await self._load(tenant_id, name)
        self._cache[key] = _Cached(handle, now + self.ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_ENTRIES:
            self._cache.popitem(last=False)
        return handle

    def forget(self, tenant_id: str) -> None:
        for key in [k for k in self._cache if k[0] == tenant_id]:
            self._cache.pop(key, None)

    async def _load(self, tenant_id: str, name: str) -> ProviderHandle | None:
        runtime = self.runtime
        async with runtime.central() as central:
            active = await central.scalar(select(Tenant.is_active).where(Tenant.id == tenant_id))
        if not active:
            return None
        maker = await runtime.engines.sessionmaker(tenant_id)
        async with maker() as session:
            row = await session.scalar(
                select(PaymentProviderConfig).where(
                    PaymentProviderConfig.provider_name == name,
                    PaymentProviderConfig.is_active.is_(True),
                )
            )
        if row is None:
            return None
        return self.handle_for(tenant_id, row)

    def handle_for(self, tenant_id: str, row: PaymentProviderConfig) -> ProviderHandle | None:
        try:
            config = unseal(self.runtime.encryptor, tenant_id, row.credentials_encrypted)
            adapter = self.build(row.provider_name, config, tenant_id=tenant_id)
        except Exception:  # noqa: BLE001 - undecryptable / incomplete: treated as absent
            return None
        return ProviderHandle(tenant_id, row.id, row.provider_name, config, adapter)


def provider_factory(runtime: Runtime) -> ProviderFactory:
    """The process-wide factory kept on the runtime (created on first use)."""
    factory = runtime.extras.get(_EXTRAS_KEY)
    if not isinstance(factory, ProviderFactory):
        factory = ProviderFactory(runtime)
        runtime.extras[_EXTRAS_KEY] = factory
    return factory
