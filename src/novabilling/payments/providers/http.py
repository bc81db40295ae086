"""What every adapter's HTTP calls share: the constructor options, the retrying request
and the JSON-body reader.

``send`` makes up to ``1 + retries`` attempts, each on a fresh ``httpx.AsyncClient``. A
transport error, a timeout, or an answer that ``retry_reason`` names a problem (default:
any 5xx) is retried after ``backoff * 2 ** (attempt - 1)`` seconds; once the attempts run
out the adapter's own ``ProviderUnavailable`` is raised (the outcome is unknown, never
failed: convention 10). Every other answer, 4xx included, is returned for the adapter to
read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict, Unpack

import httpx

from novabilling.payments.providers.base import Credentials, ProviderUnavailable

Auth = Callable[[httpx.AsyncClient], Awaitable[Mapping[str, str]]]
"""Headers fetched afresh in every attempt, over that attempt's client (an OAuth bearer)."""
RetryReason = Callable[[httpx.Response], str | None]
"""The problem an answer shows (``"HTTP 503"``), or ``None`` when it is to be returned."""


class HttpOptions(TypedDict, total=False):
    """The keywords every adapter's constructor takes (``registry.create_provider``
    passes them on): ``transport`` (tests: a simulator), ``timeout`` seconds (10.0),
    ``max_retries`` after the first attempt (2) and ``backoff`` seconds before the first
    retry, doubling after (0.2)."""

    transport: httpx.AsyncBaseTransport | None
    timeout: float
    max_retries: int
    backoff: float


@dataclass(frozen=True)
class Endpoint:
    """Where one adapter instance sends its calls, and how patiently."""

    base_url: str
    transport: httpx.AsyncBaseTransport | None = None
    timeout: float = 10.0
    max_retries: int = 2
    backoff: float = 0.2

    @classmethod
    def of(
        cls, credentials: Credentials, default_base_url: str, **options: Unpack[HttpOptions]
    ) -> Endpoint:
        """``credentials.base_url`` (simulator, sandbox) or the provider's default URL,
        without a trailing slash."""
        return cls((credentials.base_url or default_base_url).rstrip("/"), **options)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, transport=self.transport, timeout=self.timeout
        )

    async def pause(self, attempt: int) -> None:
        """Wait before attempt ``attempt`` (0: the first, no wait)."""
        if attempt:
            await asyncio.sleep(self.backoff * 2 ** (attempt - 1))


def server_error(response: httpx.Response) -> str | None:
    """The default :data:`RetryReason`: 5xx answers are retried."""
    return f"HTTP {response.status_code}" if response.status_code >= 500 else None


async def send(
    endpoint: Endpoint,
    method: str,
    path: str,
    *,
    unavailable: Callable[[str], ProviderUnavailable],
    headers: Mapping[str, str] | None = None,
    auth: Auth | None = None,
    body: Mapping[str, Any] | None = None,
    form: Mapping[str, str] | None = None,
    content: bytes | None = None,
    params: Mapping[str, str] | None = None,
    retries: int | None = None,
    retry_reason: RetryReason = server_error,
    deadline: bool = True,
) -> httpx.Response:
    """One call with retries. ``body`` is sent as JSON, ``form`` form-encoded, ``content``
    as raw bytes (XML: set its content type in ``headers``); ``auth``
    adds headers per attempt (its transport errors are retried like the request's);
    ``retries`` overrides ``endpoint.max_retries`` (0: one attempt, for calls that must not
    be repeated blindly); ``unavailable(problem)`` builds the error raised when the
    attempts run out. ``deadline``: each attempt as a whole is also bounded by
    ``endpoint.timeout`` (else only by httpx's per-phase timeouts)."""
    problem = "no attempt made"
    for attempt in range(1 + (endpoint.max_retries if retries is None else retries)):
        await endpoint.pause(attempt)
        try:
            async with (
                endpoint.client() as client,
                asyncio.timeout(endpoint.timeout if deadline else None),
            ):
                sent = {**(headers or {}), **(await auth(client) if auth else {})}
                response = await client.request(
                    method,
                    path,
                    json=body,
                    data=form,
                    content=content,
                    params=params,
                    headers=sent,
                )
        except (httpx.TransportError, httpx.HTTPStatusError, TimeoutError) as exc:
            problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
            continue
        reason = retry_reason(response)
        if reason is None:
            return response
        problem = reason
    raise unavailable(problem)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def json_object(content: bytes, *, exact: bool = False) -> dict[str, Any]:
    """The JSON object in a body; ``{}`` for anything else (empty, malformed, a list).
    ``exact``: decimals become ``Decimal`` (amounts in major units), else ``float``."""
    try:
        parsed = json.loads(content or b"{}", parse_float=Decimal if exact else float)
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
