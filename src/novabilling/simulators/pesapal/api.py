"""The Pesapal simulator's HTTP API (paths under ``/api`` like API 3.0's, relative to the
base URL; the sandbox's is ``https://cybqa.pesapal.com/pesapalv3``): token, IPN setup,
orders, status and refunds, Pesapal's in-body errors (often with HTTP 200), the payment
page and the sim-only ``/_sim`` paths."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from novabilling.simulators.http import bearer_token, exact_json_object, json_error, json_ok
from novabilling.simulators.pesapal.state import EMAIL_TIMEOUT, SUPPORTED_CURRENCIES, iso

if TYPE_CHECKING:
    from novabilling.simulators.pesapal import PesapalSimulator

PAGE = "/pesapaliframe/PesapalIframe3/Index"


_DECIMAL = re.compile(r'"@dec:(-?[0-9.]+)@"')


class _Json(JSONResponse):
    """Decimals rendered as exact JSON numbers (Pesapal's ``amount``), never via float."""

    def render(self, content: Any) -> bytes:
        def default(value: Any) -> Any:
            if isinstance(value, Decimal):
                return f"@dec:{value}@"
            raise TypeError(type(value).__name__)

        text = json.dumps(content, default=default, separators=(",", ":"))
        return _DECIMAL.sub(r"\1", text).encode()


def _error(code: str, message: str, *, status: str = "500", http: int = 200) -> Response:
    body = {
        "error": {"error_type": "api_error", "code": code, "message": message},
        "status": status,
    }
    return json_error(http, body)


class PesapalApi:
    def __init__(self, sim: PesapalSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        guarded = self._guarded
        return [
            Route("/api/Auth/RequestToken", self._token, methods=["POST"]),
            Route("/api/URLSetup/RegisterIPN", guarded(self._register_ipn), methods=["POST"]),
            Route("/api/URLSetup/GetIpnList", guarded(self._ipn_list), methods=["GET"]),
            Route("/api/Transactions/SubmitOrderRequest", guarded(self._submit), methods=["POST"]),
            Route("/api/Transactions/GetTransactionStatus", guarded(self._status), methods=["GET"]),
            Route("/api/Transactions/RefundRequest", guarded(self._refund), methods=["POST"]),
            Route(PAGE, self._page, methods=["GET"]),
            Route("/_sim/pay/{key}", self._sim_pay, methods=["POST"]),
            Route("/_sim/state", self._sim_state, methods=["GET"]),
        ]

    def _guarded(self, endpoint: Any) -> Any:
        async def run(request: Request) -> Response:
            if not self.sim.token_valid(bearer_token(request)):
                return _error(
                    "invalid_token", "Token is invalid or expired", status="401", http=401
                )
            return await endpoint(request)

        return run

    async def _token(self, request: Request) -> Response:
        body = await exact_json_object(request) or {}
        pair = (body.get("consumer_key"), body.get("consumer_secret"))
        if pair != (self.sim.consumer_key, self.sim.secret_key):
            return json_ok({
                "token": None, "expiryDate": None,
                "error": {"error_type": "api_error",
                          "code": "invalid_consumer_key_or_secret_provided", "message": ""},
                "status": "500", "message": "Invalid consumer key or secret",
            })  # fmt: skip
        token, expires = self.sim.issue_token()
        return json_ok({"token": token, "expiryDate": iso(expires), "error": None,
                        "status": "200", "message": "Request processed successfully"})  # fmt: skip

    async def _register_ipn(self, request: Request) -> Response:
        body = await exact_json_object(request) or {}
        url, method = str(body.get("url") or ""), str(body.get("ipn_notification_type") or "")
        if not url.startswith(("http://", "https://")) or method not in ("GET", "POST"):
            return _error("invalid_ipn", "url and ipn_notification_type (GET|POST) are required")
        return json_ok(self.sim.register_ipn(url, method))

    async def _ipn_list(self, request: Request) -> Response:
        return _Json(list(self.sim.ipns.values()))

    async def _submit(self, request: Request) -> Response:
        body = await exact_json_object(request) or {}
        problem = self._order_problem(body)
        if problem:
            return _error(*problem)
        reference = str(body["id"])
        self.sim.attempts[reference] += 1
        if self.sim.find(reference) is not None:
            return _error("duplicate_order_reference", "The merchant reference already exists")
        billing = body.get("billing_address")
        email = str(billing.get("email_address") or "") if isinstance(billing, dict) else ""
        order = self.sim.new_order(body, Decimal(str(body["amount"])), email)
        if order.email == EMAIL_TIMEOUT:
            await asyncio.sleep(self.sim.hang_seconds)
            return json_error(504, {"message": "Gateway Timeout"})
        base = str(request.base_url).rstrip("/")
        return json_ok({
            "order_tracking_id": order.tracking_id,
            "merchant_reference": order.merchant_reference,
            "redirect_url": f"{base}{PAGE}?OrderTrackingId={order.tracking_id}",
            "error": None, "status": "200",
        })  # fmt: skip

    def _order_problem(self, body: dict[str, Any]) -> tuple[str, str] | None:
        reference = str(body.get("id") or "")
        if not reference or len(reference) > 50:
            return "invalid_reference", "id is required (at most 50 characters)"
        if str(body.get("currency") or "").upper() not in SUPPORTED_CURRENCIES:
            return "invalid_currency", "currency is not supported"
        try:
            amount = Decimal(str(body.get("amount")))
        except InvalidOperation:
            return "invalid_amount", "amount must be a number"
        if not amount.is_finite() or amount <= 0:
            return "invalid_amount", "amount must be greater than zero"
        if not body.get("description") or len(str(body["description"])) > 100:
            return "invalid_description", "description is required (at most 100 characters)"
        if not body.get("callback_url"):
            return "invalid_callback_url", "callback_url is required"
        if str(body.get("notification_id") or "") not in self.sim.ipns:
            return "invalid_notification_id", "notification_id is not a registered IPN"
        return None

    async def _status(self, request: Request) -> Response:
        order = self.sim.orders.get(request.query_params.get("orderTrackingId", ""))
        if order is None:
            return _error("invalid_order_tracking_id", "Order tracking id not found")
        return _Json(order.status())

    async def _refund(self, request: Request) -> Response:
        body = await exact_json_object(request) or {}
        if not body.get("username") or not body.get("remarks"):
            return json_ok({"status": "500", "message": "username and remarks are required"})
        try:
            amount = Decimal(str(body.get("amount")))
        except InvalidOperation:
            return json_ok({"status": "500", "message": "amount must be a number"})
        status, message = self.sim.request_refund(str(body.get("confirmation_code") or ""), amount)
        return json_ok({"status": status, "message": message})

    async def _page(self, request: Request) -> Response:
        order = self.sim.orders.get(request.query_params.get("OrderTrackingId", ""))
        if order is None:
            return HTMLResponse("<h1>Order not found</h1>", status_code=404)
        forms = "".join(
            f'<form method="post" action="/_sim/pay/{order.tracking_id}?outcome={o}">'
            f"<button>{o}</button></form>"
            for o in ("success", "failed")
        )
        return HTMLResponse(f"<h1>Pesapal: {order.currency} {order.amount}</h1>{forms}")

    async def _sim_pay(self, request: Request) -> Response:
        key = request.path_params["key"]
        if self.sim.find(key) is None:
            return json_error(404, {"status": "error", "message": "unknown order"})
        success = request.query_params.get("outcome", "success") == "success"
        order = await self.sim.complete(key, success=success)
        await self.sim.sender.flush()  # the IPN goes out at once
        return json_ok({"status": "ok", "orderTrackingId": order.tracking_id,
                        "status_code": order.status_code})  # fmt: skip

    async def _sim_state(self, request: Request) -> Response:
        orders = self.sim.orders.values()
        refunds = [
            {"orderTrackingId": o.tracking_id, "amount": o.refund_amount,
             "approved": o.refund_approved}
            for o in orders
            if o.refund_amount is not None
        ]  # fmt: skip
        return _Json({"orders": [o.status() for o in orders], "refunds": refunds,
                      "ipns": list(self.sim.ipns.values())})  # fmt: skip
