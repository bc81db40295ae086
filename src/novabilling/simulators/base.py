"""Shared pieces of the local provider simulators (Paystack, Stripe, Flutterwave, M-Pesa,
DPO, PayU, Pesapal).

This module holds the conventions below, the common test surface (:class:`SimulatorBase`)
and the environment factory (:func:`app_from_env`); ``webhooks.py`` signs, posts and
records webhooks; ``http.py`` has the request/response helpers of the simulated APIs.

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

2. Attributes / methods (:class:`SimulatorBase` gives ``sent_webhooks``, ``drain`` and
   ``attempts_for``):

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
   * ``NB_SIM_PUBLIC_URL``     (default: none) the simulator's own address; hosted checkout
     links point there (``/checkout/...`` pages served by the simulator) instead of the
     provider's real domain
   * ``NB_SIM_DELIVERY_SECONDS`` (default 0.5) how often the served app drains itself

   Use :func:`app_from_env` (or :func:`settings_from_env`) for that. The app it returns
   delivers by itself (``delivery.SelfDelivering``: ``drain()`` in the background while the
   server runs), as the real provider does. The fake defaults are the same fake secrets as
   ``reference/providers/samples/signatures.json``, never real keys.

6. Money on the wire is in the provider's own units (see each reference file); the
   simulator stores what it received and never converts through floats.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import ASGIApp

from novabilling.simulators.delivery import DEFAULT_INTERVAL_SECONDS, Drain, SelfDelivering
from novabilling.simulators.http import bearer_token, json_error, json_ok
from novabilling.simulators.webhooks import SentWebhook, Signer, WebhookSender, dump_json

__all__ = [
    "ASGIApp",
    "SentWebhook",
    "SimulatorBase",
    "SimulatorSettings",
    "Signer",
    "WebhookSender",
    "app_from_env",
    "bearer_token",
    "dump_json",
    "json_error",
    "json_ok",
    "settings_from_env",
]


class SimulatorBase:
    """The test surface every simulator shares (convention 2). Subclasses set ``sender``
    and ``attempts`` and say what ``settle()`` completes before webhooks are flushed."""

    sender: WebhookSender
    attempts: Counter[str]

    @property
    def sent_webhooks(self) -> list[SentWebhook]:
        return self.sender.sent

    def attempts_for(self, reference: str) -> int:
        return self.attempts[reference]

    def settle(self) -> None:
        """Complete what the provider finishes asynchronously (refunds, open prompts...)."""

    async def drain(self) -> list[SentWebhook]:
        """Deliver everything pending now: ``settle()``, then every queued webhook."""
        self.settle()
        return await self.sender.flush()


@dataclass(frozen=True)
class SimulatorSettings:
    secret_key: str
    webhook_secret: str | None
    webhook_url: str | None
    public_url: str | None = None
    delivery_seconds: float = DEFAULT_INTERVAL_SECONDS


def settings_from_env(
    *, default_secret_key: str, default_webhook_secret: str | None = None
) -> SimulatorSettings:
    """Read the ``NB_SIM_*`` variables (convention 5)."""
    public_url = (os.environ.get("NB_SIM_PUBLIC_URL") or "").rstrip("/")
    delivery = os.environ.get("NB_SIM_DELIVERY_SECONDS")
    return SimulatorSettings(
        secret_key=os.environ.get("NB_SIM_SECRET_KEY") or default_secret_key,
        webhook_secret=os.environ.get("NB_SIM_WEBHOOK_SECRET") or default_webhook_secret,
        webhook_url=os.environ.get("NB_SIM_WEBHOOK_URL") or None,
        public_url=public_url or None,
        delivery_seconds=float(delivery) if delivery else DEFAULT_INTERVAL_SECONDS,
    )


class _HasApp(Protocol):
    @property
    def app(self) -> ASGIApp: ...


def app_from_env(
    simulator: Callable[..., _HasApp],
    *,
    default_secret_key: str,
    default_webhook_secret: str | None = None,
    checkout: Callable[[str], dict[str, Any]] | None = None,
) -> ASGIApp:
    """``simulator(secret_key=..., webhook_secret=..., webhook_url=...)`` built from the
    ``NB_SIM_*`` variables (convention 5); its ASGI app, delivering by itself. With
    ``NB_SIM_PUBLIC_URL`` set, ``checkout(public_url)`` gives the extra constructor
    arguments that point hosted checkout links at the simulator's own pages."""
    settings = settings_from_env(
        default_secret_key=default_secret_key, default_webhook_secret=default_webhook_secret
    )
    extra = checkout(settings.public_url) if checkout and settings.public_url else {}
    sim = simulator(
        secret_key=settings.secret_key,
        webhook_secret=settings.webhook_secret,
        webhook_url=settings.webhook_url,
        **extra,
    )
    drain: Drain | None = getattr(sim, "drain", None)
    if drain is None:
        return sim.app
    return SelfDelivering(sim.app, drain, interval=settings.delivery_seconds)
