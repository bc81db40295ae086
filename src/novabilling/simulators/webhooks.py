"""Webhook delivery shared by every simulator: sign the exact body bytes, POST them,
record every attempt (``SentWebhook``) so tests can inspect or replay it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

Signer = Callable[[bytes], Mapping[str, str]]
"""Given the exact body bytes, return the signature header(s) to send with them."""


def unsigned(body: bytes) -> dict[str, str]:
    """The signer of providers whose callbacks carry no signature (M-Pesa)."""
    return {}


@dataclass
class SentWebhook:
    """One webhook delivery (or attempted delivery) as the provider sent it."""

    url: str | None
    headers: dict[str, str]
    body: bytes
    status_code: int | None = None  # our endpoint's answer; None if not delivered
    error: str | None = None  # transport error text when delivery failed

    def json(self) -> Any:
        return json.loads(self.body)


def dump_json(payload: Mapping[str, Any]) -> bytes:
    """Serialize a webhook body the way providers do (compact UTF-8 JSON)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class WebhookSender:
    """Signs and POSTs webhook bodies; records every one in ``sent``.

    ``queue()`` keeps a body for the next ``flush()`` (what ``drain()`` calls);
    ``send()`` delivers at once. Both go to ``url`` unless given their own (M-Pesa posts
    each callback to the URL named in its request). ``redeliver()`` posts an already-sent
    webhook again with identical bytes and headers (providers deliver at-least-once).
    """

    sign: Signer
    url: str | None = None
    transport: httpx.AsyncBaseTransport | None = None
    timeout: float = 5.0
    sent: list[SentWebhook] = field(default_factory=list)
    pending: list[tuple[bytes, str | None]] = field(default_factory=list)

    def queue(self, payload: Mapping[str, Any] | bytes, *, url: str | None = None) -> None:
        body = payload if isinstance(payload, bytes) else dump_json(payload)
        self.pending.append((body, url))

    async def flush(self) -> list[SentWebhook]:
        delivered: list[SentWebhook] = []
        while self.pending:
            body, url = self.pending.pop(0)
            delivered.append(await self.send(body, url=url))
        return delivered

    async def send(
        self, payload: Mapping[str, Any] | bytes, *, url: str | None = None
    ) -> SentWebhook:
        body = payload if isinstance(payload, bytes) else dump_json(payload)
        headers = {"content-type": "application/json", **dict(self.sign(body))}
        return await self._post(SentWebhook(url=url or self.url, headers=headers, body=body))

    async def redeliver(self, index: int = -1) -> SentWebhook:
        original = self.sent[index]
        url = original.url or self.url  # to where it went (M-Pesa, PayU, Pesapal: per request)
        copy = SentWebhook(url=url, headers=dict(original.headers), body=original.body)
        return await self._post(copy)

    async def _post(self, webhook: SentWebhook) -> SentWebhook:
        self.sent.append(webhook)
        if not webhook.url:
            return webhook
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout) as client:
                response = await client.post(
                    webhook.url, content=webhook.body, headers=webhook.headers
                )
            webhook.status_code = response.status_code
        except httpx.HTTPError as exc:  # a down endpoint is the receiver's problem
            webhook.error = f"{type(exc).__name__}: {exc}"
        return webhook
