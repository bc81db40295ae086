"""The DPO simulator's HTTP API: ``POST /API/v6/`` (``createToken``, ``verifyToken``,
``refundToken``; ``CompanyToken`` checked first: ``801`` missing, ``802`` unknown, ``803``
unknown request, ``804`` bad XML; always HTTP 200 like DPO), the payment page
``GET /payv2.php?ID=<TransToken>`` and the sim-only ``/_sim`` paths."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from novabilling.simulators.dpo import xml
from novabilling.simulators.dpo.state import EMAIL_TIMEOUT, SERVICE_TYPE
from novabilling.simulators.http import json_error, json_ok

if TYPE_CHECKING:
    from novabilling.simulators.dpo import DpoSimulator

_AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


def answer(code: str, explanation: str, **fields: str) -> Response:
    body = xml.document({"Result": code, "ResultExplanation": explanation, **fields})
    return Response(body, media_type="application/xml")


class DpoApi:
    def __init__(self, sim: DpoSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        return [
            Route("/API/v6/", self._api, methods=["POST"]),
            Route("/API/v6", self._api, methods=["POST"]),
            Route("/payv2.php", self._payment_page, methods=["GET"]),
            Route("/_sim/pay/{key}", self._sim_pay, methods=["POST"]),
            Route("/_sim/state", self._sim_state, methods=["GET"]),
        ]

    async def _api(self, request: Request) -> Response:
        root = xml.read(await request.body())
        if root is None or root.tag != "API3G":
            return answer("804", "Error in XML")
        company = xml.text(root, "CompanyToken")
        if not company:
            return answer("801", "Request missing company token")
        if company != self.sim.secret_key:
            return answer("802", "Company token does not exist")
        handler = {
            "createToken": self._create,
            "verifyToken": self._verify,
            "refundToken": self._refund,
        }.get(xml.text(root, "Request"))
        if handler is None:
            return answer("803", "No request or error in Request type name")
        return await handler(root)

    async def _create(self, root: Element) -> Response:
        amount = xml.text(root, "Transaction/PaymentAmount")
        currency = xml.text(root, "Transaction/PaymentCurrency").upper()
        company_ref = xml.text(root, "Transaction/CompanyRef")
        email = xml.text(root, "Transaction/customerEmail")
        if not _AMOUNT.match(amount) or Decimal(amount) <= 0:
            return answer("902", "Data mismatch in one of the fields - PaymentAmount")
        if not _CURRENCY.match(currency):
            return answer("902", "Data mismatch in one of the fields - PaymentCurrency")
        if root.find("Services/Service") is None:
            return answer("950", "Request missing mandatory fields - Services")
        if xml.text(root, "Services/Service/ServiceType") != SERVICE_TYPE:
            return answer("902", "Data mismatch in one of the fields - ServiceType")
        self.sim.attempts[company_ref] += 1
        unique = xml.text(root, "Transaction/CompanyRefUnique") == "1"
        if company_ref and unique and self.sim.by_ref(company_ref) is not None:
            return answer("902", "Data mismatch in one of the fields - CompanyRef (exists)")
        tx = self.sim.create(company_ref=company_ref, amount=amount, currency=currency, email=email)
        tx.redirect_url = xml.text(root, "Transaction/RedirectURL") or None
        if email == EMAIL_TIMEOUT:
            await asyncio.sleep(self.sim.hang_seconds)
            return json_error(504, {"message": "Gateway Timeout"})
        return answer("000", "Transaction created", TransToken=tx.token, TransRef=tx.trans_ref)

    async def _verify(self, root: Element) -> Response:
        token, ref = xml.text(root, "TransactionToken"), xml.text(root, "CompanyRef")
        if not token and not ref:
            return answer("950", "Request missing transaction level mandatory fields")
        tx = self.sim.transactions.get(token.upper()) if token else self.sim.by_ref(ref)
        if tx is None:
            return answer("902", "Data mismatch in one of the fields - TransactionToken")
        fields = self.sim.verify_fields(tx)
        return Response(xml.document(fields), media_type="application/xml")

    async def _refund(self, root: Element) -> Response:
        tx = self.sim.transactions.get(xml.text(root, "TransactionToken").upper())
        if tx is None:
            return answer("950", "Request missing transaction level mandatory fields - token")
        if not xml.text(root, "refundDetails"):
            return answer("950", "Request missing mandatory fields - refundDetails")
        try:
            amount = Decimal(xml.text(root, "refundAmount"))
        except InvalidOperation:
            return answer("950", "Data mismatch - refundAmount")
        return answer(*self.sim.refund(tx, amount))

    async def _payment_page(self, request: Request) -> Response:
        tx = self.sim.transactions.get(request.query_params.get("ID", "").upper())
        if tx is None:
            return HTMLResponse("<h1>Transaction not found</h1>", status_code=404)
        forms = "".join(
            f'<form method="post" action="/_sim/pay/{tx.token}?outcome={o}">'
            f"<button>{o}</button></form>"
            for o in ("success", "failed")
        )
        return HTMLResponse(f"<h1>DPO Pay: {tx.amount} {tx.currency}</h1>{forms}")

    async def _sim_pay(self, request: Request) -> Response:
        key = request.path_params["key"]
        if self.sim.find(key) is None:
            return json_error(404, {"status": "error", "message": "unknown transaction"})
        success = request.query_params.get("outcome", "success") == "success"
        tx = await self.sim.complete(key, success=success)
        await self.sim.sender.flush()  # DPO pushes right after the payment
        return json_ok({"status": "ok", "token": tx.token, "transaction_status": tx.status})

    async def _sim_state(self, request: Request) -> Response:
        rows = [
            {"token": t.token, "companyRef": t.company_ref, "amount": t.amount,
             "currency": t.currency, "status": t.status, "refunded": str(t.refunded)}
            for t in self.sim.transactions.values()
        ]  # fmt: skip
        return json_ok({"transactions": rows})
