"""Flutterwave v3 simulator (reference: the shared provider reference, flutterwave.md §9).

Endpoints (all need ``Authorization: Bearer <secret_key>``, else 401 in Flutterwave's
``{"status": "error", "message": ..., "data": null}`` shape):

* ``GET  /v3/banks/{country}``                        harmless call for credential checks
* ``POST /v3/payments``                               hosted link (``tx_ref`` is the key)
* ``GET  /v3/transactions/{id}/verify``               by Flutterwave id
* ``GET  /v3/transactions/verify_by_reference?tx_ref=``
* ``POST /v3/tokenized-charges``                      test tokens below
* ``POST /v3/transactions/{id}/refund``, ``GET /v3/refunds/{id}``  (refunds complete at once)

Sim-only: ``POST /_sim/pay/{tx_ref}?outcome=success|failed|cancelled`` completes a hosted
payment as the customer would; success and failure create a transaction and queue a
``charge.completed`` webhook (failures too, as Flutterwave does); cancelled only redirects.
``GET /_sim/state`` dumps the state.

Webhooks: v3 envelope by default, ``webhook_format="legacy"`` for the flat camelCase body;
headers ``verif-hash`` (the secret hash) and/or ``flutterwave-signature`` (base64
HMAC-SHA256 keyed by the secret hash) per ``signature_mode`` ("both", "verif-hash",
"signature"). ``fail_next(n)`` makes the next n API calls answer the sample 503.
Amounts are MAJOR units, kept as ``Decimal``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from novabilling.simulators.base import (
    ASGIApp,
    SentWebhook,
    WebhookSender,
    bearer_token,
    settings_from_env,
)

DEFAULT_SECRET_KEY = "FLWSECK_TEST-nbsim0000000000000000000000000000-X"
DEFAULT_WEBHOOK_SECRET = "nb-flw-secret-hash-example-9f2c"
TOKEN_SUCCESS = "flw-t1nf-f9b3bf384cd30d6fca42b6df9d27bd2f-m03k"  # sample token, any email
TOKEN_DECLINE = "flw-t1nf-sim-decline-m03k"  # data.status failed, "Insufficient Funds"
# 503 after the charge was recorded as "pending" (it settles as successful on drain()).
TOKEN_TIMEOUT = "flw-t1nf-sim-timeout-m03k"
TOKEN_TIMEOUT_CHARGED = "flw-t1nf-sim-timeout-charged-m03k"  # 503, but the card WAS debited
TOKEN_UNAVAILABLE = "flw-t1nf-sim-unavailable-m03k"  # 503, nothing recorded
_TIMEOUT_BODY = {
    "status": "error",
    "message": "An error occurred. Please contact support",
    "data": None,
}
_CREATED_AT = "2025-01-01T09:14:34.000Z"


def _number(amount: Decimal) -> int | float:
    """JSON edge only: an exact Decimal rendered as a JSON number (``50.25`` / ``5000``)."""
    return int(amount) if amount == amount.to_integral_value() else float(str(amount))


def _major(value: Any) -> Decimal | None:
    """Amount as Flutterwave accepts it: number or numeric string, > 0."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount > 0 else None


def _error(status_code: int, message: str, data: Any = None) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message, "data": data}, status_code)


@dataclass
class _Payment:
    tx_ref: str
    amount: Decimal
    currency: str
    email: str
    redirect_url: str
    link: str
    meta: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    phone: str | None = None


@dataclass
class _Transaction:
    id: int
    tx_ref: str
    amount: Decimal
    currency: str
    status: str
    email: str
    processor_response: str
    token: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    refunded: Decimal = Decimal(0)
    auth_model: str = "PIN"
    narration: str = "CARD Transaction "

    def as_data(self, *, with_token: bool = True) -> dict[str, Any]:
        card: dict[str, Any] = {
            "first_6digits": "553188",
            "last_4digits": "2950",
            "issuer": "MASTERCARD  CREDIT",
            "country": "NG",
            "type": "MASTERCARD",
            "expiry": "09/32",
        }
        if with_token and self.token:
            card["token"] = self.token
        return {
            "id": self.id,
            "tx_ref": self.tx_ref,
            "flw_ref": f"FLW-MOCK-{hashlib.md5(self.tx_ref.encode()).hexdigest()}",
            "device_fingerprint": "N/A",
            "amount": _number(self.amount),
            "currency": self.currency,
            "charged_amount": _number(self.amount),
            "app_fee": 0,
            "merchant_fee": 0,
            "processor_response": self.processor_response,
            "auth_model": self.auth_model,
            "ip": "127.0.0.1",
            "narration": self.narration,
            "status": self.status,
            "payment_type": "card",
            "created_at": _CREATED_AT,
            "account_id": 20937,
            "card": card,
            "meta": self.meta or None,
            "customer": {
                "id": 2362222,
                "name": "Sim Customer",
                "phone_number": None,
                "email": self.email,
                "created_at": _CREATED_AT,
            },
        }


class FlutterwaveSimulator:
    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str | None = DEFAULT_WEBHOOK_SECRET,
        webhook_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        hang_seconds: float = 0.0,
        webhook_format: str = "envelope",
        signature_mode: str = "both",
        checkout_base: str = "https://checkout.flutterwave.com/v3/hosted/pay",
    ) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.hang_seconds = hang_seconds
        self.webhook_format = webhook_format
        self.signature_mode = signature_mode
        self.checkout_base = checkout_base
        self.sender = WebhookSender(sign=self._sign, url=webhook_url, transport=webhook_transport)
        self.payments: dict[str, _Payment] = {}
        self.transactions: dict[int, _Transaction] = {}
        self.refunds: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, str | None] = {TOKEN_SUCCESS: None}  # token -> bound email
        self.attempts: dict[str, int] = {}
        self.failures_to_inject = 0
        self._ids = itertools.count(8415006)
        self._refund_ids = itertools.count(75923)
        self.app: ASGIApp = Starlette(routes=self._routes())

    # ---- test helpers -----------------------------------------------------------------

    @property
    def sent_webhooks(self) -> list[SentWebhook]:
        return self.sender.sent

    async def drain(self) -> list[SentWebhook]:
        """Settle in-flight (timed-out) charges as successful, then send webhooks."""
        for tx in self.transactions.values():
            if tx.status == "pending":
                tx.status, tx.processor_response = "successful", "APPROVED"
                self._webhook(tx)
        return await self.sender.flush()

    def fail_next(self, count: int = 1) -> None:
        """The next ``count`` API calls answer 503 with the sample timeout body."""
        self.failures_to_inject = count

    def charges_for(self, reference: str) -> int:
        return sum(1 for t in self.transactions.values() if t.tx_ref == reference)

    def attempts_for(self, reference: str) -> int:
        return self.attempts.get(reference, 0)

    # ---- plumbing ---------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            Route("/v3/banks/{country}", self._banks, methods=["GET"]),
            Route("/v3/payments", self._create_payment, methods=["POST"]),
            Route(
                "/v3/transactions/verify_by_reference", self._verify_by_reference, methods=["GET"]
            ),
            Route("/v3/transactions/{id:int}/verify", self._verify_by_id, methods=["GET"]),
            Route("/v3/tokenized-charges", self._tokenized_charge, methods=["POST"]),
            Route("/v3/transactions/{id:int}/refund", self._refund, methods=["POST"]),
            Route("/v3/refunds/{id:int}", self._get_refund, methods=["GET"]),
            Route("/_sim/pay/{tx_ref}", self._sim_pay, methods=["POST"]),
            Route("/_sim/state", self._sim_state, methods=["GET"]),
        ]

    def _sign(self, body: bytes) -> dict[str, str]:
        if not self.webhook_secret:
            return {}
        headers: dict[str, str] = {}
        if self.signature_mode in ("both", "verif-hash"):
            headers["verif-hash"] = self.webhook_secret
        if self.signature_mode in ("both", "signature"):
            mac = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).digest()
            headers["flutterwave-signature"] = base64.b64encode(mac).decode()
        return headers

    def _guard(self, request: Request) -> Response | None:
        """Auth check and 503 injection shared by every API endpoint."""
        if bearer_token(request) != self.secret_key:
            return _error(401, "Invalid authorization key")
        if self.failures_to_inject > 0:
            self.failures_to_inject -= 1
            return JSONResponse(_TIMEOUT_BODY, status_code=503)
        return None

    @staticmethod
    async def _body(request: Request) -> dict[str, Any] | None:
        try:
            parsed = json.loads(await request.body() or b"{}", parse_float=Decimal)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def _webhook(self, tx: _Transaction) -> None:
        if self.webhook_format == "legacy":
            payload: dict[str, Any] = {
                "id": tx.id,
                "txRef": tx.tx_ref,
                "flwRef": f"FLW-MOCK-{hashlib.md5(tx.tx_ref.encode()).hexdigest()}",
                "orderRef": f"URF_{tx.id}",
                "createdAt": _CREATED_AT,
                "amount": _number(tx.amount),
                "charged_amount": _number(tx.amount),
                "status": tx.status,
                "IP": "127.0.0.1",
                "currency": tx.currency,
                "customer": {"id": 2362222, "fullName": "Sim Customer", "email": tx.email},
                "entity": {"card6": "553188", "card_last4": "2950"},
                "event.type": "CARD_TRANSACTION",
            }
        else:
            payload = {
                "event": "charge.completed",
                "data": tx.as_data(with_token=False),
                "event.type": "CARD_TRANSACTION",
            }
        self.sender.queue(payload)

    def _new_transaction(self, **fields: Any) -> _Transaction:
        tx = _Transaction(id=next(self._ids), **fields)
        self.transactions[tx.id] = tx
        return tx

    # ---- endpoints --------------------------------------------------------------------

    async def _banks(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        banks = [{"id": 1, "code": "044", "name": "Access Bank"}]
        return JSONResponse({"status": "success", "message": "Banks fetched", "data": banks})

    async def _create_payment(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await self._body(request)
        if body is None:
            return _error(400, "Invalid request body")
        tx_ref = body.get("tx_ref")
        amount = _major(body.get("amount"))
        raw_customer = body.get("customer")
        customer: dict[str, Any] = raw_customer if isinstance(raw_customer, dict) else {}
        if not isinstance(tx_ref, str) or not tx_ref:
            return _error(400, "tx_ref is required")
        self.attempts[tx_ref] = self.attempts.get(tx_ref, 0) + 1
        if amount is None:
            return _error(400, "amount is required and must be a number")
        if not customer.get("email"):
            return _error(400, "customer.email is required")
        if self.charges_for(tx_ref):
            return _error(400, "Duplicate transaction reference")
        existing = self.payments.get(tx_ref)
        if existing is None:
            link_id = hashlib.sha1(tx_ref.encode()).hexdigest()[:20]
            existing = _Payment(
                tx_ref=tx_ref,
                amount=amount,
                currency=str(body.get("currency") or "NGN").upper(),
                email=str(customer["email"]),
                redirect_url=str(body.get("redirect_url") or ""),
                link=f"{self.checkout_base}/{link_id}",
                meta=dict(body.get("meta") or {}),
                name=customer.get("name"),
                phone=customer.get("phonenumber"),
            )
            self.payments[tx_ref] = existing
        data = {"link": existing.link}
        return JSONResponse({"status": "success", "message": "Hosted Link", "data": data})

    def _found(self, tx: _Transaction | None) -> Response:
        if tx is None:
            return _error(400, "No transaction was found for this id")
        message = "Transaction fetched successfully"
        return JSONResponse({"status": "success", "message": message, "data": tx.as_data()})

    async def _verify_by_id(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        return self._found(self.transactions.get(request.path_params["id"]))

    async def _verify_by_reference(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        tx_ref = request.query_params.get("tx_ref", "")
        self.attempts[tx_ref] = self.attempts.get(tx_ref, 0) + 1
        matches = [t for t in self.transactions.values() if t.tx_ref == tx_ref]
        return self._found(matches[-1] if matches else None)

    async def _tokenized_charge(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await self._body(request)
        if body is None:
            return _error(400, "Invalid request body")
        missing = [k for k in ("token", "email", "currency", "country", "amount", "tx_ref")
                   if not body.get(k)]  # fmt: skip
        if missing:
            return _error(400, f"{missing[0]} is required")
        token, email, tx_ref = str(body["token"]), str(body["email"]), str(body["tx_ref"])
        self.attempts[tx_ref] = self.attempts.get(tx_ref, 0) + 1
        amount = _major(body["amount"])
        if amount is None:
            return _error(400, "amount must be a positive number")
        if self.charges_for(tx_ref):
            return _error(400, "Duplicate transaction reference")
        if token == TOKEN_UNAVAILABLE:
            return JSONResponse(_TIMEOUT_BODY, status_code=503)
        simulated = (TOKEN_DECLINE, TOKEN_TIMEOUT, TOKEN_TIMEOUT_CHARGED)
        if token not in self.tokens and token not in simulated:
            return _error(400, "Token not found")
        bound = self.tokens.get(token)
        if bound is not None and bound.lower() != email.lower():
            return _error(400, "Token was not created with this email")
        ok = token != TOKEN_DECLINE
        tx = self._new_transaction(
            tx_ref=tx_ref,
            amount=amount,
            currency=str(body["currency"]).upper(),
            status="pending" if token == TOKEN_TIMEOUT else "successful" if ok else "failed",
            email=email,
            processor_response="APPROVED" if ok else "Insufficient Funds",
            token=token,
            auth_model="noauth",
            narration=str(body.get("narration") or ""),
        )
        if token in (TOKEN_TIMEOUT, TOKEN_TIMEOUT_CHARGED):
            await asyncio.sleep(self.hang_seconds)  # Flutterwave waits ~28 s, then 503
            if token == TOKEN_TIMEOUT_CHARGED:
                self._webhook(tx)
            return JSONResponse(_TIMEOUT_BODY, status_code=503)
        self._webhook(tx)
        message = "Charge successful" if ok else "Charge failed"
        return JSONResponse({"status": "success", "message": message, "data": tx.as_data()})

    async def _refund(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await self._body(request)
        if body is None:
            return _error(400, "Invalid request body")
        tx = self.transactions.get(request.path_params["id"])
        if tx is None:
            return _error(400, "No transaction was found for this id")
        if tx.status != "successful":
            return _error(400, "Only successful transactions can be refunded")
        remaining = tx.amount - tx.refunded
        amount = _major(body["amount"]) if body.get("amount") is not None else remaining
        if amount is None or amount > remaining:
            return _error(400, "Refund amount cannot exceed the amount left to refund")
        tx.refunded += amount
        refund_id = next(self._refund_ids)
        refund = {
            "id": refund_id,
            "account_id": 20937,
            "tx_id": tx.id,
            "flw_ref": f"URF_{tx.id}_{len(self.refunds) + 1}",
            "wallet_id": 74639,
            "amount_refunded": _number(amount),
            "status": "completed",
            "destination": "payment_source",
            "meta": {"source": "availablebalance"},
            "comments": body.get("comments"),
            "created_at": "2025-01-02T09:18:37.366Z",
        }
        self.refunds[refund_id] = refund
        message = "Transaction refund initiated"
        return JSONResponse({"status": "success", "message": message, "data": refund})

    async def _get_refund(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        refund = self.refunds.get(request.path_params["id"])
        if refund is None:
            return _error(404, "Refund not found")
        return JSONResponse({"status": "success", "message": "Refund fetched", "data": refund})

    async def _sim_pay(self, request: Request) -> Response:
        tx_ref = request.path_params["tx_ref"]
        outcome = request.query_params.get("outcome", "success")
        payment = self.payments.get(tx_ref)
        if payment is None:
            return _error(404, "No hosted payment for this tx_ref")
        if self.charges_for(tx_ref):
            return _error(400, "Payment already completed")
        if outcome not in ("success", "failed", "cancelled"):
            return _error(400, "outcome must be success, failed or cancelled")
        query: dict[str, Any] = {"status": "cancelled", "tx_ref": tx_ref}
        if outcome != "cancelled":
            ok = outcome == "success"
            token = f"flw-t1nf-{hashlib.md5(tx_ref.encode()).hexdigest()}-m03k" if ok else None
            tx = self._new_transaction(
                tx_ref=tx_ref,
                amount=payment.amount,
                currency=payment.currency,
                status="successful" if ok else "failed",
                email=payment.email,
                processor_response="Approved. Successful" if ok else "Insufficient Funds",
                token=token,
                meta=payment.meta,
            )
            if token:
                self.tokens[token] = payment.email
            self._webhook(tx)
            query = {"status": tx.status, "tx_ref": tx_ref, "transaction_id": tx.id}
        redirect = f"{payment.redirect_url}?{urlencode(query)}" if payment.redirect_url else None
        return JSONResponse({"status": "ok", "redirect": redirect, **query})

    async def _sim_state(self, request: Request) -> Response:
        state = {
            "payments": sorted(self.payments),
            "transactions": [t.as_data() for t in self.transactions.values()],
            "refunds": list(self.refunds.values()),
            "pending_webhooks": len(self.sender.pending),
        }
        return JSONResponse(state)


def create_app() -> ASGIApp:
    settings = settings_from_env(
        default_secret_key=DEFAULT_SECRET_KEY, default_webhook_secret=DEFAULT_WEBHOOK_SECRET
    )
    simulator = FlutterwaveSimulator(
        secret_key=settings.secret_key,
        webhook_secret=settings.webhook_secret,
        webhook_url=settings.webhook_url,
    )
    return simulator.app


__all__ = [
    "DEFAULT_SECRET_KEY",
    "DEFAULT_WEBHOOK_SECRET",
    "TOKEN_DECLINE",
    "TOKEN_SUCCESS",
    "TOKEN_TIMEOUT",
    "TOKEN_TIMEOUT_CHARGED",
    "TOKEN_UNAVAILABLE",
    "FlutterwaveSimulator",
    "create_app",
]
