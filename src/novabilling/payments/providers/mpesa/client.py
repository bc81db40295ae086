"""Daraja over HTTP: the OAuth client-credentials token (cached until shortly before it
expires) and bearer POSTs that refresh the token once when Daraja invalidated it
(``404.001.03``) and retry 5xx answers and timeouts with backoff."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from novabilling.kit.clock import utcnow
from novabilling.payments.providers.base import ProviderError, ProviderUnavailable

SANDBOX_URL = "https://sandbox.safaricom.co.ke"
PRODUCTION_URL = "https://api.safaricom.co.ke"
PROCESSING = "500.001.1001"
INVALID_TOKEN = "404.001.03"
_RETRYABLE_CODES = {"500.003.02", "500.003.03", "500.003.1001"}


def parse_json(content: bytes) -> dict[str, Any]:
    """A JSON object body (decimals kept exact); anything else -> ``{}``."""
    try:
        parsed = json.loads(content or b"{}", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def error_from(status: int, payload: Mapping[str, Any]) -> ProviderError:
    """A Daraja error answer (``errorCode``/``errorMessage`` or a non-zero ResponseCode)."""
    message = str(payload.get("errorMessage") or payload.get("ResponseDescription") or status)
    return ProviderError(message, code=str(payload.get("errorCode") or "") or None, status=status)


class DarajaClient:
    def __init__(
        self,
        *,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        transport: httpx.AsyncBaseTransport | None,
        timeout: float,
        max_retries: int,
        backoff: float,
    ) -> None:
        self.base_url = base_url
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.transport = transport
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._token: tuple[str, float] | None = None  # (token, expires at, unix seconds)

    def _open(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, transport=self.transport, timeout=self.timeout
        )

    async def token(self, client: httpx.AsyncClient, *, fresh: bool = False) -> str:
        """The cached token, or a new one. Bad credentials raise ``ProviderError``; a 5xx
        raises ``httpx.HTTPStatusError`` (retryable, like a transport error)."""
        now = utcnow().timestamp()
        if self._token and not fresh and self._token[1] > now:
            return self._token[0]
        basic = base64.b64encode(f"{self.consumer_key}:{self.consumer_secret}".encode())
        response = await client.get(
            "/oauth/v1/generate",
            params={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic.decode()}"},
        )
        payload = parse_json(response.content)
        if response.status_code >= 500:
            raise httpx.HTTPStatusError("oauth 5xx", request=response.request, response=response)
        if response.status_code != 200 or not payload.get("access_token"):
            message = str(payload.get("errorMessage") or f"OAuth HTTP {response.status_code}")
            raise ProviderError(message, code="unauthorized", status=response.status_code)
        expires_in = int(str(payload.get("expires_in") or "3599"))  # a string in practice
        self._token = (str(payload["access_token"]), now + max(expires_in - 300, 60))
        return self._token[0]

    async def fresh_token(self) -> str:
        """A newly issued token (the credentials check)."""
        async with self._open() as client:
            return await self.token(client, fresh=True)

    async def post(
        self, path: str, body: Mapping[str, Any], *, retry: bool = True
    ) -> tuple[int, dict[str, Any]]:
        """POST with a bearer token; refresh once on 404.001.03; retry 5xx/timeouts
        (except ``500.001.1001``, a real answer). ``retry=False``: one attempt only."""
        attempts, problem, refreshed = 1 + self.max_retries, "no attempt made", False
        async with self._open() as client:
            attempt = 0
            while attempt < attempts:
                if attempt:
                    await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                attempt += 1
                try:
                    token = await self.token(client)
                    headers = {"Authorization": f"Bearer {token}"}
                    response = await client.post(path, json=dict(body), headers=headers)
                except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                    if not retry:
                        break
                    continue
                payload = parse_json(response.content)
                code = str(payload.get("errorCode") or "")
                if code == INVALID_TOKEN and not refreshed:  # token invalidated: refresh once
                    refreshed, self._token, attempt = True, None, attempt - 1
                    continue
                retryable = response.status_code >= 500 and (code in _RETRYABLE_CODES or not code)
                if retryable:
                    problem = f"HTTP {response.status_code} {code}".strip()
                    if retry:
                        continue
                    break
                return response.status_code, payload
        raise ProviderUnavailable(f"m-pesa unavailable: {problem}", status=503)
