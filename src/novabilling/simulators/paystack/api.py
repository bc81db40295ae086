"""The Paystack simulator's HTTP API: Bearer auth (401 ``Invalid key``), JSON or form
bodies, Paystack's ``{"status": bool, "message", "data"}`` envelope and validation errors,
the hosted checkout page and the sim-only ``/_sim`` paths."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from novabilling.simulators.checkout import hosted_page
from novabilling.simulators.http import (
    SimulatorApi,
    bearer_token,
    json_error,
    json_object,
    json_ok,
    public,
)
from novabilling.simulators.paystack.state import AUTH_TIMEOUT

if TYPE_CHECKING:
    from novabilling.simulators.paystack import PaystackSimulator

_ALLOWED_REFERENCE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.=")
_DUPLICATE = (
    '{"status": false, "message": "Duplicate Transaction Reference", "meta": '
    '{"nextStep": "Try and create the Transaction or Charge with a new reference"}, '
    '"type": "validation_error", "code": "duplicate_reference", '
    '"errorCodeMappingNotFound": false}'
)


async def _body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/x-www-form"):
        return dict(parse_qsl((await request.body()).decode()))
    return await json_object(request) or {}


def _validation(message: str, code: str = "invalid_params") -> JSONResponse:
    body = {"status": False, "message": message, "type": "validation_error", "code": code}
    return json_error(400, body)


def _ok(message: str, data: Any, **extra: Any) -> JSONResponse:
    return json_ok({"status": True, "message": message, "data": data, **extra})


def _missing(message: str, status: int = 404) -> JSONResponse:
    return json_error(status, {"status": False, "message": message})


class PaystackApi(SimulatorApi["PaystackSimulator"]):
    sim: PaystackSimulator

    def routes(self) -> list[Route]:
        api = self.api
        return [
            Route("/transaction/initialize", api(self._initialize), methods=["POST"]),
            Route("/transaction/verify/{reference}", api(self._verify), methods=["GET"]),
            Route("/transaction/charge_authorization", api(self._charge), methods=["POST"]),
            Route("/transaction/{id:int}", api(self._fetch), methods=["GET"]),
            Route("/refund", api(self._create_refund), methods=["POST"]),
            Route("/refund", api(self._list_refunds), methods=["GET"]),
            Route("/refund/{id:int}", api(self._fetch_refund), methods=["GET"]),
            Route("/bank", api(self._banks), methods=["GET"]),
            Route("/checkout/{access_code}", self._hosted_page, methods=["GET"]),
            Route("/_sim/pay/{reference}", self._sim_pay, methods=["POST"]),
            Route("/_sim/state", self._sim_state, methods=["GET"]),
        ]

    def deny(self, request: Request) -> Response | None:
        if bearer_token(request) != self.sim.secret_key:
            return json_error(401, {"status": False, "message": "Invalid key"})
        return None

    def _check_new(self, body: dict[str, Any]) -> tuple[str, int, str] | JSONResponse:
        """Reference (counted as an attempt), amount and currency of a new transaction."""
        reference = str(body.get("reference") or "T" + secrets.token_hex(7))
        if not set(reference) <= _ALLOWED_REFERENCE:
            return _validation("Invalid reference: only -, ., = and alphanumerics allowed")
        self.sim.attempts[reference] += 1
        try:
            amount = int(str(body.get("amount")))
        except ValueError:
            return _validation("Invalid Amount Sent")
        if amount <= 0:
            return _validation("Invalid Amount Sent")
        if reference in self.sim.transactions:
            return json_error(400, json.loads(_DUPLICATE))
        return reference, amount, str(body.get("currency") or "NGN").upper()

    # -- endpoints ------------------------------------------------------------------------

    async def _initialize(self, request: Request) -> Response:
        body = await _body(request)
        if not body.get("email"):
            return _validation("Email is required")
        checked = self._check_new(body)
        if isinstance(checked, JSONResponse):
            return checked
        reference, amount, currency = checked
        tx = self.sim.new_tx(reference, amount, currency, str(body["email"]))
        tx["metadata"] = body.get("metadata") or ""
        tx["_callback_url"] = body.get("callback_url")
        access_code = secrets.token_hex(8)
        tx["_access_code"] = access_code
        url = f"{str(request.base_url).rstrip('/')}/checkout/{access_code}"
        data = {"authorization_url": url, "access_code": access_code, "reference": reference}
        return _ok("Authorization URL created", data)

    async def _verify(self, request: Request) -> Response:
        tx = self.sim.transactions.get(request.path_params["reference"])
        if tx is None:
            return _missing("Transaction reference not found", status=400)
        return _ok("Verification successful", public(tx))

    async def _fetch(self, request: Request) -> Response:
        tx = self.sim.by_id(request.path_params["id"])
        if tx is None:
            return _missing("Transaction not found")
        return _ok("Transaction retrieved", public(tx))

    async def _charge(self, request: Request) -> Response:
        body = await _body(request)
        code = str(body.get("authorization_code") or "")
        email = str(body.get("email") or "")
        if code not in self.sim.authorizations:
            return _validation("Invalid authorization code", "invalid_authorization")
        bound_email, auth = self.sim.authorizations[code]
        if email.lower() != bound_email.lower():
            return _validation("Authorization code does not belong to this email")
        if not auth["reusable"]:
            return _validation("Authorization is not reusable")
        checked = self._check_new(body)
        if isinstance(checked, JSONResponse):
            return checked
        tx = self.sim.new_tx(*checked, email)
        self.sim.charge_authorization(tx, code)
        if code == AUTH_TIMEOUT:
            await asyncio.sleep(self.sim.hang_seconds)
            return json_error(504, {"status": False, "message": "Gateway Timeout"})
        return _ok("Charge attempted", public(tx))

    async def _create_refund(self, request: Request) -> Response:
        body = await _body(request)
        tx = self.sim.find(str(body.get("transaction") or ""))
        if tx is None:
            return _missing("Transaction not found")
        if tx["status"] not in ("success", "reversed"):
            return _validation("Cannot refund a transaction that was not successful")
        remaining = tx["amount"] - self.sim.refunded(tx)
        amount = int(str(body.get("amount") or remaining))
        if amount <= 0 or amount > remaining:
            return _validation("Refund amount cannot be more than transaction amount")
        refund = self.sim.new_refund(
            tx,
            amount,
            merchant_note=body.get("merchant_note"),
            customer_note=body.get("customer_note"),
        )
        return _ok("Refund has been queued for processing", refund)

    async def _fetch_refund(self, request: Request) -> Response:
        refund = self.sim.refunds.get(request.path_params["id"])
        if refund is None:
            return _missing("Refund not found")
        return _ok("Refund retrieved", refund)

    async def _list_refunds(self, request: Request) -> Response:
        wanted = request.query_params.get("transaction")
        data = [
            r
            for r in self.sim.refunds.values()
            if wanted in (None, r["transaction"]["reference"], str(r["transaction"]["id"]))
        ]
        meta = {"total": len(data), "skipped": 0, "perPage": 50, "page": 1, "pageCount": 1}
        return _ok("Refunds retrieved", data, meta=meta)

    async def _banks(self, request: Request) -> Response:
        bank = {"id": 1, "name": "Test Bank", "code": "011", "country": "Nigeria"}
        return _ok("Banks retrieved", [bank])

    async def _hosted_page(self, request: Request) -> Response:
        tx = self.sim.by_access_code(request.path_params["access_code"])
        if tx is None:
            return HTMLResponse("<h1>Invalid access code</h1>", status_code=404)
        return hosted_page(
            provider="Paystack",
            reference=tx["reference"],
            amount=f"{tx['amount']} (smallest unit)",
            currency=tx["currency"],
        )

    async def _sim_pay(self, request: Request) -> Response:
        reference = request.path_params["reference"]
        if reference not in self.sim.transactions:
            return json_error(404, {"status": "error", "message": "unknown reference"})
        success = request.query_params.get("outcome", "success") == "success"
        tx = await self.sim.complete(reference, success=success)
        return json_ok({"status": "ok", "reference": reference, "transaction_status": tx["status"]})

    async def _sim_state(self, request: Request) -> Response:
        txs = [public(t) for t in self.sim.transactions.values()]
        return json_ok({"transactions": txs, "refunds": list(self.sim.refunds.values())})
