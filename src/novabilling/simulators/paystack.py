"""Paystack simulator (reference: the shared provider reference, paystack.md §9).

Endpoints: ``POST /transaction/initialize``, ``GET /transaction/verify/{reference}``,
``GET /transaction/{id}``, ``POST /transaction/charge_authorization``, ``POST /refund``,
``GET /refund/{id}``, ``GET /refund``, ``GET /bank`` (credentials check), hosted page
``GET /checkout/{access_code}``. Sim-only: ``POST /_sim/pay/{reference}?outcome=success|failed``,
``GET /_sim/state``.

Quirks kept: HTTP 200 with ``data.status: "failed"`` for declined charges; no webhook for
failed payments; duplicate ``reference`` -> 400 ``duplicate_reference``; bad key -> 401
``Invalid key``; ``amount`` accepted as int or string; refunds are async (``pending`` until
``drain()``, then ``processed`` + ``refund.processed`` webhook); webhooks signed with
``x-paystack-signature`` = hex HMAC-SHA512(secret key, raw body).

Seeded reusable authorizations (bound to ``TEST_EMAIL``): ``AUTH_SUCCESS`` charges succeed,
``AUTH_DECLINE`` answers ``failed`` / "Insufficient Funds", ``AUTH_TIMEOUT`` records the
charge, stalls ``hang_seconds`` and answers 504 (the answer is lost, the money moved).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import secrets
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
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

DEFAULT_SECRET_KEY = "sk_test_6b0f3c2e8a9d4f1b7c5e2a0d9f8b7c6a5e4d3c2b"  # samples/signatures.json
TEST_EMAIL = "amina@example.com"
AUTH_SUCCESS = "AUTH_simsuccess1"
AUTH_DECLINE = "AUTH_simdecline1"
AUTH_TIMEOUT = "AUTH_simtimeout1"
SIGNATURE_HEADER = "x-paystack-signature"

_ALLOWED_REFERENCE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.=")


def sign(secret_key: str, body: bytes) -> str:
    return hmac.new(secret_key.encode(), body, hashlib.sha512).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _authorization(code: str, *, reusable: bool = True, last4: str = "4081") -> dict[str, Any]:
    return {
        "authorization_code": code,
        "bin": "408408",
        "last4": last4,
        "exp_month": "12",
        "exp_year": "2030",
        "channel": "card",
        "card_type": "visa ",
        "bank": "TEST BANK",
        "country_code": "NG",
        "brand": "visa",
        "reusable": reusable,
        "signature": "SIG_" + code[5:],
        "account_name": None,
    }


class PaystackSimulator:
    def __init__(
        self,
        *,
        secret_key: str = DEFAULT_SECRET_KEY,
        webhook_secret: str | None = None,  # Paystack signs with the secret key
        webhook_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        hang_seconds: float = 0.3,
    ) -> None:
        self.secret_key = secret_key
        self.hang_seconds = hang_seconds
        self.transactions: dict[str, dict[str, Any]] = {}  # by reference
        self.refunds: dict[int, dict[str, Any]] = {}
        self.authorizations: dict[str, tuple[str, dict[str, Any]]] = {
            code: (TEST_EMAIL, _authorization(code)) for code in (AUTH_SUCCESS, AUTH_DECLINE)
        }
        self.authorizations[AUTH_TIMEOUT] = (TEST_EMAIL, _authorization(AUTH_TIMEOUT))
        self.attempts: Counter[str] = Counter()
        self._ids = itertools.count(4099260516)
        self._refund_ids = itertools.count(3018284)
        self.sender = WebhookSender(
            sign=lambda body: {SIGNATURE_HEADER: sign(self.secret_key, body)},
            url=webhook_url,
            transport=webhook_transport,
        )
        self.app: ASGIApp = Starlette(
            routes=[
                Route("/transaction/initialize", self._initialize, methods=["POST"]),
                Route("/transaction/verify/{reference}", self._verify, methods=["GET"]),
                Route("/transaction/charge_authorization", self._charge, methods=["POST"]),
                Route("/transaction/{id:int}", self._fetch, methods=["GET"]),
                Route("/refund", self._create_refund, methods=["POST"]),
                Route("/refund", self._list_refunds, methods=["GET"]),
                Route("/refund/{id:int}", self._fetch_refund, methods=["GET"]),
                Route("/bank", self._banks, methods=["GET"]),
                Route("/checkout/{access_code}", self._hosted_page, methods=["GET"]),
                Route("/_sim/pay/{reference}", self._sim_pay, methods=["POST"]),
                Route("/_sim/state", self._sim_state, methods=["GET"]),
            ]
        )

    # -- test helpers -------------------------------------------------------------------

    @property
    def sent_webhooks(self) -> list[SentWebhook]:
        return self.sender.sent

    def charges_for(self, reference: str) -> int:
        return 1 if reference in self.transactions else 0  # a reference is unique

    def attempts_for(self, reference: str) -> int:
        return self.attempts[reference]

    async def drain(self) -> None:
        """Process pending refunds now, then deliver every queued webhook."""
        for refund in self.refunds.values():
            if refund["status"] in ("pending", "processing"):
                refund["status"] = "processed"
                refund["refund_reference"] = str(refund["id"] * 7 + 132013318360)
                refund["updatedAt"] = _now()
                tx = self.transactions[refund["transaction"]["reference"]]
                if self._refunded(tx) >= tx["amount"]:
                    tx["status"] = "reversed"
                self.sender.queue(self._refund_event("refund.processed", refund))
        await self.sender.flush()

    async def complete(self, reference: str, *, success: bool = True) -> dict[str, Any]:
        """What the customer does on the hosted page (also ``POST /_sim/pay/{ref}``)."""
        tx = self.transactions[reference]
        if success:
            code = "AUTH_" + secrets.token_hex(5)
            auth = _authorization(code)
            self.authorizations[code] = (tx["customer"]["email"], auth)
            tx.update(status="success", gateway_response="Successful", authorization=auth)
            tx["paid_at"] = tx["paidAt"] = _now()
            self.sender.queue({"event": "charge.success", "data": self._public(tx)})
        else:
            tx.update(status="failed", gateway_response="Declined")
        return tx

    # -- helpers --------------------------------------------------------------------------

    def _auth_error(self, request: Request) -> Response | None:
        if bearer_token(request) != self.secret_key:
            return json_error(401, {"status": False, "message": "Invalid key"})
        return None

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/x-www-form"):
            return dict(parse_qsl(raw.decode()))
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _public(tx: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in tx.items() if not k.startswith("_")}

    def _refunded(self, tx: dict[str, Any]) -> int:
        return sum(
            r["amount"]
            for r in self.refunds.values()
            if r["transaction"]["reference"] == tx["reference"] and r["status"] != "failed"
        )

    @staticmethod
    def _validation(message: str, code: str = "invalid_params") -> JSONResponse:
        body = {"status": False, "message": message, "type": "validation_error", "code": code}
        return json_error(400, body)

    def _check_new(self, body: dict[str, Any]) -> tuple[str, int, str] | JSONResponse:
        reference = str(body.get("reference") or "T" + secrets.token_hex(7))
        if not set(reference) <= _ALLOWED_REFERENCE:
            return self._validation("Invalid reference: only -, ., = and alphanumerics allowed")
        self.attempts[reference] += 1
        try:
            amount = int(str(body.get("amount")))
        except ValueError:
            return self._validation("Invalid Amount Sent")
        if amount <= 0:
            return self._validation("Invalid Amount Sent")
        if reference in self.transactions:
            dup = json.loads(
                '{"status": false, "message": "Duplicate Transaction Reference", "meta": '
                '{"nextStep": "Try and create the Transaction or Charge with a new reference"}, '
                '"type": "validation_error", "code": "duplicate_reference", '
                '"errorCodeMappingNotFound": false}'
            )
            return json_error(400, dup)
        return reference, amount, str(body.get("currency") or "NGN").upper()

    def _new_tx(self, reference: str, amount: int, currency: str, email: str) -> dict[str, Any]:
        tx: dict[str, Any] = {
            "id": next(self._ids),
            "domain": "test",
            "status": "abandoned",
            "reference": reference,
            "amount": amount,
            "requested_amount": amount,
            "currency": currency,
            "gateway_response": "The transaction was not completed",
            "paid_at": None,
            "paidAt": None,
            "created_at": _now(),
            "channel": "card",
            "fees": None,
            "metadata": "",
            "authorization": {},
            "customer": {"id": 181873746, "email": email, "customer_code": "CUS_sim"},
        }
        self.transactions[reference] = tx
        return tx

    # -- endpoints ------------------------------------------------------------------------

    async def _initialize(self, request: Request) -> Response:
        if denied := self._auth_error(request):
            return denied
        body = await self._body(request)
        if not body.get("email"):
            return self._validation("Email is required")
        checked = self._check_new(body)
        if isinstance(checked, JSONResponse):
            return checked
        reference, amount, currency = checked
        tx = self._new_tx(reference, amount, currency, str(body["email"]))
        tx["metadata"] = body.get("metadata") or ""
        tx["_callback_url"] = body.get("callback_url")
        access_code = secrets.token_hex(8)
        tx["_access_code"] = access_code
        url = f"{str(request.base_url).rstrip('/')}/checkout/{access_code}"
        data = {"authorization_url": url, "access_code": access_code, "reference": reference}
        return json_ok({"status": True, "message": "Authorization URL created", "data": data})

    async def _verify(self, request: Request) -> Response:
        if denied := self._auth_error(request):
            return denied
        tx = self.transactions.get(request.path_params["reference"])
        if tx is None:
            return json_error(400, {"status": False, "message": "Transaction reference not found"})
        data = self._public(tx)
        return json_ok({"status": True, "message": "Verification successful", "data": data})

    async def _fetch(self, request: Request) -> Response:
        if denied := self._auth_error(request):
            return denied
        for tx in self.transactions.values():
            if tx["id"] == request.path_params["id"]:
                data = self._public(tx)
                return json_ok({"status": True, "message": "Transaction retrieved", "data": data})
        return json_error(404, {"status": False, "message": "Transaction not found"})

    async def _charge(self, request: Request) -> Response:
        if denied := self._auth_error(request):
            return denied
        body = await self._body(request)
        code = str(body.get("authorization_code") or "")
        email = str(body.get("email") or "")
        if code not in self.authorizations:
            return self._validation("Invalid authorization code", "invalid_authorization")
        bound_email, auth = self.authorizations[code]
        if email.lower() != bound_email.lower():
            return self._validation("Authorization code does not belong to this email")
        if not auth["reusable"]:
            return self._validation("Authorization is not reusable")
        checked = self._check_new(body)
        if isinstance(checked, JSONResponse):
            return checked
        reference, amount, currency = checked
        tx = self._new_tx(reference, amount, currency, email)
        tx["authorization"] = auth
        if code == AUTH_TIMEOUT:
            tx.update(status="success", gateway_response="Approved")
            tx["paid_at"] = tx["paidAt"] = _now()
            await asyncio.sleep(self.hang_seconds)
            return json_error(504, {"status": False, "message": "Gateway Timeout"})
        if code == AUTH_DECLINE:
            tx.update(status="failed", gateway_response="Insufficient Funds")
        else:
            tx.update(status="success", gateway_response="Approved")
            tx["paid_at"] = tx["paidAt"] = _now()
            self.sender.queue({"event": "charge.success", "data": self._public(tx)})
        return json_ok({"status": True, "message": "Charge attempted", "data": self._public(tx)})

    async def _create_refund(self, request: Request) -> Response:
        if denied := self._auth_error(request):
            return denied
        body = await self._body(request)
        key = str(body.get("transaction") or "")
        tx = self.transactions.get(key) or next(
            (t for t in self.transactions.values() if str(t["id"]) == key), None
        )
        if tx is None:
            return json_error(404, {"status": False, "message": "Transaction not found"})
        if tx["status"] not in ("success", "reversed"):
            return self._validation("Cannot refund a transaction that was not successful")
        remaining = tx["amount"] - self._refunded(tx)
        amount = int(str(body.get("amount") or remaining))
        if amount <= 0 or amount > remaining:
            return self._validation("Refund amount cannot be more than transaction amount")
        refund: dict[str, Any] = {
            "id": next(self._refund_ids),
            "transaction": {"id": tx["id"], "reference": tx["reference"], "amount": tx["amount"]},
            "integration": 412829,
            "domain": "test",
            "status": "pending",
            "amount": amount,
            "currency": tx["currency"],
            "deducted_amount": 0,
            "merchant_note": body.get("merchant_note"),
            "customer_note": body.get("customer_note"),
            "refund_reference": None,
            "createdAt": _now(),
            "updatedAt": _now(),
        }
        self.refunds[refund["id"]] = refund
        self.sender.queue(self._refund_event("refund.pending", refund))
        message = "Refund has been queued for processing"
        return json_ok({"status": True, "message": message, "data": refund})

    async def _fetch_refund(self, request: Request) -> Response:
        if denied := self._auth_error(request):
            return denied
        refund = self.refunds.get(request.path_params["id"])
        if refund is None:
            return json_error(404, {"status": False, "message": "Refund not found"})
        return json_ok({"status": True, "message": "Refund retrieved", "data": refund})

    async def _list_refunds(self, request: Request) -> Response:
        if denied := self._auth_error(request):
            return denied
        wanted = request.query_params.get("transaction")
        data = [
            r
            for r in self.refunds.values()
            if wanted in (None, r["transaction"]["reference"], str(r["transaction"]["id"]))
        ]
        meta = {"total": len(data), "skipped": 0, "perPage": 50, "page": 1, "pageCount": 1}
        return json_ok({"status": True, "message": "Refunds retrieved", "data": data, "meta": meta})

    async def _banks(self, request: Request) -> Response:
        if denied := self._auth_error(request):
            return denied
        bank = {"id": 1, "name": "Test Bank", "code": "011", "country": "Nigeria"}
        return json_ok({"status": True, "message": "Banks retrieved", "data": [bank]})

    async def _hosted_page(self, request: Request) -> Response:
        code = request.path_params["access_code"]
        tx = next((t for t in self.transactions.values() if t.get("_access_code") == code), None)
        if tx is None:
            return HTMLResponse("<h1>Invalid access code</h1>", status_code=404)
        ref = tx["reference"]
        forms = "".join(
            f'<form method="post" action="/_sim/pay/{ref}?outcome={o}"><button>{o}</button></form>'
            for o in ("success", "failed")
        )
        return HTMLResponse(f"<h1>Pay {tx['amount']} {tx['currency']} ({ref})</h1>{forms}")

    async def _sim_pay(self, request: Request) -> Response:
        reference = request.path_params["reference"]
        if reference not in self.transactions:
            return json_error(404, {"status": "error", "message": "unknown reference"})
        success = request.query_params.get("outcome", "success") == "success"
        tx = await self.complete(reference, success=success)
        return json_ok({"status": "ok", "reference": reference, "transaction_status": tx["status"]})

    async def _sim_state(self, request: Request) -> Response:
        txs = [self._public(t) for t in self.transactions.values()]
        return json_ok({"transactions": txs, "refunds": list(self.refunds.values())})

    @staticmethod
    def _refund_event(event: str, refund: dict[str, Any]) -> dict[str, Any]:
        data = {
            "status": refund["status"],
            "transaction_reference": refund["transaction"]["reference"],
            "refund_reference": refund["refund_reference"],
            "amount": str(refund["amount"]),  # a string in Paystack's refund events
            "currency": refund["currency"],
            "processor": "mpgs_zen",
            "customer": {"first_name": "Amina", "last_name": "Okafor", "email": TEST_EMAIL},
            "integration": refund["integration"],
            "domain": "test",
        }
        return {"event": event, "data": data}


def create_app() -> ASGIApp:
    settings = settings_from_env(default_secret_key=DEFAULT_SECRET_KEY)
    sim = PaystackSimulator(secret_key=settings.secret_key, webhook_url=settings.webhook_url)
    return sim.app
