"""M-Pesa Daraja simulator (reference: the shared provider reference, mpesa.md §13).

* ``GET /oauth/v1/generate?grant_type=client_credentials`` — Basic(consumer_key:secret_key)
  -> ``{"access_token", "expires_in": "3599"}`` (a string, as observed). With
  ``single_token`` (default) a new token invalidates the previous one (Daraja FAQ).
* ``POST /mpesa/stkpush/v1/processrequest`` — Bearer; validates shortcode, timestamp,
  password = base64(shortcode+passkey+timestamp) (else 500 ``500.001.1001`` Wrong
  credentials), TransactionType, whole Amount, MSISDNs, https CallBackURL,
  AccountReference <= 12, TransactionDesc <= 13. A second push to a phone whose prompt is
  still open answers 500 ``500.001.1001`` "Unable to lock subscriber".
* ``POST /mpesa/stkpushquery/v1/query`` — HTTP 500 ``500.001.1001`` "The transaction is
  being processed" until the customer answered, then the final answer (string ResultCode).
* ``POST /mpesa/reversal/v1/request`` — ack now, ``Result`` callback to ResultURL on
  ``drain()`` (0, ``R000001`` when already reversed, ``R000002`` unknown receipt).
* Errors: invalid token 404 ``404.001.03``; ``fail_next(n, code)`` injects 500 errors
  (``500.003.02`` spike arrest by default).

The customer answers on ``drain()`` (the phone's scripted outcome, below) or through the
sim-only ``POST /_sim/pay/{CheckoutRequestID or our reference}?outcome=success|failed|<code>``.
Callbacks are unsigned and posted to each push's CallBackURL with the sample shapes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from novabilling.simulators.base import (
    ASGIApp,
    SentWebhook,
    bearer_token,
    dump_json,
    settings_from_env,
)

DEFAULT_SECRET_KEY = "nb-sim-consumer-secret"
DEFAULT_CONSUMER_KEY = "nb-sim-consumer-key"
SHORTCODE = "174379"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
PHONE_SUCCESS = "254708374149"  # sandbox MSISDN; any unlisted valid number succeeds too
PHONE_INSUFFICIENT = "254700000001"  # ResultCode 1
PHONE_CANCELLED = "254700001032"  # 1032
PHONE_TIMEOUT_USER = "254700001037"  # 1037 (phone unreachable)
PHONE_EXPIRED = "254700001019"  # 1019
PHONE_WRONG_PIN = "254700002001"  # 2001
PHONE_NO_CALLBACK = "254700000000"  # paid (0) but the callback is lost: only the query knows
PHONE_TIMEOUT = "254700000504"  # the push is recorded, then the API stalls and answers 500
PHONE_DECLINE = PHONE_INSUFFICIENT
PHONE_OUTCOMES = {
    PHONE_INSUFFICIENT: 1,
    PHONE_CANCELLED: 1032,
    PHONE_TIMEOUT_USER: 1037,
    PHONE_EXPIRED: 1019,
    PHONE_WRONG_PIN: 2001,
}
RESULT_DESC = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    1019: "Transaction has expired",
    1032: "Request cancelled by user",
    1037: "DS timeout user cannot be reached",
    2001: "The initiator information is invalid.",
}
_TIMESTAMP = re.compile(r"\d{14}")
_MSISDN = re.compile(r"254[17]\d{8}")
_TYPES = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")


def _error(status: int, code: str, message: str) -> JSONResponse:
    body = {"requestId": f"sim-{code}", "errorCode": code, "errorMessage": message}
    return JSONResponse(body, status_code=status)


def account_reference(reference: str) -> str:
    """Same deterministic 12-char mapping the adapter documents (for ``charges_for``)."""
    alnum = re.sub(r"[^A-Za-z0-9]", "", reference).upper()
    if 0 < len(alnum) <= 12:
        return alnum
    return alnum[-6:] + hashlib.sha256(reference.encode()).hexdigest()[:6].upper()


@dataclass
class _Push:
    merchant_request_id: str
    checkout_request_id: str
    amount: int
    phone: str
    account_reference: str
    callback_url: str
    result_code: int | None = None  # None while the prompt is open
    receipt: str | None = None
    attempts: int = 1


@dataclass
class _Pending:
    url: str
    payload: dict[str, Any]


@dataclass(kw_only=True)
class MpesaSimulator:
    secret_key: str
    webhook_secret: str | None = None  # unused: Daraja callbacks are unsigned
    webhook_url: str | None = None  # unused: callbacks go to each request's CallBackURL
    webhook_transport: httpx.AsyncBaseTransport | None = None
    hang_seconds: float = 0.0
    consumer_key: str = DEFAULT_CONSUMER_KEY
    shortcode: str = SHORTCODE
    passkey: str = PASSKEY
    single_token: bool = True
    duplicate_callbacks: bool = False  # deliver every STK callback twice
    sent_webhooks: list[SentWebhook] = field(default_factory=list)
    pushes: dict[str, _Push] = field(default_factory=dict)
    reversed_receipts: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    pending: list[_Pending] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self.app: ASGIApp = Starlette(
            routes=[
                Route("/oauth/v1/generate", self._oauth, methods=["GET"]),
                Route("/mpesa/stkpush/v1/processrequest", self._stk_push, methods=["POST"]),
                Route("/mpesa/stkpushquery/v1/query", self._stk_query, methods=["POST"]),
                Route("/mpesa/reversal/v1/request", self._reversal, methods=["POST"]),
                Route("/_sim/pay/{key}", self._sim_pay, methods=["POST"]),
                Route("/_sim/state", self._sim_state, methods=["GET"]),
            ]
        )

    # ---- test helpers -----------------------------------------------------------------

    def fail_next(self, count: int = 1, code: str = "500.003.02") -> None:
        """The next ``count`` API calls (not OAuth) answer HTTP 500 with ``code``."""
        self.injected.extend([code] * count)

    def charges_for(self, reference: str) -> int:
        keys = {reference, account_reference(reference)}
        return sum(1 for p in self.pushes.values() if p.account_reference in keys)

    def attempts_for(self, reference: str) -> int:
        keys = {reference, account_reference(reference)}
        return sum(p.attempts for p in self.pushes.values() if p.account_reference in keys)

    def answer(self, push: _Push, result_code: int) -> None:
        """The customer answers the prompt (0 = paid); queues the STK callback."""
        push.result_code = result_code
        if result_code == 0:
            push.receipt = f"TA{next(self._ids):08d}"
        if push.phone == PHONE_NO_CALLBACK:
            return
        callback: dict[str, Any] = {
            "MerchantRequestID": push.merchant_request_id,
            "CheckoutRequestID": push.checkout_request_id,
            "ResultCode": result_code,
            "ResultDesc": RESULT_DESC.get(result_code, "Request failed"),
        }
        if result_code == 0:
            items = [
                {"Name": "Amount", "Value": push.amount},
                {"Name": "MpesaReceiptNumber", "Value": push.receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": 20250101120031},
                {"Name": "PhoneNumber", "Value": int(push.phone)},
            ]
            callback["CallbackMetadata"] = {"Item": items}
        copies = 2 if self.duplicate_callbacks else 1
        for _ in range(copies):
            self.pending.append(_Pending(push.callback_url, {"Body": {"stkCallback": callback}}))

    async def drain(self) -> list[SentWebhook]:
        """Every open prompt gets its phone's scripted answer; deliver all callbacks."""
        for push in self.pushes.values():
            if push.result_code is None:
                self.answer(push, PHONE_OUTCOMES.get(push.phone, 0))
        delivered: list[SentWebhook] = []
        while self.pending:
            item = self.pending.pop(0)
            delivered.append(await self._deliver(item.url, dump_json(item.payload)))
        return delivered

    async def _deliver(self, url: str, body: bytes) -> SentWebhook:
        sent = SentWebhook(url=url, headers={"content-type": "application/json"}, body=body)
        self.sent_webhooks.append(sent)
        try:
            async with httpx.AsyncClient(transport=self.webhook_transport, timeout=5.0) as client:
                response = await client.post(url, content=body, headers=sent.headers)
            sent.status_code = response.status_code
        except httpx.HTTPError as exc:
            sent.error = f"{type(exc).__name__}: {exc}"
        return sent

    # ---- plumbing ---------------------------------------------------------------------

    def _guard(self, request: Request) -> Response | None:
        if bearer_token(request) not in self.tokens:
            return _error(404, "404.001.03", "Invalid Access Token")
        if self.injected:
            code = self.injected.pop(0)
            return _error(500, code, "System is busy. Please try again in few minutes.")
        return None

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        try:
            parsed = json.loads(await request.body() or b"{}", parse_float=Decimal)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def _credentials_error(self, body: dict[str, Any]) -> Response | None:
        shortcode, timestamp = str(body.get("BusinessShortCode", "")), body.get("Timestamp")
        if shortcode != self.shortcode:
            return _error(400, "400.002.02", "Bad Request - Invalid BusinessShortCode")
        if not isinstance(timestamp, str) or not _TIMESTAMP.fullmatch(timestamp):
            return _error(400, "400.002.02", "Bad Request - Invalid Timestamp")
        expected = base64.b64encode(f"{shortcode}{self.passkey}{timestamp}".encode()).decode()
        if body.get("Password") != expected:
            return _error(500, "500.001.1001", "Wrong credentials")
        return None

    # ---- endpoints --------------------------------------------------------------------

    async def _oauth(self, request: Request) -> Response:
        if request.query_params.get("grant_type") != "client_credentials":
            return _error(400, "400.008.02", "Invalid grant type passed")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        expected = base64.b64encode(f"{self.consumer_key}:{self.secret_key}".encode()).decode()
        if scheme.lower() != "basic":
            return _error(400, "400.008.01", "Invalid Authentication passed")
        if value.strip() != expected:
            return _error(400, "400.008.01", "Invalid Authentication passed")
        token = hashlib.sha1(f"{self.secret_key}:{next(self._ids)}".encode()).hexdigest()[:28]
        if self.single_token:
            self.tokens.clear()
        self.tokens.add(token)
        return JSONResponse({"access_token": token, "expires_in": "3599"})

    async def _stk_push(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await self._body(request)
        if (wrong := self._credentials_error(body)) is not None:
            return wrong
        amount, phone = body.get("Amount"), str(body.get("PhoneNumber", ""))
        reference, desc = body.get("AccountReference"), body.get("TransactionDesc", "")
        problems = {
            "TransactionType": body.get("TransactionType") not in _TYPES,
            "Amount": isinstance(amount, bool)
            or not isinstance(amount, int | str | Decimal)
            or not str(amount).isdigit()
            or int(str(amount)) < 1,
            "PartyA": not _MSISDN.fullmatch(str(body.get("PartyA", ""))),
            "PhoneNumber": not _MSISDN.fullmatch(phone),
            "PartyB": not str(body.get("PartyB", "")).isdigit(),
            "CallBackURL": not str(body.get("CallBackURL", "")).startswith("https://"),
            "AccountReference": not isinstance(reference, str) or not 0 < len(reference) <= 12,
            "TransactionDesc": not isinstance(desc, str) or len(desc) > 13,
        }
        for name, bad in problems.items():
            if bad:
                return _error(400, "400.002.02", f"Bad Request - Invalid {name}")
        open_push = next(
            (p for p in self.pushes.values() if p.phone == phone and p.result_code is None), None
        )
        if open_push is not None:
            open_push.attempts += 1
            message = "Unable to lock subscriber, a transaction is already in process"
            return _error(500, "500.001.1001", f"{message} for the current subscriber")
        n = next(self._ids)
        push = _Push(
            merchant_request_id=f"{n:04d}-4b64-97ff-b827b542881d{n:04d}",
            checkout_request_id=f"ws_CO_01012025120000{n:03d}{phone[3:]}",
            amount=int(str(amount)),
            phone=phone,
            account_reference=str(reference),
            callback_url=str(body["CallBackURL"]),
        )
        self.pushes[push.checkout_request_id] = push
        if phone == PHONE_TIMEOUT:
            await asyncio.sleep(self.hang_seconds)
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
        if (denied := self._guard(request)) is not None:
            return denied
        body = await self._body(request)
        if (wrong := self._credentials_error(body)) is not None:
            return wrong
        push = self.pushes.get(str(body.get("CheckoutRequestID", "")))
        if push is None:
            return _error(400, "400.002.02", "Bad Request - Invalid CheckoutRequestID")
        if push.result_code is None:
            return _error(500, "500.001.1001", "The transaction is being processed")
        return JSONResponse(
            {
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successsfully",
                "MerchantRequestID": push.merchant_request_id,
                "CheckoutRequestID": push.checkout_request_id,
                "ResultCode": str(push.result_code),
                "ResultDesc": RESULT_DESC.get(push.result_code, "Request failed"),
            }
        )

    async def _reversal(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await self._body(request)
        required = ("Initiator", "SecurityCredential", "TransactionID", "Amount", "ResultURL")
        for name in required:
            if not body.get(name):
                return _error(400, "400.002.02", f"Bad Request - Invalid {name}")
        if body.get("CommandID") != "TransactionReversal":
            return _error(400, "400.002.02", "Bad Request - Invalid CommandID")
        if not str(body.get("ResultURL")).startswith("https://"):
            return _error(400, "400.002.02", "Bad Request - Invalid ResultURL")
        n = next(self._ids)
        conversation = f"AG_20250102_{n:020x}"
        originator = f"{n:04d}-4b95-a71d-b30d3cdbb7a7{n:06d}"
        receipt = str(body["TransactionID"])
        paid = [p for p in self.pushes.values() if p.receipt == receipt]
        code: int | str = 0
        if not paid or int(str(body["Amount"])) > paid[0].amount:
            code = "R000002"
        elif receipt in self.reversed_receipts:
            code = "R000001"
        result: dict[str, Any] = {
            "ResultType": 0,
            "ResultCode": code,
            "ResultDesc": {
                0: "The service request is processed successfully.",
                "R000001": "The transaction has already been reversed.",
                "R000002": "The OriginalTransactionID is invalid.",
            }[code],
            "OriginatorConversationID": originator,
            "ConversationID": conversation,
            "TransactionID": f"TR{n:08d}",
        }
        if code == 0:
            self.reversed_receipts.add(receipt)
            result["ResultParameters"] = {
                "ResultParameter": [
                    {"Key": "Amount", "Value": int(str(body["Amount"]))},
                    {"Key": "OriginalTransactionID", "Value": receipt},
                ]
            }
        self.pending.append(_Pending(str(body["ResultURL"]), {"Result": result}))
        return JSONResponse(
            {
                "OriginatorConversationID": originator,
                "ConversationID": conversation,
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully.",
            }
        )

    async def _sim_pay(self, request: Request) -> Response:
        key = request.path_params["key"]
        push = self.pushes.get(key) or next(
            (p for p in self.pushes.values() if p.account_reference == account_reference(key)),
            None,
        )
        if push is None:
            return _error(404, "404.001.01", "Resource not found")
        if push.result_code is not None:
            return _error(400, "400.002.02", "Bad Request - prompt already answered")
        outcome = request.query_params.get("outcome", "success")
        code = {"success": 0, "failed": 1032}.get(outcome)
        if code is None:
            code = int(outcome) if outcome.isdigit() else 1032
        self.answer(push, code)
        return JSONResponse({"status": "ok", "CheckoutRequestID": push.checkout_request_id})

    async def _sim_state(self, request: Request) -> Response:
        return JSONResponse({k: vars(p) for k, p in self.pushes.items()})


def create_app() -> ASGIApp:
    settings = settings_from_env(default_secret_key=DEFAULT_SECRET_KEY)
    return MpesaSimulator(secret_key=settings.secret_key).app
