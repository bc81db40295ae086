"""Where a tenant's provider credentials may be sent, and what provider errors may say.

A credential ``baseUrl`` points an adapter at a simulator or a sandbox; every call through
that adapter carries the tenant's secret. Left open it is a server-side request forgery:
a tenant could aim it at Redis on localhost or a cloud metadata address, and read from the
error text which internal ports answer (issue 14 item 11).

- ``check_base_url``: always an absolute ``http(s)`` URL without user info; in production
  (``NB_ENV=production``) its host must be on ``NB_PROVIDER_BASE_URL_ALLOWLIST``
  (comma-separated host names, ``*.example.com`` for subdomains). Development and test
  accept any host (the simulators run on loopback and on in-process fake hosts). Checked
  when a configuration is saved and again every time an adapter is built, so a row saved
  before the rule (or by another process's settings) cannot reach a refused host.
- ``public_message``: the text a tenant sees for a provider failure. An unreachable
  provider is "<name> unreachable" in production - no address, port, errno or exception
  class - while the details go to the log; a provider's own answer (a refusal) is shown.
"""

from __future__ import annotations

import httpx
import structlog

from novabilling.config import Settings
from novabilling.payments.providers.base import ProviderError, ProviderUnavailable

log = structlog.get_logger(__name__)


class BaseUrlRefused(ValueError):
    """A ``baseUrl`` this deployment does not let adapters call."""


def allowlist(settings: Settings) -> tuple[str, ...]:
    raw = settings.provider_base_url_allowlist or ""
    return tuple(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())


def _host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed:
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and host != entry[2:]:
                return True
        elif host == entry:
            return True
    return False


def check_base_url(url: str | None, *, settings: Settings) -> None:
    """Raise :class:`BaseUrlRefused` unless adapters may call ``url`` (None: the
    provider's own default URL, always allowed)."""
    if url is None or not url.strip():
        return
    try:  # httpx's own parser: the host checked is the host the adapter will call
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError):
        raise BaseUrlRefused("baseUrl is not a valid URL") from None
    host = parsed.host
    if parsed.scheme not in ("http", "https") or not host:
        raise BaseUrlRefused("baseUrl must be an absolute http(s) URL")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise BaseUrlRefused("baseUrl has a port out of range")
    if parsed.userinfo or parsed.query or parsed.fragment:
        raise BaseUrlRefused("baseUrl must not carry user information, a query or a fragment")
    if settings.env != "production":
        return
    if not _host_allowed(host, allowlist(settings)):
        raise BaseUrlRefused(f"baseUrl host {host} is not on this deployment's allow-list")


def public_message(name: str, exc: ProviderError, *, settings: Settings) -> str:
    """What a tenant is told about ``exc`` from provider ``name``."""
    if isinstance(exc, ProviderUnavailable):
        log.warning("payment_provider.unreachable", provider=name, problem=exc.message)
        if settings.env == "production":
            return f"{name} unreachable"
        return f"{name} unreachable ({exc.message})"
    return exc.message
