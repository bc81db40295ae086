"""The Stripe simulator's HTTP API: form-encoded bodies with bracket keys, Bearer or Basic
auth, ``Idempotency-Key`` replay, Stripe's error shapes; the sim-only ``/_sim`` paths."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from novabilling.simulators.checkout import hosted_page
from novabilling.simulators.http import (
    Endpoint,
    SimulatorApi,
    bearer_token,
    json_error,
    json_ok,
    public,
)
from novabilling.simulators.stripe.state import DECLINES, PM_TIMEOUT

if TYPE_CHECKING:
    from novabilling.simulators.stripe import StripeSimulator

Result = tuple[int, dict[str, Any], bool]  # status, body, stall before answering
FormHandler = Callable[[dict[str, str]], Result]


def _sub(form: dict[str, str], prefix: str) -> dict[str, str]:
    """``metadata[a]=1`` -> ``{"a": "1"}`` for ``prefix="metadata"``."""
    start = prefix + "["
    return {
        k[len(start) : -1]: v
        for k, v in form.items()
        if k.startswith(start) and "][" not in k[len(start) :]
    }


def _amount(form: dict[str, str], key: str) -> int | None:
    value = form.get(key, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def _error(status: int, type_: str, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": type_, "message": message, **extra}}


def _invalid(message: str, **extra: Any) -> Result:
    return (*_error(400, "invalid_request_error", message, **extra), False)


class StripeApi(SimulatorApi["StripeSimulator"]):
    sim: StripeSimulator

    def routes(self) -> list[Route]:
        sim, api = self.sim, self.api
        return [
            Route("/v1/balance", api(self._balance), methods=["GET"]),
            Route("/v1/checkout/sessions", api(self._post(self._session)), methods=["POST"]),
            Route("/v1/checkout/sessions/{id}", api(self._get(sim.sessions)), methods=["GET"]),
            Route("/v1/checkout/sessions/{id}/expire", api(self._expire), methods=["POST"]),
            Route("/v1/payment_intents", api(self._post(self._intent)), methods=["POST"]),
            Route("/v1/payment_intents/search", api(self._search), methods=["GET"]),
            Route("/v1/payment_intents/{id}", api(self._get(sim.intents)), methods=["GET"]),
            Route("/v1/refunds", api(self._post(self._refund)), methods=["POST"]),
            Route("/v1/refunds", api(self._list_refunds), methods=["GET"]),
            Route("/v1/refunds/{id}", api(self._get(sim.refunds)), methods=["GET"]),
            Route("/c/pay/{session_id}", self._hosted_page, methods=["GET"]),
            Route("/_sim/pay/{reference}", self._sim_pay, methods=["POST"]),
            Route("/_sim/state", self._sim_state, methods=["GET"]),
        ]

    # -- plumbing -------------------------------------------------------------------------

    def deny(self, request: Request) -> Response | None:
        token = bearer_token(request)
        header = request.headers.get("authorization", "")
        if token is None and header.lower().startswith("basic "):
            try:
                token = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except ValueError:
                token = None
        if token == self.sim.secret_key:
            return None
        message = "Invalid API Key provided: sk_test_****"
        return json_error(401, {"error": {"type": "invalid_request_error", "message": message}})

    def _post(self, handler: FormHandler) -> Endpoint:
        """A form POST honouring ``Idempotency-Key``: the first answer (402 and 500 too)
        is stored and replayed; the same key with other parameters is a 400."""

        async def endpoint(request: Request) -> Response:
            pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
            form = dict(pairs)
            if ref := form.get("metadata[nb_reference]"):
                self.sim.attempts[ref] += 1
            key = request.headers.get("idempotency-key")
            fingerprint = hashlib.sha256(f"{request.url.path}?{sorted(pairs)}".encode()).hexdigest()
            if key and key in self.sim.idempotency:
                stored_fp, status, body = self.sim.idempotency[key]
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
                self.sim.idempotency[key] = (fingerprint, status, body)
            if hang:
                await asyncio.sleep(self.sim.hang_seconds)
            return JSONResponse(body, status_code=status)

        return endpoint

    @staticmethod
    def _get(store: dict[str, dict[str, Any]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            obj = store.get(request.path_params["id"])
            if obj is None:
                message = f"No such object: '{request.path_params['id']}'"
                error = {"type": "invalid_request_error", "code": "resource_missing"}
                return json_error(404, {"error": {**error, "message": message}})
            return json_ok(public(obj))

        return endpoint

    def _unknown_customer(self, form: dict[str, str]) -> Result | None:
        customer = form.get("customer")
        if customer and customer not in self.sim.customers:
            return _invalid(f"No such customer: '{customer}'", code="resource_missing")
        return None

    # -- endpoints ------------------------------------------------------------------------

    async def _balance(self, request: Request) -> Response:
        available = [{"amount": 0, "currency": "usd"}]
        return json_ok(
            {"object": "balance", "available": available, "livemode": False, "pending": []}
        )

    def _session(self, form: dict[str, str]) -> Result:
        amount = _amount(form, "line_items[0][price_data][unit_amount]")
        currency = form.get("line_items[0][price_data][currency]", "")
        if amount is None or not currency.islower():
            return _invalid("Invalid line_items[0][price_data]")
        if (unknown := self._unknown_customer(form)) is not None:
            return unknown
        total = amount * int(form.get("line_items[0][quantity]", "1"))
        fields = {
            "mode": form.get("mode", "payment"),
            "amount_subtotal": total,
            "amount_total": total,
            "currency": currency,
            "customer": form.get("customer"),
            "customer_email": form.get("customer_email"),
            "client_reference_id": form.get("client_reference_id"),
            "metadata": _sub(form, "metadata"),
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": form.get("success_url"),
            "cancel_url": form.get("cancel_url"),
        }
        intent_data = {
            "metadata": _sub(form, "payment_intent_data[metadata]"),
            "setup_future_usage": form.get("payment_intent_data[setup_future_usage]"),
        }
        session = self.sim.new_session(fields, payment_intent_data=intent_data)
        return 200, public(session), False

    async def _expire(self, request: Request) -> Response:
        """``POST /v1/checkout/sessions/{id}/expire``: an open session can no longer be
        paid; any other status is a 400, as Stripe answers."""
        session = self.sim.sessions.get(request.path_params["id"])
        if session is None:
            error = {"type": "invalid_request_error", "code": "resource_missing"}
            return json_error(404, {"error": {**error, "message": "No such checkout.session"}})
        if session["status"] != "open":
            message = "Only Checkout Sessions with a status of `open` can be expired."
            return json_error(400, {"error": {"type": "invalid_request_error", "message": message}})
        session["status"] = "expired"
        self.sim.event("checkout.session.expired", public(session))
        return json_ok(public(session))

    def _intent(self, form: dict[str, str]) -> Result:
        amount = _amount(form, "amount")
        currency = form.get("currency", "")
        if amount is None or not currency.islower():
            return _invalid("Invalid amount or currency")
        if (unknown := self._unknown_customer(form)) is not None:
            return unknown
        pm = form.get("payment_method", "")
        if not pm.startswith("pm_"):
            return _invalid("Missing payment_method")
        intent = self.sim.new_intent(
            amount=amount,
            currency=currency,
            customer=form.get("customer"),
            payment_method=pm,
            metadata=_sub(form, "metadata"),
            description=form.get("description"),
        )
        self.sim.confirm(intent)
        if pm == PM_TIMEOUT:
            return (*_error(500, "api_error", "An unknown error occurred"), True)
        if pm in DECLINES:
            code, decline, message = DECLINES[pm]
            extra = {"code": code, "decline_code": decline, "payment_intent": intent}
            return (
                *_error(402, "card_error", message, **extra, charge=intent["latest_charge"]),
                False,
            )
        return 200, intent, False

    async def _search(self, request: Request) -> Response:
        data = self.sim.search_intents(request.query_params.get("query", ""))
        return json_ok(
            {
                "object": "search_result",
                "data": data,
                "has_more": False,
                "next_page": None,
                "url": "/v1/payment_intents/search",
            }
        )

    def _refund(self, form: dict[str, str]) -> Result:
        intent = self.sim.intents.get(form.get("payment_intent", ""))
        if intent is None or intent["status"] != "succeeded":
            return _invalid("No refundable payment_intent", code="resource_missing")
        remaining = self.sim.refundable(intent)
        amount = _amount(form, "amount") or remaining
        if amount > remaining or amount <= 0:
            message = f"Refund amount ({amount}) is greater than unrefunded amount ({remaining})."
            return _invalid(message, code="charge_already_refunded")
        fields = {
            "amount": amount,
            "reason": form.get("reason"),
            "metadata": _sub(form, "metadata"),
        }
        return 200, self.sim.new_refund(intent, fields), False

    async def _list_refunds(self, request: Request) -> Response:
        pi = request.query_params.get("payment_intent")
        data = [r for r in self.sim.refunds.values() if pi in (None, r["payment_intent"])]
        return json_ok({"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"})

    async def _hosted_page(self, request: Request) -> Response:
        """Stripe Checkout's page for a session, served locally (``checkout_base``)."""
        session = self.sim.sessions.get(request.path_params["session_id"])
        if session is None or session.get("status") != "open":
            return HTMLResponse("<h1>This Checkout Session is not open</h1>", status_code=404)
        return hosted_page(
            provider="Stripe",
            reference=session["id"],
            amount=f"{session['amount_total']} (smallest unit)",
            currency=str(session["currency"]).upper(),
        )

    async def _sim_pay(self, request: Request) -> Response:
        reference = request.path_params["reference"]
        found = self.sim.find_session(reference)
        if found is None:
            return json_error(404, {"status": "error", "message": "unknown session"})
        if found["status"] == "expired":
            return json_error(400, {"status": "error", "message": "this session has expired"})
        success = request.query_params.get("outcome", "success") == "success"
        session = await self.sim.complete(reference, success=success)
        return json_ok(
            {"status": "ok", "session": session["id"], "payment_status": session["payment_status"]}
        )

    async def _sim_state(self, request: Request) -> Response:
        return json_ok(
            {
                "sessions": [public(s) for s in self.sim.sessions.values()],
                "payment_intents": list(self.sim.intents.values()),
                "refunds": list(self.sim.refunds.values()),
            }
        )
