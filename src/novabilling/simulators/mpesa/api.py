"""The Daraja simulator's HTTP API: OAuth (Basic) -> bearer tokens, the STK push / query
and reversal endpoints with Daraja's validation and ``{"requestId", "errorCode",
"errorMessage"}`` errors, injected 500s (``fail_next``), and the sim-only ``/_sim`` paths."""

from __future__ import annotations

import asyncio
import base64
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from novabilling.simulators.http import (
    SimulatorApi,
    bearer_token,
    exact_json_object,
)
from novabilling.simulators.mpesa import callbacks
from novabilling.simulators.mpesa.state import PHONE_TIMEOUT

if TYPE_CHECKING:
    from novabilling.simulators.mpesa import MpesaSimulator

BAD_REQUEST = "400.002.02"
LOCKED = "500.001.1001"  # also "wrong credentials" and "being processed", as Daraja does
_TIMESTAMP = re.compile(r"\d{14}")
_MSISDN = re.compile(r"254[17]\d{8}")
_TYPES = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")
_REVERSAL_REQUIRED = ("Initiator", "SecurityCredential", "TransactionID", "Amount", "ResultURL")


def _error(status: int, code: str, message: str) -> JSONResponse:
    body = {"requestId": f"sim-{code}", "errorCode": code, "errorMessage": message}
    return JSONResponse(body, status_code=status)


def _invalid(name: str) -> JSONResponse:
    return _error(400, BAD_REQUEST, f"Bad Request - Invalid {name}")


_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def callback_url_ok(url: object) -> bool:
    """Daraja takes https callback URLs only; the simulator also takes plain http on a
    loopback host, which is all a server on the developer's machine has."""
    parsed = urlsplit(str(url or ""))
    if parsed.scheme == "https" and parsed.hostname:
        return True
    host = (parsed.hostname or "").lower()
    return parsed.scheme == "http" and (host in _LOOPBACK_HOSTS or host.startswith("127."))


def _push_problems(body: dict[str, Any]) -> dict[str, bool]:
    """STK push fields Daraja rejects (after the credentials check), in its order."""
    amount, reference = body.get("Amount"), body.get("AccountReference")
    desc = body.get("TransactionDesc", "")
    return {
        "TransactionType": body.get("TransactionType") not in _TYPES,
        "Amount": isinstance(amount, bool)
        or not isinstance(amount, int | str | Decimal)
        or not str(amount).isdigit()
        or int(str(amount)) < 1,
        "PartyA": not _MSISDN.fullmatch(str(body.get("PartyA", ""))),
        "PhoneNumber": not _MSISDN.fullmatch(str(body.get("PhoneNumber", ""))),
        "PartyB": not str(body.get("PartyB", "")).isdigit(),
        "CallBackURL": not callback_url_ok(body.get("CallBackURL")),
        "AccountReference": not isinstance(reference, str) or not 0 < len(reference) <= 12,
        "TransactionDesc": not isinstance(desc, str) or len(desc) > 13,
    }


class MpesaApi(SimulatorApi["MpesaSimulator"]):
    sim: MpesaSimulator

    def routes(self) -> list[Route]:
        api = self.api
        return [
            Route("/oauth/v1/generate", self._oauth, methods=["GET"]),
            Route("/mpesa/stkpush/v1/processrequest", api(self._stk_push), methods=["POST"]),
            Route("/mpesa/stkpushquery/v1/query", api(self._stk_query), methods=["POST"]),
            Route("/mpesa/reversal/v1/request", api(self._reversal), methods=["POST"]),
            Route("/_sim/pay/{key}", self._sim_pay, methods=["POST"]),
            Route("/_sim/state", self._sim_state, methods=["GET"]),
        ]

    # ---- plumbing ---------------------------------------------------------------------

    def deny(self, request: Request) -> Response | None:
        if bearer_token(request) not in self.sim.tokens:
            return _error(404, "404.001.03", "Invalid Access Token")
        if self.sim.injected:
            code = self.sim.injected.pop(0)
            return _error(500, code, "System is busy. Please try again in few minutes.")
        return None

    def _credentials_error(self, body: dict[str, Any]) -> Response | None:
        shortcode, timestamp = str(body.get("BusinessShortCode", "")), body.get("Timestamp")
        if shortcode != self.sim.shortcode:
            return _invalid("BusinessShortCode")
        if not isinstance(timestamp, str) or not _TIMESTAMP.fullmatch(timestamp):
            return _invalid("Timestamp")
        expected = base64.b64encode(f"{shortcode}{self.sim.passkey}{timestamp}".encode()).decode()
        if body.get("Password") != expected:
            return _error(500, LOCKED, "Wrong credentials")
        return None

    # ---- endpoints --------------------------------------------------------------------

    async def _oauth(self, request: Request) -> Response:
        if request.query_params.get("grant_type") != "client_credentials":
            return _error(400, "400.008.02", "Invalid grant type passed")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        pair = f"{self.sim.consumer_key}:{self.sim.secret_key}"
        if scheme.lower() != "basic" or value.strip() != base64.b64encode(pair.encode()).decode():
            return _error(400, "400.008.01", "Invalid Authentication passed")
        token = self.sim.issue_token(self.sim.secret_key, single=self.sim.single_token)
        return JSONResponse({"access_token": token, "expires_in": "3599"})

    async def _stk_push(self, request: Request) -> Response:
        body = await exact_json_object(request) or {}
        if (wrong := self._credentials_error(body)) is not None:
            return wrong
        for name, bad in _push_problems(body).items():
            if bad:
                return _invalid(name)
        phone = str(body.get("PhoneNumber", ""))
        open_push = self.sim.open_push(phone)
        if open_push is not None:
            open_push.attempts += 1
            message = "Unable to lock subscriber, a transaction is already in process"
            return _error(500, LOCKED, f"{message} for the current subscriber")
        push = self.sim.new_push(
            amount=int(str(body.get("Amount"))),
            phone=phone,
            reference=str(body.get("AccountReference")),
            callback_url=str(body["CallBackURL"]),
        )
        if phone == PHONE_TIMEOUT:
            await asyncio.sleep(self.sim.hang_seconds)
            return _error(500, "500.003.1001", "Internal Server Error")
        accepted = "Success. Request accepted for processing"
        return JSONResponse(
            {
                "MerchantRequestID": push.merchant_request_id,
                "CheckoutRequestID": push.checkout_request_id,
                "ResponseCode": "0",
                "ResponseDescription": accepted,
                "CustomerMessage": accepted,
            }
        )

    async def _stk_query(self, request: Request) -> Response:
        body = await exact_json_object(request) or {}
        if (wrong := self._credentials_error(body)) is not None:
            return wrong
        push = self.sim.pushes.get(str(body.get("CheckoutRequestID", "")))
        if push is None:
            return _invalid("CheckoutRequestID")
        if push.result_code is None:
            return _error(500, LOCKED, "The transaction is being processed")
        return JSONResponse(
            {
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successsfully",
                "MerchantRequestID": push.merchant_request_id,
                "CheckoutRequestID": push.checkout_request_id,
                "ResultCode": str(push.result_code),
                "ResultDesc": callbacks.result_desc(push.result_code),
            }
        )

    async def _reversal(self, request: Request) -> Response:
        body = await exact_json_object(request) or {}
        for name in _REVERSAL_REQUIRED:
            if not body.get(name):
                return _invalid(name)
        if body.get("CommandID") != "TransactionReversal":
            return _invalid("CommandID")
        if not callback_url_ok(body.get("ResultURL")):
            return _invalid("ResultURL")
        n = self.sim.next_id()
        conversation = f"AG_20250102_{n:020x}"
        originator = f"{n:04d}-4b95-a71d-b30d3cdbb7a7{n:06d}"
        receipt, amount = str(body["TransactionID"]), str(body["Amount"])
        result = callbacks.reversal_result(
            self.sim.reverse(receipt, amount),
            n=n,
            originator=originator,
            conversation=conversation,
            amount=amount,
            receipt=receipt,
        )
        self.sim.sender.queue(result, url=str(body["ResultURL"]))
        return JSONResponse(
            {
                "OriginatorConversationID": originator,
                "ConversationID": conversation,
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully.",
            }
        )

    async def _sim_pay(self, request: Request) -> Response:
        push = self.sim.find_push(request.path_params["key"])
        if push is None:
            return _error(404, "404.001.01", "Resource not found")
        if push.result_code is not None:
            return _error(400, BAD_REQUEST, "Bad Request - prompt already answered")
        outcome = request.query_params.get("outcome", "success")
        code = {"success": 0, "failed": 1032}.get(outcome)
        if code is None:
            code = int(outcome) if outcome.isdigit() else 1032
        self.sim.answer(push, code)
        return JSONResponse({"status": "ok", "CheckoutRequestID": push.checkout_request_id})

    async def _sim_state(self, request: Request) -> Response:
        return JSONResponse({k: vars(p) for k, p in self.sim.pushes.items()})
