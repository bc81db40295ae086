"""The PayU simulator's HTTP API: SOAP ``POST /service/PayUAPI`` (WS-Security username and
password, then ``Safekey``; a wrong one is a ``soap:Client`` fault with HTTP 500, as SOAP
does), the RPP page ``GET /rpp.do?PayUReference=...`` and the sim-only ``/_sim`` paths."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from novabilling.simulators.http import json_error, json_ok
from novabilling.simulators.payu import soap
from novabilling.simulators.payu.state import (
    EMAIL_TIMEOUT,
    PM_TIMEOUT,
    SUPPORTED_CURRENCIES,
    PayuTransaction,
)

if TYPE_CHECKING:
    from novabilling.simulators.payu import PayuSimulator

XML = "text/xml; charset=utf-8"


def _xml(body: bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type=XML)


def _refused(operation: str, code: str, message: str) -> Response:
    fields = {"successful": "false", "resultCode": code, "resultMessage": message}
    return _xml(soap.answer(operation, fields))


def _basket_error(basket: Any) -> str | None:
    if not isinstance(basket, dict):
        return "Basket is required"
    cents = str(basket.get("amountInCents") or "")
    if not cents.isdigit() or int(cents) <= 0:
        return "Basket amountInCents must be a positive whole number of cents"
    if str(basket.get("currencyCode") or "").upper() not in SUPPORTED_CURRENCIES:
        return "Basket currencyCode is not supported"
    return None


class PayuApi:
    def __init__(self, sim: PayuSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        return [
            Route("/service/PayUAPI", self._api, methods=["POST"]),
            Route("/rpp.do", self._rpp_page, methods=["GET"]),
            Route("/_sim/pay/{key}", self._sim_pay, methods=["POST"]),
            Route("/_sim/state", self._sim_state, methods=["GET"]),
        ]

    async def _api(self, request: Request) -> Response:
        call = soap.read_request(await request.body())
        if call is None:
            return _xml(soap.fault("Client", "Unmarshalling Error: not a SOAP envelope"), 500)
        if (call.username, call.password) != (self.sim.username, self.sim.secret_key):
            return _xml(soap.fault("Client", "Authentication failed"), 500)
        if call.fields.get("Safekey") != self.sim.safe_key:
            return _xml(soap.fault("Client", "Invalid Safekey"), 500)
        handler = {
            "setTransaction": self._set,
            "getTransaction": self._get,
            "doTransaction": self._do,
        }.get(call.operation)
        if handler is None:
            return _xml(
                soap.fault("Client", f"Cannot find dispatch method for {call.operation}"), 500
            )
        if self.sim.fail_next:
            self.sim.fail_next -= 1
            return _xml(soap.fault("Server", "Internal error"), 500)
        return await handler(call.fields)

    async def _set(self, fields: dict[str, Any]) -> Response:
        info = fields.get("AdditionalInformation") or {}
        reference = str(info.get("merchantReference") or "")
        if not reference:
            return _refused("setTransaction", "999", "merchantReference is required")
        if problem := _basket_error(fields.get("Basket")):
            return _refused("setTransaction", "999", problem)
        self.sim.attempts[reference] += 1
        if self.sim.by_merchant_reference(reference):
            return _refused("setTransaction", "999", "Duplicate merchant reference")
        tx = self.sim.new(merchant_reference=reference, kind="PAYMENT", basket=fields["Basket"])
        tx.notify_url = info.get("notificationUrl") or None
        tx.store_card = str(fields.get("storePaymentMethod")).lower() == "true"
        tx.email = str((fields.get("Customer") or {}).get("email") or "")
        if tx.email == EMAIL_TIMEOUT:
            await asyncio.sleep(self.sim.hang_seconds)
            return json_error(504, {"message": "Gateway Timeout"})
        reply = {"successful": "true", "payUReference": tx.payu_reference,
                 "merchantReference": reference, "resultCode": "00"}  # fmt: skip
        return _xml(soap.answer("setTransaction", reply))

    async def _get(self, fields: dict[str, Any]) -> Response:
        info = fields.get("AdditionalInformation") or {}
        by_payu, by_merchant = info.get("payUReference"), info.get("merchantReference")
        if bool(by_payu) == bool(by_merchant):
            return _refused("getTransaction", "999", "Supply payUReference or merchantReference")
        if by_merchant:
            self.sim.attempts[str(by_merchant)] += 1
        found = self.sim.transactions.get(str(by_payu)) if by_payu else None
        if by_merchant:
            payments = [t for t in self.sim.by_merchant_reference(str(by_merchant))]
            found = payments[0] if payments else None
        if found is None:
            return _refused("getTransaction", "999", "Transaction not found")
        return _xml(soap.answer("getTransaction", found.fields()))

    async def _do(self, fields: dict[str, Any]) -> Response:
        kind = str(fields.get("TransactionType") or "")
        info = fields.get("AdditionalInformation") or {}
        reference = str(info.get("merchantReference") or "")
        if problem := _basket_error(fields.get("Basket")):
            return _refused("doTransaction", "999", problem)
        if not reference:
            return _refused("doTransaction", "999", "merchantReference is required")
        self.sim.attempts[reference] += 1
        if self.sim.by_merchant_reference(reference):
            return _refused("doTransaction", "999", "Duplicate merchant reference")
        if kind == "CREDIT":
            return self._credit(fields, info, reference)
        if kind != "PAYMENT" or fields.get("AuthenticationType") != "TOKEN":
            return _refused("doTransaction", "999", "Only PAYMENT with TOKEN is simulated")
        pm_id = str((fields.get("Creditcard") or {}).get("pmId") or "")
        if pm_id not in self.sim.cards:
            return _refused("doTransaction", "999", "Invalid payment method (pmId)")
        tx = self.sim.new(merchant_reference=reference, kind="PAYMENT", basket=fields["Basket"])
        tx.notify_url = info.get("notificationUrl") or None
        self.sim.charge_card(tx, pm_id)
        if pm_id == PM_TIMEOUT:
            await asyncio.sleep(self.sim.hang_seconds)
            return json_error(504, {"message": "Gateway Timeout"})
        return _xml(soap.answer("doTransaction", tx.fields()))

    def _credit(self, fields: dict[str, Any], info: dict[str, Any], reference: str) -> Response:
        payment = self.sim.transactions.get(str(info.get("payUReference") or ""))
        if payment is None or payment.kind != "PAYMENT" or payment.state != "SUCCESSFUL":
            return _refused("doTransaction", "999", "Original transaction not found or not paid")
        cents = int(fields["Basket"]["amountInCents"])
        if cents > payment.amount_cents - self.sim.refunded(payment):
            return _refused("doTransaction", "999", "Credit amount exceeds the amount paid")
        credit = self.sim.new(merchant_reference=reference, kind="CREDIT", basket=fields["Basket"])
        credit.original = payment.payu_reference
        credit.state, credit.result_message = "PROCESSING", "Credit in progress"
        return _xml(soap.answer("doTransaction", credit.fields()))

    async def _rpp_page(self, request: Request) -> Response:
        tx = self.sim.transactions.get(request.query_params.get("PayUReference", ""))
        if tx is None:
            return HTMLResponse("<h1>Transaction not found</h1>", status_code=404)
        forms = "".join(
            f'<form method="post" action="/_sim/pay/{tx.payu_reference}?outcome={o}">'
            f"<button>{o}</button></form>"
            for o in ("success", "failed")
        )
        amount = f"{tx.amount_cents / 100:.2f}"  # display only
        return HTMLResponse(f"<h1>PayU: {tx.currency} {amount}</h1>{forms}")

    async def _sim_pay(self, request: Request) -> Response:
        key = request.path_params["key"]
        tx: PayuTransaction | None = self.sim.find(key)
        if tx is None:
            return json_error(404, {"status": "error", "message": "unknown transaction"})
        success = request.query_params.get("outcome", "success") == "success"
        await self.sim.complete(key, success=success)
        await self.sim.sender.flush()  # the IPN goes out at once
        return json_ok({"status": "ok", "payUReference": tx.payu_reference, "state": tx.state})

    async def _sim_state(self, request: Request) -> Response:
        return json_ok({"transactions": [t.fields() for t in self.sim.transactions.values()]})
