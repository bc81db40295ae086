"""Daraja over HTTP: the OAuth client-credentials token (cached until shortly before it
expires) and bearer POSTs that refresh the token once when Daraja invalidated it
(``404.001.03``) and retry 5xx answers and timeouts with backoff."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import httpx

from novabilling.kit.clock import SystemClock
from novabilling.payments.providers import http
from novabilling.payments.providers.base import ProviderError, ProviderUnavailable

SANDBOX_URL = "https://sandbox.safaricom.co.ke"
PRODUCTION_URL = "https://api.safaricom.co.ke"
PROCESSING = "500.001.1001"
INVALID_TOKEN = "404.001.03"
_RETRYABLE_CODES = {"500.003.02", "500.003.03", "500.003.1001"}


def parse_json(content: bytes) -> dict[str, Any]:
    """A JSON object body (decimals kept exact); anything else -> ``{}``."""
    return http.json_object(content, exact=True)


def error_from(status: int, payload: Mapping[str, Any]) -> ProviderError:
    """A Daraja error answer (``errorCode``/``errorMessage`` or a non-zero ResponseCode)."""
    message = str(payload.get("errorMessage") or payload.get("ResponseDescription") or status)
    return ProviderError(message, code=str(payload.get("errorCode") or "") or None, status=status)


def _unavailable(problem: str) -> ProviderUnavailable:
    return ProviderUnavailable(f"m-pesa unavailable: {problem}", status=503)


def _retry_reason(response: httpx.Response) -> str | None:
    """A 5xx is retried unless its ``errorCode`` is a real answer (``500.001.1001``)."""
    code = str(parse_json(response.content).get("errorCode") or "")
    if response.status_code >= 500 and (code in _RETRYABLE_CODES or not code):
        return f"HTTP {response.status_code} {code}".strip()
    return None


class DarajaClient:
    """One credentials' token cache and POSTs over ``endpoint``."""

    def __init__(self, endpoint: http.Endpoint, *, consumer_key: str, consumer_secret: str) -> None:
        self.endpoint = endpoint
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self._token: tuple[str, float] | None = None  # (token, expires at, unix seconds)

    async def token(self, client: httpx.AsyncClient, *, fresh: bool = False) -> str:
        """The cached token, or a new one. Bad credentials raise ``ProviderError``; a 5xx
        raises ``httpx.HTTPStatusError`` (retryable, like a transport error)."""
        now = SystemClock().now().timestamp()
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
        async with self.endpoint.client() as client:
            return await self.token(client, fresh=True)

    async def _bearer(self, client: httpx.AsyncClient) -> dict[str, str]:
        return http.bearer(await self.token(client))

    async def post(
        self, path: str, body: Mapping[str, Any], *, retry: bool = True
    ) -> tuple[int, dict[str, Any]]:
        """POST with a bearer token; refresh once on 404.001.03; retry 5xx/timeouts
        (except ``500.001.1001``, a real answer). ``retry=False``: one attempt only."""
        for refreshed in (False, True):
            response = await http.send(
                self.endpoint,
                "POST",
                path,
                auth=self._bearer,
                body=dict(body),
                retries=None if retry else 0,
                retry_reason=_retry_reason,
                unavailable=_unavailable,
                deadline=False,
            )
            payload = parse_json(response.content)
            if str(payload.get("errorCode") or "") != INVALID_TOKEN or refreshed:
                break
            self._token = None  # Daraja invalidated the token: fetch a new one, once
        return response.status_code, payload
