"""Payment providers by name (STYLE §3.9): lower-case name -> adapter class, imported lazily.

``REQUIRED_CREDENTIALS`` follows the wire contract (payment-providers.md); the tenant
configuration endpoint rejects unknown names and missing keys with 400 using it, and
``credentials_from_config`` maps the stored camelCase object to :class:`Credentials`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from novabilling.payments.providers.base import Credentials, PaymentProvider

PROVIDERS: dict[str, str] = {
    "paystack": "novabilling.payments.providers.paystack:PaystackProvider",
    "flutterwave": "novabilling.payments.providers.flutterwave:FlutterwaveProvider",
    "mpesa": "novabilling.payments.providers.mpesa:MpesaProvider",
    "stripe": "novabilling.payments.providers.stripe:StripeProvider",
}

REQUIRED_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "stripe": ("secretKey", "webhookSecret"),
    "paystack": ("publicKey", "secretKey"),
    "flutterwave": ("publicKey", "secretKey", "encryptionKey"),
    "mpesa": ("consumerKey", "consumerSecret", "shortcode", "passkey", "environment"),
}
OPTIONAL_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "stripe": ("baseUrl",),
    "paystack": ("baseUrl",),
    "flutterwave": ("secretHash", "baseUrl"),
    "mpesa": ("baseUrl", "initiator", "securityCredential", "callbackUrl", "resultUrl"),
}


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


def normalize_name(name: str) -> str:
    key = name.strip().lower()
    if key not in PROVIDERS:
        raise UnknownProvider(name)
    return key


def get_provider_class(name: str) -> type[Any]:
    """The adapter class for ``name`` (case-insensitive); ``UnknownProvider`` otherwise."""
    module_name, _, class_name = PROVIDERS[normalize_name(name)].partition(":")
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
        for key in REQUIRED_CREDENTIALS[normalize_name(name)]
        if not isinstance(config.get(key), str) or not config[key].strip()
    ]


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def credentials_from_config(name: str, config: Mapping[str, str]) -> Credentials:
    """Map a tenant's camelCase credentials object to :class:`Credentials`.

    ``secretKey`` (``consumerSecret`` for M-Pesa) -> ``secret_key``; ``publicKey``
    (``consumerKey`` for M-Pesa) -> ``public_key``; ``webhookSecret`` (``secretHash`` for
    Flutterwave) -> ``webhook_secret``; ``baseUrl`` -> ``base_url``; every other key is
    kept in ``extra`` under its camelCase name and its snake_case alias
    (``securityCredential`` and ``security_credential``).
    """
    key = normalize_name(name)
    missing = missing_credentials(key, config)
    if missing:
        raise MissingCredentials(key, missing)
    if key == "mpesa":
        secret, public, webhook = "consumerSecret", "consumerKey", None
    elif key == "flutterwave":
        secret, public, webhook = "secretKey", "publicKey", "secretHash"
    else:
        secret, public, webhook = "secretKey", "publicKey", "webhookSecret"
    mapped = {secret, public, "baseUrl"} | ({webhook} if webhook else set())
    extra: dict[str, str] = {}
    for k, v in config.items():
        if k not in mapped and v is not None:
            extra[k] = extra[_snake(k)] = str(v)
    return Credentials(
        secret_key=str(config[secret]),
        public_key=config.get(public) or None,
        webhook_secret=(config.get(webhook) or None) if webhook else None,
        extra=extra,
        base_url=config.get("baseUrl") or None,
    )
