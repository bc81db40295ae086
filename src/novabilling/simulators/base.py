"""Shared pieces of the local provider simulators (Paystack, Stripe, Flutterwave, M-Pesa).

The build machines are offline, so a simulator is the only "provider" a test ever sees. It
must behave like the real API for the endpoints our adapters use (same paths, auth checks,
error shapes, amount units, idempotency quirks) — see
the shared provider reference (``<name>.md``) ("what the simulator must emulate").

Conventions every simulator module ``novabilling.simulators.<name>`` follows
---------------------------------------------------------------------------

1. A class ``<Name>Simulator`` with keyword-only constructor::

       <Name>Simulator(*, secret_key: str,
                       webhook_secret: str | None = None,
                       webhook_url: str | None = None,
                       webhook_transport: httpx.AsyncBaseTransport | None = None,
                       hang_seconds: float = 0.3,
                       ...provider-specific keyword args)

   * ``secret_key``: the API key the simulator accepts (``Authorization: Bearer ...``, or
     the OAuth consumer key/secret pair for M-Pesa). A wrong key answers 401 with the
     provider's own error shape.
   * ``webhook_secret``: what webhooks are signed with when the provider has a separate
     secret (Stripe ``whsec_...``, Flutterwave secret hash). Paystack signs with
     ``secret_key``; M-Pesa callbacks are unsigned.
   * ``webhook_url`` / ``webhook_transport``: where webhooks/callbacks are POSTed. Pass
     ``httpx.ASGITransport(app=our_app)`` to deliver into our own ASGI app in-process. With
     no URL the webhook is still built, signed and recorded in ``sent_webhooks`` (tests can
     then feed ``body``/``headers`` to ``provider.parse_webhook`` directly).
   * ``hang_seconds``: how long a "timeout" test input stalls before answering 5xx.

2. Attributes / methods:

   * ``.app``: the ASGI app (FastAPI or Starlette). Tests connect adapters with
     ``httpx.ASGITransport(app=sim.app)`` and ``base_url="http://<name>.sim"``.
   * ``.sent_webhooks: list[SentWebhook]``: every webhook built, in order (duplicates too).
   * ``async drain()``: deliver everything pending *now* — queued webhooks, async refund
     transitions (pending -> processed/succeeded), delayed callbacks. Tests call it
     instead of sleeping.
   * ``charges_for(reference) -> int``: how many charge/transaction records the simulator
     created for our reference (declined ones included). A ``*_TIMEOUT`` input must
     create its record (as if the money moved) BEFORE stalling/answering 5xx, so the
     contract test proves the adapter's retries reuse the reference and never create a
     second one: it asserts ``charges_for(ref) == 1`` after a timed-out charge.
     ``attempts_for(reference) -> int``: how many requests the simulator received for
     that reference (the contract asserts >= 2: the adapter retried).

3. Test inputs pick outcomes the way the real sandbox does (test cards, authorization
   codes, payment methods, MSISDNs); each module lists its magic values as constants:
   ``*_SUCCESS``, ``*_DECLINE``, ``*_TIMEOUT``.

4. Sim-only paths live under ``/_sim/`` and exist only to drive what a human would do on
   a hosted page:

   * ``POST /_sim/pay/{reference}?outcome=success|failed`` completes a hosted checkout
     (or answers an STK prompt) for our reference and queues the signed webhook exactly
     as the provider would send it; the response is ``{"status": "ok", ...}``.
   * ``GET /_sim/state`` returns a JSON dump for debugging.

5. Module-level ``create_app() -> ASGIApp`` builds a simulator from environment variables
   (used by ``novabilling simulate <provider> --port N``):

   * ``NB_SIM_SECRET_KEY``     (default: the module's ``DEFAULT_SECRET_KEY``, a fake test key)
   * ``NB_SIM_WEBHOOK_SECRET`` (default: the module's ``DEFAULT_WEBHOOK_SECRET``)
   * ``NB_SIM_WEBHOOK_URL``    (default: none — webhooks are only recorded)

   Use :func:`settings_from_env` for that. The fake defaults are the same fake secrets as
   ``reference/providers/samples/signatures.json``, never real keys.

6. Money on the wire is in the provider's own units (see each reference file); the
   simulator stores what it received and never converts through floats.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp

__all__ = [
    "ASGIApp",
    "SentWebhook",
    "SimulatorSettings",
    "Signer",
    "WebhookSender",
    "bearer_token",
    "dump_json",
    "json_error",
    "json_ok",
    "settings_from_env",
]

Signer = Callable[[bytes], Mapping[str, str]]
"""Given the exact body bytes, return the signature header(s) to send with them."""


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
    ``send()`` delivers at once. ``redeliver()`` posts an already-sent webhook again with
    identical bytes and headers (providers deliver at-least-once).
    """

    sign: Signer
    url: str | None = None
    transport: httpx.AsyncBaseTransport | None = None
    timeout: float = 5.0
    sent: list[SentWebhook] = field(default_factory=list)
    pending: list[bytes] = field(default_factory=list)

    def queue(self, payload: Mapping[str, Any] | bytes) -> None:
        body = payload if isinstance(payload, bytes) else dump_json(payload)
        self.pending.append(body)

    async def flush(self) -> list[SentWebhook]:
        delivered: list[SentWebhook] = []
        while self.pending:
            delivered.append(await self.send(self.pending.pop(0)))
        return delivered

    async def send(self, payload: Mapping[str, Any] | bytes) -> SentWebhook:
        body = payload if isinstance(payload, bytes) else dump_json(payload)
        headers = {"content-type": "application/json", **dict(self.sign(body))}
        return await self._post(SentWebhook(url=self.url, headers=headers, body=body))

    async def redeliver(self, index: int = -1) -> SentWebhook:
        original = self.sent[index]
        copy = SentWebhook(url=self.url, headers=dict(original.headers), body=original.body)
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


def json_ok(payload: Mapping[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(dict(payload), status_code=status_code)


def json_error(status_code: int, payload: Mapping[str, Any]) -> JSONResponse:
    """An error answer in the provider's own shape (the caller builds ``payload``)."""
    return JSONResponse(dict(payload), status_code=status_code)


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@dataclass(frozen=True)
class SimulatorSettings:
    secret_key: str
    webhook_secret: str | None
    webhook_url: str | None


def settings_from_env(
    *, default_secret_key: str, default_webhook_secret: str | None = None
) -> SimulatorSettings:
    """Read ``NB_SIM_SECRET_KEY`` / ``NB_SIM_WEBHOOK_SECRET`` / ``NB_SIM_WEBHOOK_URL``."""
    return SimulatorSettings(
        secret_key=os.environ.get("NB_SIM_SECRET_KEY") or default_secret_key,
        webhook_secret=os.environ.get("NB_SIM_WEBHOOK_SECRET") or default_webhook_secret,
        webhook_url=os.environ.get("NB_SIM_WEBHOOK_URL") or None,
    )
