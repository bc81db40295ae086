"""Outbound requests to addresses a tenant chose (its ``webhookUrl``) must reach the public
internet only: never loopback, private networks, link-local cloud metadata addresses or
other reserved ranges (issue 14, defect 11, webhook half).

- ``check_public_url`` (static, at save time and before every delivery): an absolute
  ``http(s)`` URL, parsed with httpx (the parser that sends), no user info, a host that is
  not an IP literal outside the public ranges (legacy forms such as ``2130706433`` or
  ``0x7f.1`` included) and not a local-only name (``localhost``, ``*.local``,
  ``*.internal`` ...).
- ``resolve_public`` (at delivery): every address the host resolves to must be public;
  the request is then sent to that address (``pinned``), with the original ``Host`` header
  and TLS server name, so a DNS answer that changes between the check and the connection
  (rebinding) cannot redirect it. Redirects are never followed by the caller.

Errors say only that the destination is not allowed: no address, port or resolver detail.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import httpx

_LOCAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".internal",
    ".intranet",
    ".lan",
    ".home",
    ".corp",
    ".home.arpa",
    ".localdomain",
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeDestination(ValueError):
    """Not a public http(s) destination; the message reveals nothing about the network."""

    def __init__(self) -> None:
        super().__init__("must be a public http(s) URL")


def is_public_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public_address(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def _literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, legacy IPv4 spellings included."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:  # 2130706433, 0x7f.1, 127.1, 017700000001 ... (what the resolver would accept)
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def check_public_url(url: str) -> httpx.URL:
    """The parsed URL, or ``UnsafeDestination``."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError, TypeError):
        raise UnsafeDestination() from None
    host = (parsed.host or "").lower().rstrip(".")
    if parsed.scheme not in ("http", "https") or not host or parsed.userinfo:
        raise UnsafeDestination()
    literal = _literal_address(host)
    if literal is not None:
        if not is_public_address(literal):
            raise UnsafeDestination()
        return parsed
    labels = host.split(".")
    if (
        len(labels) < 2
        or host == "localhost"
        or host.endswith(_LOCAL_SUFFIXES)
        or not labels[-1].isalpha()
    ):
        raise UnsafeDestination()
    return parsed


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


RESOLVER = _getaddrinfo
"""Replaceable in tests (no DNS there); production uses the system resolver."""


@dataclass(frozen=True)
class Pinned:
    """Send ``url`` (the chosen public address) with these headers and extensions."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, Any]


async def resolve_public(url: httpx.URL) -> Pinned:
    """Resolve ``url``'s host; every address must be public. ``UnsafeDestination`` else
    (unresolvable included)."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    literal = _literal_address(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            found = await RESOLVER(host, port)
        except (OSError, UnicodeError):
            raise UnsafeDestination() from None
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise UnsafeDestination()
    chosen = addresses[0]
    authority = host if url.port is None else f"{host}:{url.port}"
    return Pinned(
        url=url.copy_with(host=str(chosen)),
        headers={"Host": authority},
        extensions={"sni_hostname": host} if url.scheme == "https" else {},
    )
