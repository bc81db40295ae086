"""The Flutterwave v3 simulator's HTTP API: Bearer auth (401 in Flutterwave's
``{"status": "error", "message", "data": null}`` shape), injected 503s (``fail_next``),
JSON bodies with exact decimal amounts, and the sim-only ``/_sim`` paths."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from novabilling.simulators.checkout import hosted_page
from novabilling.simulators.flutterwave.records import Transaction
from novabilling.simulators.flutterwave.state import (
    SIMULATED_TOKENS,
    TOKEN_TIMEOUT,
    TOKEN_TIMEOUT_CHARGED,
    TOKEN_UNAVAILABLE,
)
from novabilling.simulators.http import (
    SimulatorApi,
    bearer_token,
    exact_json_object,
)

if TYPE_CHECKING:
    from novabilling.simulators.flutterwave import FlutterwaveSimulator

_TIMEOUT_BODY = {
    "status": "error",
    "message": "An error occurred. Please contact support",
    "data": None,
}


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


def _success(message: str, data: Any) -> JSONResponse:
    return JSONResponse({"status": "success", "message": message, "data": data})


def _unavailable() -> JSONResponse:
    return JSONResponse(_TIMEOUT_BODY, status_code=503)


class FlutterwaveApi(SimulatorApi["FlutterwaveSimulator"]):
    sim: FlutterwaveSimulator

    def routes(self) -> list[Route]:
        api = self.api
        return [
            Route("/v3/banks/{country}", api(self._banks), methods=["GET"]),
            Route("/v3/payments", api(self._create_payment), methods=["POST"]),
            Route(
                "/v3/transactions/verify_by_reference",
                api(self._verify_by_reference),
                methods=["GET"],
            ),
            Route("/v3/transactions/{id:int}/verify", api(self._verify_by_id), methods=["GET"]),
            Route("/v3/tokenized-charges", api(self._tokenized_charge), methods=["POST"]),
            Route("/v3/transactions/{id:int}/refund", api(self._refund), methods=["POST"]),
            Route("/v3/refunds/{id:int}", api(self._get_refund), methods=["GET"]),
            Route("/v3/hosted/pay/{link_id}", self._hosted_page, methods=["GET"]),
            Route("/_sim/pay/{tx_ref}", self._sim_pay, methods=["POST"]),
            Route("/_sim/state", self._sim_state, methods=["GET"]),
        ]

    def deny(self, request: Request) -> Response | None:
        """Auth check and 503 injection shared by every API endpoint."""
        if bearer_token(request) != self.sim.secret_key:
            return _error(401, "Invalid authorization key")
        if self.sim.failures_to_inject > 0:
            self.sim.failures_to_inject -= 1
            return _unavailable()
        return None

    def _found(self, tx: Transaction | None) -> Response:
        if tx is None:
            return _error(400, "No transaction was found for this id")
        return _success("Transaction fetched successfully", tx.as_data())

    # ---- endpoints --------------------------------------------------------------------

    async def _banks(self, request: Request) -> Response:
        banks = [{"id": 1, "code": "044", "name": "Access Bank"}]
        return _success("Banks fetched", banks)

    async def _create_payment(self, request: Request) -> Response:
        body = await exact_json_object(request)
        if body is None:
            return _error(400, "Invalid request body")
        tx_ref = body.get("tx_ref")
        amount = _major(body.get("amount"))
        raw_customer = body.get("customer")
        customer: dict[str, Any] = raw_customer if isinstance(raw_customer, dict) else {}
        if not isinstance(tx_ref, str) or not tx_ref:
            return _error(400, "tx_ref is required")
        self.sim.attempts[tx_ref] += 1
        if amount is None:
            return _error(400, "amount is required and must be a number")
        if not customer.get("email"):
            return _error(400, "customer.email is required")
        if self.sim.charges_for(tx_ref):
            return _error(400, "Duplicate transaction reference")
        payment = self.sim.payments.get(tx_ref) or self.sim.new_payment(
            tx_ref,
            amount=amount,
            currency=str(body.get("currency") or "NGN").upper(),
            email=str(customer["email"]),
            redirect_url=str(body.get("redirect_url") or ""),
            meta=dict(body.get("meta") or {}),
            name=customer.get("name"),
            phone=customer.get("phonenumber"),
        )
        return _success("Hosted Link", {"link": payment.link})

    async def _verify_by_id(self, request: Request) -> Response:
        return self._found(self.sim.transactions.get(request.path_params["id"]))

    async def _verify_by_reference(self, request: Request) -> Response:
        tx_ref = request.query_params.get("tx_ref", "")
        self.sim.attempts[tx_ref] += 1
        matches = [t for t in self.sim.transactions.values() if t.tx_ref == tx_ref]
        return self._found(matches[-1] if matches else None)

    async def _tokenized_charge(self, request: Request) -> Response:
        body = await exact_json_object(request)
        if body is None:
            return _error(400, "Invalid request body")
        missing = [k for k in ("token", "email", "currency", "country", "amount", "tx_ref")
                   if not body.get(k)]  # fmt: skip
        if missing:
            return _error(400, f"{missing[0]} is required")
        token, email, tx_ref = str(body["token"]), str(body["email"]), str(body["tx_ref"])
        self.sim.attempts[tx_ref] += 1
        amount = _major(body["amount"])
        if amount is None:
            return _error(400, "amount must be a positive number")
        if self.sim.charges_for(tx_ref):
            return _error(400, "Duplicate transaction reference")
        if token == TOKEN_UNAVAILABLE:
            return _unavailable()
        if token not in self.sim.tokens and token not in SIMULATED_TOKENS:
            return _error(400, "Token not found")
        bound = self.sim.tokens.get(token)
        if bound is not None and bound.lower() != email.lower():
            return _error(400, "Token was not created with this email")
        tx = self.sim.charge_token(
            token,
            tx_ref=tx_ref,
            amount=amount,
            currency=str(body["currency"]).upper(),
            email=email,
            narration=str(body.get("narration") or ""),
        )
        if token in (TOKEN_TIMEOUT, TOKEN_TIMEOUT_CHARGED):
            await asyncio.sleep(self.sim.hang_seconds)  # Flutterwave waits ~28 s, then 503
            if token == TOKEN_TIMEOUT_CHARGED:
                self.sim.notify(tx)
            return _unavailable()
        self.sim.notify(tx)
        ok = tx.status == "successful"
        return _success("Charge successful" if ok else "Charge failed", tx.as_data())

    async def _refund(self, request: Request) -> Response:
        body = await exact_json_object(request)
        if body is None:
            return _error(400, "Invalid request body")
        tx = self.sim.transactions.get(request.path_params["id"])
        if tx is None:
            return _error(400, "No transaction was found for this id")
        if tx.status != "successful":
            return _error(400, "Only successful transactions can be refunded")
        remaining = tx.amount - tx.refunded
        amount = _major(body["amount"]) if body.get("amount") is not None else remaining
        if amount is None or amount > remaining:
            return _error(400, "Refund amount cannot exceed the amount left to refund")
        refund = self.sim.refund(tx, amount, comments=body.get("comments"))
        return _success("Transaction refund initiated", refund)

    async def _get_refund(self, request: Request) -> Response:
        refund = self.sim.refunds.get(request.path_params["id"])
        if refund is None:
            return _error(404, "Refund not found")
        return _success("Refund fetched", refund)

    async def _hosted_page(self, request: Request) -> Response:
        """Flutterwave Standard's hosted page for a link, served locally (``checkout_base``)."""
        suffix = "/" + request.path_params["link_id"]
        payment = next((p for p in self.sim.payments.values() if p.link.endswith(suffix)), None)
        if payment is None or self.sim.charges_for(payment.tx_ref):
            return HTMLResponse("<h1>This payment link is not open</h1>", status_code=404)
        return hosted_page(
            provider="Flutterwave",
            reference=payment.tx_ref,
            amount=str(payment.amount),
            currency=payment.currency,
        )

    async def _sim_pay(self, request: Request) -> Response:
        tx_ref = request.path_params["tx_ref"]
        outcome = request.query_params.get("outcome", "success")
        payment = self.sim.payments.get(tx_ref)
        if payment is None:
            return _error(404, "No hosted payment for this tx_ref")
        if self.sim.charges_for(tx_ref):
            return _error(400, "Payment already completed")
        if outcome not in ("success", "failed", "cancelled"):
            return _error(400, "outcome must be success, failed or cancelled")
        query: dict[str, Any] = {"status": "cancelled", "tx_ref": tx_ref}
        if outcome != "cancelled":
            tx = self.sim.complete(tx_ref, success=outcome == "success")
            query = {"status": tx.status, "tx_ref": tx_ref, "transaction_id": tx.id}
        redirect = f"{payment.redirect_url}?{urlencode(query)}" if payment.redirect_url else None
        return JSONResponse({"status": "ok", "redirect": redirect, **query})

    async def _sim_state(self, request: Request) -> Response:
        state = {
            "payments": sorted(self.sim.payments),
            "transactions": [t.as_data() for t in self.sim.transactions.values()],
            "refunds": list(self.sim.refunds.values()),
            "pending_webhooks": len(self.sim.sender.pending),
        }
        return JSONResponse(state)
