"""Stripe simulator (reference: the shared provider reference, stripe.md §9).

Endpoints (form-encoded bodies, bracket keys, JSON answers, Bearer or Basic auth):
``GET /v1/balance``, ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/{id}``,
``POST /v1/payment_intents`` (off-session ``confirm=true``), ``GET /v1/payment_intents/{id}``,
``GET /v1/payment_intents/search?query=metadata['k']:'v'``, ``POST /v1/refunds``,
``GET /v1/refunds/{id}``, ``GET /v1/refunds``. Sim-only:
``POST /_sim/pay/{reference-or-session-id}?outcome=success|failed``, ``GET /_sim/state``.

``Idempotency-Key``: the first answer (including 402 and 500) is stored and replayed with
``Idempotent-Replayed: true``; the same key with other parameters -> 400
``idempotency_error``. Test payment methods: ``pm_card_visa`` / ``pm_card_mastercard``
succeed, ``pm_card_chargeDeclined`` / ``pm_card_chargeDeclinedInsufficientFunds`` -> 402
``card_declined``, ``pm_card_authenticationRequired`` -> 402 ``authentication_required``,
``PM_TIMEOUT`` (sim-only) creates the PaymentIntent, stalls ``hang_seconds`` and answers
500. Refunds stay ``pending`` until ``drain()`` (then ``succeeded`` + ``refund.updated``).
Webhooks: ``Stripe-Signature: t=<now>,v1=<hex>`` (one ``v1`` per secret in
``webhook_secret`` + ``extra_webhook_secrets``, as during a rotation).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from novabilling.simulators.base import (
    SentWebhook,
    WebhookSender,
    bearer_token,
    json_error,
    json_ok,
    settings_from_env,
)

DEFAULT_SECRET_KEY = "sk_test_novabilling_simulator"
DEFAULT_WEBHOOK_SECRET = "whsec_test_NovaBillingWorkedExample0123456789"  # signatures.json
CUSTOMER = "cus_sim_amina"
PM_SUCCESS = "pm_card_visa"
PM_DECLINE = "pm_card_chargeDeclinedInsufficientFunds"
PM_AUTH_REQUIRED = "pm_card_authenticationRequired"
PM_TIMEOUT = "pm_card_sim_timeout"
API_VERSION = "2024-12-18.acacia"
_DECLINES = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    PM_DECLINE: ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    PM_AUTH_REQUIRED: (
        "authentication_required",
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
    ),
}
_SEARCH = re.compile(r"metadata\['([^']+)'\]:'([^']*)'")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _sub(form: dict[str, str], prefix: str) -> dict[str, str]:
    """``metadata[a]=1`` -> ``{"a": "1"}`` for ``prefix="metadata"``."""
    start = prefix + "["
    return {
        k[len(start) : -1]: v
        for k, v in form.items()
        if k.startswith(start) and "][" not in k[len(start) :]
    }


def _error(status: int, type_: str, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": type_, "message": message, **extra}}


class StripeSimulator:
    def __init__(
        self,
        *,
        secret_key: str = DEFAULT_SECRET_KEY,
        webhook_secret: str | None = DEFAULT_WEBHOOK_SECRET,
        webhook_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        hang_seconds: float = 0.3,
        extra_webhook_secrets: tuple[str, ...] = (),
        now: Callable[[], int] | None = None,
    ) -> None:
        self.secret_key = secret_key
        self.webhook_secrets = tuple(s for s in (webhook_secret, *extra_webhook_secrets) if s)
        self.hang_seconds = hang_seconds
        self.now = now or (lambda: int(time.time()))
        self.customers: set[str] = {CUSTOMER}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.attempts: Counter[str] = Counter()
        self.sender = WebhookSender(sign=self._sign, url=webhook_url, transport=webhook_transport)
        self.app: ASGIApp = Starlette(
            routes=[
                Route("/v1/balance", self._balance, methods=["GET"]),
                Route("/v1/checkout/sessions", self._post(self._create_session), methods=["POST"]),
                Route("/v1/checkout/sessions/{id}", self._get(self.sessions), methods=["GET"]),
                Route("/v1/payment_intents", self._post(self._create_intent), methods=["POST"]),
                Route("/v1/payment_intents/search", self._search, methods=["GET"]),
                Route("/v1/payment_intents/{id}", self._get(self.intents), methods=["GET"]),
                Route("/v1/refunds", self._post(self._create_refund), methods=["POST"]),
                Route("/v1/refunds", self._list_refunds, methods=["GET"]),
                Route("/v1/refunds/{id}", self._get(self.refunds), methods=["GET"]),
                Route("/_sim/pay/{reference}", self._sim_pay, methods=["POST"]),
                Route("/_sim/state", self._sim_state, methods=["GET"]),
            ]
        )

    # -- test helpers -------------------------------------------------------------------

    @property
    def sent_webhooks(self) -> list[SentWebhook]:
        return self.sender.sent

    def charges_for(self, reference: str) -> int:
        return sum(
            1 for pi in self.intents.values() if pi["metadata"].get("nb_reference") == reference
        )

    def attempts_for(self, reference: str) -> int:
        return self.attempts[reference]

    async def drain(self) -> None:
        for refund in self.refunds.values():
            if refund["status"] == "pending":
                refund["status"] = "succeeded"
                self._event("refund.updated", refund, previous={"status": "pending"})
        await self.sender.flush()

    async def complete(self, reference: str, *, success: bool = True) -> dict[str, Any]:
        """What the customer does on the hosted page (also ``POST /_sim/pay/{ref}``)."""
        session = self.sessions.get(reference) or next(
            s for s in self.sessions.values() if s["client_reference_id"] == reference
        )
        customer = session["customer"] or _id("cus")
        self.customers.add(customer)
        pm = _id("pm")
        pi_data = session["_payment_intent_data"]
        intent = self._intent(
            amount=session["amount_total"],
            currency=session["currency"],
            customer=customer,
            payment_method=pm,
            metadata=pi_data["metadata"],
        )
        intent["setup_future_usage"] = pi_data.get("setup_future_usage")
        if success:
            session.update(
                status="complete",
                payment_status="paid",
                customer=customer,
                payment_intent=intent["id"],
            )
            self._event("checkout.session.completed", self._public(session))
            self._event("payment_intent.succeeded", intent)
        else:
            code, decline, message = _DECLINES["pm_card_chargeDeclined"]
            self._fail(intent, code, decline, message)
            self._event("payment_intent.payment_failed", intent)
        return session

    # -- plumbing -------------------------------------------------------------------------

    def _sign(self, body: bytes) -> dict[str, str]:
        t = self.now()
        parts = [f"t={t}"] + [f"v1={sign(s, t, body)}" for s in self.webhook_secrets]
        return {"Stripe-Signature": ",".join(parts)}

    def _event(
        self, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> None:
        data: dict[str, Any] = {"object": obj}
        if previous:
            data["previous_attributes"] = previous
        self.sender.queue(
            {
                "id": _id("evt"),
                "object": "event",
                "api_version": API_VERSION,
                "created": self.now(),
                "data": data,
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": type_,
            }
        )

    def _authorized(self, request: Request) -> bool:
        token = bearer_token(request)
        header = request.headers.get("authorization", "")
        if token is None and header.lower().startswith("basic "):
            try:
                token = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except ValueError:
                token = None
        return token == self.secret_key

    @staticmethod
    def _unauthorized() -> JSONResponse:
        message = "Invalid API Key provided: sk_test_****"
        return json_error(401, {"error": {"type": "invalid_request_error", "message": message}})

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _post(self, handler: Callable[[dict[str, str]], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not self._authorized(request):
                return self._unauthorized()
            pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
            form = dict(pairs)
            if ref := form.get("metadata[nb_reference]"):
                self.attempts[ref] += 1
            key = request.headers.get("idempotency-key")
            fingerprint = hashlib.sha256(f"{request.url.path}?{sorted(pairs)}".encode()).hexdigest()
            if key and key in self.idempotency:
                stored_fp, status, body = self.idempotency[key]
                if stored_fp != fingerprint:
                    message = (
                        "Keys for idempotent requests can only be used with the same parameters "
                        f"they were first used with. Try using a key other than '{key}' if you "
                        "meant to execute a different request."
                    )
                    return json_error(
                        400, {"error": {"type": "idempotency_error", "message": message}}
                    )
                return JSONResponse(
                    body, status_code=status, headers={"Idempotent-Replayed": "true"}
                )
            status, body, hang = handler(form)
            if key and status != 400:  # validation failures happen before execution
                self.idempotency[key] = (fingerprint, status, body)
            if hang:
                await asyncio.sleep(self.hang_seconds)
            return JSONResponse(body, status_code=status)

        return endpoint

    def _get(self, store: dict[str, dict[str, Any]]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not self._authorized(request):
                return self._unauthorized()
            obj = store.get(request.path_params["id"])
            if obj is None:
                message = f"No such object: '{request.path_params['id']}'"
                body = {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "resource_missing",
                        "message": message,
                    }
                }
                return json_error(404, body)
            return json_ok(self._public(obj))

        return endpoint

    def _intent(
        self,
        *,
        amount: int,
        currency: str,
        customer: str | None,
        payment_method: str,
        metadata: dict[str, str],
        description: str | None = None,
    ) -> dict[str, Any]:
        pi_id = _id("pi")
        intent: dict[str, Any] = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount,
            "currency": currency,
            "customer": customer,
            "payment_method": payment_method,
            "status": "succeeded",
            "latest_charge": "ch_" + pi_id[3:],
            "last_payment_error": None,
            "metadata": metadata,
            "description": description,
            "created": self.now(),
            "livemode": False,
            "setup_future_usage": None,
            "capture_method": "automatic",
        }
        self.intents[pi_id] = intent
        return intent

    @staticmethod
    def _fail(intent: dict[str, Any], code: str, decline: str, message: str) -> None:
        error = {"type": "card_error", "code": code, "decline_code": decline, "message": message}
        intent.update(status="requires_payment_method", amount_received=0, last_payment_error=error)

    @staticmethod
    def _amount(form: dict[str, str], key: str) -> int | None:
        value = form.get(key, "")
        return int(value) if value.isdigit() and int(value) > 0 else None

    # -- endpoints ------------------------------------------------------------------------

    async def _balance(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        return json_ok(
            {
                "object": "balance",
                "available": [{"amount": 0, "currency": "usd"}],
                "livemode": False,
                "pending": [],
            }
        )

    def _create_session(self, form: dict[str, str]) -> tuple[int, dict[str, Any], bool]:
        amount = self._amount(form, "line_items[0][price_data][unit_amount]")
        currency = form.get("line_items[0][price_data][currency]", "")
        if amount is None or not currency.islower():
            return (
                *_error(400, "invalid_request_error", "Invalid line_items[0][price_data]"),
                False,
            )
        customer = form.get("customer")
        if customer and customer not in self.customers:
            return (
                *_error(
                    400,
                    "invalid_request_error",
                    f"No such customer: '{customer}'",
                    code="resource_missing",
                ),
                False,
            )
        quantity = int(form.get("line_items[0][quantity]", "1"))
        session_id = "cs_test_" + secrets.token_hex(24)
        session: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "mode": form.get("mode", "payment"),
            "amount_subtotal": amount * quantity,
            "amount_total": amount * quantity,
            "currency": currency,
            "customer": customer,
            "customer_email": form.get("customer_email"),
            "client_reference_id": form.get("client_reference_id"),
            "metadata": _sub(form, "metadata"),
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": form.get("success_url"),
            "cancel_url": form.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "livemode": False,
            "created": self.now(),
            "expires_at": self.now() + 86400,
            "_payment_intent_data": {
                "metadata": _sub(form, "payment_intent_data[metadata]"),
                "setup_future_usage": form.get("payment_intent_data[setup_future_usage]"),
            },
        }
        self.sessions[session_id] = session
        return 200, self._public(session), False

    def _create_intent(self, form: dict[str, str]) -> tuple[int, dict[str, Any], bool]:
        amount = self._amount(form, "amount")
        currency = form.get("currency", "")
        if amount is None or not currency.islower():
            return (*_error(400, "invalid_request_error", "Invalid amount or currency"), False)
        customer = form.get("customer")
        if customer and customer not in self.customers:
            return (
                *_error(
                    400,
                    "invalid_request_error",
                    f"No such customer: '{customer}'",
                    code="resource_missing",
                ),
                False,
            )
        pm = form.get("payment_method", "")
        if not pm.startswith("pm_"):
            return (*_error(400, "invalid_request_error", "Missing payment_method"), False)
        intent = self._intent(
            amount=amount,
            currency=currency,
            customer=customer,
            payment_method=pm,
            metadata=_sub(form, "metadata"),
            description=form.get("description"),
        )
        if pm == PM_TIMEOUT:
            intent["status"] = "processing"
            return (*_error(500, "api_error", "An unknown error occurred"), True)
        if pm in _DECLINES:
            code, decline, message = _DECLINES[pm]
            self._fail(intent, code, decline, message)
            self._event("payment_intent.payment_failed", intent)
            return (
                *_error(
                    402,
                    "card_error",
                    message,
                    code=code,
                    decline_code=decline,
                    payment_intent=intent,
                    charge=intent["latest_charge"],
                ),
                False,
            )
        self._event("payment_intent.succeeded", intent)
        return 200, intent, False

    async def _search(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        wanted = dict(_SEARCH.findall(request.query_params.get("query", "")))
        data = [
            pi
            for pi in self.intents.values()
            if all(pi["metadata"].get(k) == v for k, v in wanted.items())
        ]
        return json_ok(
            {
                "object": "search_result",
                "data": data,
                "has_more": False,
                "next_page": None,
                "url": "/v1/payment_intents/search",
            }
        )

    def _create_refund(self, form: dict[str, str]) -> tuple[int, dict[str, Any], bool]:
        intent = self.intents.get(form.get("payment_intent", ""))
        if intent is None or intent["status"] != "succeeded":
            return (
                *_error(
                    400,
                    "invalid_request_error",
                    "No refundable payment_intent",
                    code="resource_missing",
                ),
                False,
            )
        refunded = sum(
            r["amount"]
            for r in self.refunds.values()
            if r["payment_intent"] == intent["id"] and r["status"] != "failed"
        )
        remaining = intent["amount_received"] - refunded
        amount = self._amount(form, "amount") or remaining
        if amount > remaining or amount <= 0:
            message = f"Refund amount ({amount}) is greater than unrefunded amount ({remaining})."
            return (
                *_error(400, "invalid_request_error", message, code="charge_already_refunded"),
                False,
            )
        refund: dict[str, Any] = {
            "id": _id("re"),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "charge": intent["latest_charge"],
            "reason": form.get("reason"),
            "metadata": _sub(form, "metadata"),
            "status": "pending",
            "created": self.now(),
            "failure_reason": None,
        }
        self.refunds[refund["id"]] = refund
        self._event("refund.created", dict(refund))
        return 200, refund, False

    async def _list_refunds(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        pi = request.query_params.get("payment_intent")
        data = [r for r in self.refunds.values() if pi in (None, r["payment_intent"])]
        return json_ok({"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"})

    async def _sim_pay(self, request: Request) -> Response:
        reference = request.path_params["reference"]
        known = reference in self.sessions or any(
            s["client_reference_id"] == reference for s in self.sessions.values()
        )
        if not known:
            return json_error(404, {"status": "error", "message": "unknown session"})
        success = request.query_params.get("outcome", "success") == "success"
        session = await self.complete(reference, success=success)
        return json_ok(
            {"status": "ok", "session": session["id"], "payment_status": session["payment_status"]}
        )

    async def _sim_state(self, request: Request) -> Response:
        return json_ok(
            {
                "sessions": [self._public(s) for s in self.sessions.values()],
                "payment_intents": list(self.intents.values()),
                "refunds": list(self.refunds.values()),
            }
        )


def create_app() -> ASGIApp:
    settings = settings_from_env(
        default_secret_key=DEFAULT_SECRET_KEY, default_webhook_secret=DEFAULT_WEBHOOK_SECRET
    )
    sim = StripeSimulator(
        secret_key=settings.secret_key,
        webhook_secret=settings.webhook_secret,
        webhook_url=settings.webhook_url,
    )
    return sim.app
