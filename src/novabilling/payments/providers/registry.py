"""Payment providers by name (STYLE §3.9): lower-case name -> declared spec -> adapter class,
imported lazily.

Each :class:`ProviderSpec` declares the credential keys of that provider's configuration
(contract payment-providers.md): ``required`` is only what the adapter needs to charge,
``optional`` the other keys it reads (``baseUrl`` points it at a simulator or sandbox), and
``choices`` the allowed values of enumerated keys. The configuration endpoint rejects
unknown names, unknown keys, missing keys and bad choices with 400 using it, and
``credentials_from_config`` maps the stored camelCase object to :class:`Credentials`. A spec
without ``adapter`` is configurable (stored, 201) but not yet usable: building it raises
:class:`NotSupported`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from novabilling.payments.providers.base import Credentials, PaymentProvider


@dataclass(frozen=True)
class ProviderSpec:
    adapter: str | None  # "module:Class"; None: configurable, not yet supported
    required: tuple[str, ...]
    optional: tuple[str, ...] = ("baseUrl",)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # which keys become Credentials.secret_key / public_key / webhook_secret
    secret: str = "secretKey"
    public: str | None = "publicKey"
    webhook: str | None = "webhookSecret"
    # currencies the adapter can charge (None: any; the provider itself refuses the rest)
    currencies: frozenset[str] | None = None
    # what verify_transaction takes for one of our payments: our reference, or the
    # provider's own id of it (stored as the payment's providerTransactionId)
    confirm_by: str = "reference"

    @property
    def keys(self) -> tuple[str, ...]:
        return self.required + self.optional


_MPESA_OPTIONAL = (
    "baseUrl",
    "initiator",
    "securityCredential",
    "callbackUrl",
    "resultUrl",
    "timeoutUrl",
    "transactionType",
    "partyB",
)

SPECS: dict[str, ProviderSpec] = {
    "stripe": ProviderSpec(
        "novabilling.payments.providers.stripe:StripeProvider", ("secretKey", "webhookSecret")
    ),
    "paystack": ProviderSpec(
        "novabilling.payments.providers.paystack:PaystackProvider",
        ("secretKey",),
        ("publicKey", "baseUrl"),
    ),
    "flutterwave": ProviderSpec(
        "novabilling.payments.providers.flutterwave:FlutterwaveProvider",
        ("secretKey",),
        ("publicKey", "encryptionKey", "secretHash", "country", "baseUrl"),
        webhook="secretHash",
    ),
    "mpesa": ProviderSpec(
        "novabilling.payments.providers.mpesa:MpesaProvider",
        ("consumerKey", "consumerSecret", "shortcode", "passkey", "environment"),
        _MPESA_OPTIONAL,
        secret="consumerSecret",
        public="consumerKey",
        webhook=None,
    ),
    "dpo": ProviderSpec(
        "novabilling.payments.providers.dpo:DpoProvider",
        ("companyToken", "serviceType", "environment"),
        ("baseUrl", "returnUrl"),
        choices={"environment": ("test", "live")},
        secret="companyToken",
        public=None,
        webhook=None,
    ),
    "payu": ProviderSpec(
        "novabilling.payments.providers.payu:PayuProvider",
        ("apiKey", "safeKey", "environment"),
        ("apiUsername", "baseUrl", "notifyUrl", "returnUrl"),
        choices={"environment": ("staging", "production")},
        secret="safeKey",
        public="apiKey",
        webhook=None,
        currencies=frozenset({"ZAR", "NGN", "KES", "USD"}),
    ),
    "pesapal": ProviderSpec(
        "novabilling.payments.providers.pesapal:PesapalProvider",
        ("consumerKey", "consumerSecret", "environment"),
        ("baseUrl", "ipnId", "notifyUrl", "returnUrl", "refundUsername"),
        choices={"environment": ("sandbox", "live")},
        secret="consumerSecret",
        public="consumerKey",
        webhook=None,
        currencies=frozenset({"KES", "UGX", "TZS", "USD", "RWF", "MWK", "ZMW"}),
        confirm_by="provider_reference",
    ),
}
ALIASES: dict[str, str] = {"dpo-group": "dpo"}

PROVIDERS: dict[str, str | None] = {name: spec.adapter for name, spec in SPECS.items()}
REQUIRED_CREDENTIALS: dict[str, tuple[str, ...]] = {n: s.required for n, s in SPECS.items()}
OPTIONAL_CREDENTIALS: dict[str, tuple[str, ...]] = {n: s.optional for n, s in SPECS.items()}


class UnknownProvider(KeyError):
    """No adapter for that provider name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown payment provider {self.name!r}; known: {', '.join(sorted(PROVIDERS))}"


class MissingCredentials(ValueError):
    """The credentials object lacks required keys (contract: 400)."""

    def __init__(self, provider: str, missing: list[str]) -> None:
        super().__init__(f"{provider} credentials missing: {', '.join(missing)}")
        self.provider = provider
        self.missing = missing


class NotSupported(ValueError):
    """A provider that can be configured but has no adapter yet (contract: test answers
    ``success: false``, checkout 400, both naming the provider)."""

    def __init__(self, provider: str) -> None:
        super().__init__(f"Payment provider {provider} is not yet supported")
        self.provider = provider


def normalize_name(name: str) -> str:
    """The canonical lower-case name (aliases resolved); ``UnknownProvider`` otherwise."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in SPECS:
        raise UnknownProvider(name)
    return key


def spec(name: str) -> ProviderSpec:
    return SPECS[normalize_name(name)]


def supports_currency(name: str, currency: str) -> bool:
    allowed = spec(name).currencies
    return allowed is None or currency.upper() in allowed


def is_supported(name: str) -> bool:
    """Whether ``name`` has an adapter (a configured but unsupported name: False)."""
    return spec(name).adapter is not None


def get_provider_class(name: str) -> type[Any]:
    """The adapter class for ``name`` (case-insensitive); ``UnknownProvider`` for an
    unknown name, ``NotSupported`` for one without an adapter yet."""
    key = normalize_name(name)
    adapter = SPECS[key].adapter
    if adapter is None:
        raise NotSupported(key)
    module_name, _, class_name = adapter.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), class_name)
    return cls


def create_provider(name: str, credentials: Credentials, **kwargs: Any) -> PaymentProvider:
    """An adapter instance; ``kwargs`` go to its constructor (transport, timeout, ...)."""
    provider: PaymentProvider = get_provider_class(name)(credentials, **kwargs)
    return provider


def missing_credentials(name: str, config: Mapping[str, Any]) -> list[str]:
    """Required keys absent or blank in ``config`` (empty list when complete)."""
    return [
        key
        for key in spec(name).required
        if not isinstance(config.get(key), str) or not config[key].strip()
    ]


def unknown_credentials(name: str, config: Mapping[str, Any]) -> list[str]:
    """Keys of ``config`` that ``name`` does not declare (misspelt or foreign)."""
    known = set(spec(name).keys)
    return [key for key in config if key not in known]


def bad_choices(name: str, config: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Enumerated keys whose value is not one of the allowed ones (case-insensitive)."""
    return {
        key: allowed
        for key, allowed in spec(name).choices.items()
        if key in config and str(config[key]).strip().lower() not in allowed
    }


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def credentials_from_config(name: str, config: Mapping[str, str]) -> Credentials:
    """Map a tenant's camelCase credentials object to :class:`Credentials`.

    The spec's ``secret`` key (``secretKey``; ``consumerSecret`` for M-Pesa and Pesapal,
    ``companyToken`` for DPO, ``safeKey`` for PayU) -> ``secret_key``; its ``public`` key
    (``publicKey``; ``consumerKey``, ``apiKey``) -> ``public_key``; its ``webhook`` key
    (``webhookSecret``; ``secretHash`` for Flutterwave) -> ``webhook_secret``; ``baseUrl``
    -> ``base_url``; every other key is kept in ``extra`` under its camelCase name and its
    snake_case alias (``securityCredential`` and ``security_credential``). Keys the spec
    does not declare (configurations stored before keys were checked) are kept too.
    """
    key = normalize_name(name)
    missing = missing_credentials(key, config)
    if missing:
        raise MissingCredentials(key, missing)
    declared = SPECS[key]
    secret, public, webhook = declared.secret, declared.public, declared.webhook
    mapped = {secret, "baseUrl"} | {k for k in (public, webhook) if k}
    extra: dict[str, str] = {}
    for k, v in config.items():
        if k not in mapped and v is not None:
            extra[k] = extra[_snake(k)] = str(v)
    return Credentials(
        secret_key=str(config[secret]),
        public_key=(config.get(public) or None) if public else None,
        webhook_secret=(config.get(webhook) or None) if webhook else None,
        extra=extra,
        base_url=config.get("baseUrl") or None,
    )
