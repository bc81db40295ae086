"""M-Pesa Daraja adapter: STK push (M-Pesa Express), STK query, reversal
(reference: shared/reference/providers/mpesa.md).

Credentials: ``secret_key`` = consumer secret; ``extra``: ``consumer_key`` (or
``consumerKey``, else ``public_key``), ``shortcode``, ``passkey``, ``environment``
(``sandbox``|``production``), ``callback_url`` (our secret per-tenant STK callback URL;
falls back to ``CheckoutRequest.callback_url``), optional ``transaction_type``
(``CustomerPayBillOnline``), ``party_b`` (till number for BuyGoods), and for reversals
``initiator``, ``security_credential``, ``result_url``, ``timeout_url``.

* Money: KES only, whole shillings. ``amount_minor`` must be a multiple of 100 (cents
  cannot be charged by STK): anything else raises ``ProviderError``, never rounds.
* References: Daraja has no idempotency key and ``AccountReference`` holds 12 chars. We
  send :func:`account_reference` (our reference itself when it is <= 12 alphanumerics,
  else its last 6 alphanumerics + 6 hex of its SHA-256: deterministic, shown to the
  customer). The link back is the ``CheckoutRequestID`` (``Checkout.provider_reference``),
  which the payments service stores; ``verify_transaction`` takes it or our reference
  (resolved from this adapter instance's memory of its own pushes).
* A timed-out push is retried only because Daraja locks the subscriber while a prompt is
  open: a retry answers ``500.001.1001 Unable to lock subscriber`` instead of a second
  prompt, and the adapter then reports ``ProviderUnavailable`` (unknown, reconcile).
* Callbacks are unsigned: ``parse_webhook`` only checks the shape; every event is marked
  ``raw["needs_confirmation"] = True``: confirm with ``verify_transaction`` (STK query)
  before trusting it. Event id = ``"<CheckoutRequestID>:<ResultCode>"``. The receipt
  (``MpesaReceiptNumber``, needed for a reversal) is in ``raw["receipt"]``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx

from novabilling.kit.clock import utcnow
from novabilling.payments.providers.base import (
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    Credentials,
    EventKind,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    Refund,
    RefundRequest,
    SignatureError,
    Transaction,
    WebhookEvent,
)

SANDBOX_URL = "https://sandbox.safaricom.co.ke"
PRODUCTION_URL = "https://api.safaricom.co.ke"
EAT = timezone(timedelta(hours=3), "EAT")  # Africa/Nairobi, no DST
PROCESSING = "500.001.1001"
RESULT_MESSAGES = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    1019: "Transaction has expired.",
    1032: "Request cancelled by user.",
    1037: "DS timeout user cannot be reached.",
    2001: "Wrong PIN (the initiator information is invalid).",
}
_MSISDN = re.compile(r"254[17]\d{8}")
_RETRYABLE_CODES = {"500.003.02", "500.003.03", "500.003.1001"}


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """``base64(shortcode + passkey + timestamp)`` (mpesa.md §3.1)."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode()


def account_reference(reference: str) -> str:
    """Our reference squeezed into Daraja's 12-char ``AccountReference`` (see module doc)."""
    alnum = re.sub(r"[^A-Za-z0-9]", "", reference).upper()
    if 0 < len(alnum) <= 12:
        return alnum
    return alnum[-6:] + hashlib.sha256(reference.encode()).hexdigest()[:6].upper()


def whole_kes(amount_minor: int, currency: str) -> int:
    if currency.upper() != "KES":
        raise ProviderError("M-Pesa charges KES only", code="currency")
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ProviderError("amount_minor must be a positive integer", code="invalid_amount")
    if amount_minor % 100:
        raise ProviderError("M-Pesa STK takes whole shillings only", code="invalid_amount")
    return amount_minor // 100


def msisdn(phone: str | None) -> str:
    """``+254 712 ...`` / ``0712...`` / ``254712...`` -> ``254712...``."""
    digits = re.sub(r"\D", "", phone or "")
    if digits.startswith("0") and len(digits) == 10:
        digits = "254" + digits[1:]
    if not _MSISDN.fullmatch(digits):
        raise ProviderError(f"not a Kenyan M-Pesa number: {phone!r}", code="invalid_phone")
    return digits


def result_outcome(code: int | str | None) -> Outcome:
    """A final STK ResultCode -> outcome: 0 paid, any other code ended unpaid."""
    if code is None:
        return Outcome.UNKNOWN
    try:
        return Outcome.SUCCEEDED if int(code) == 0 else Outcome.FAILED
    except ValueError:
        return Outcome.FAILED


@dataclass
class _Push:
    reference: str
    checkout_request_id: str
    amount_minor: int


class MpesaProvider:
    name = "mpesa"

    def __init__(
        self,
        credentials: Credentials,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        max_retries: int = 2,
        backoff: float = 0.2,
    ) -> None:
        extra = credentials.extra
        self.credentials = credentials
        production = extra.get("environment", "sandbox").lower() in ("production", "live")
        self.base_url = credentials.base_url or (PRODUCTION_URL if production else SANDBOX_URL)
        self.consumer_key = (
            extra.get("consumer_key") or extra.get("consumerKey") or credentials.public_key or ""
        )
        self.shortcode = extra.get("shortcode", "")
        self.passkey = extra.get("passkey", "")
        self.transport = transport
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._token: tuple[str, float] | None = None  # (token, expires at, unix seconds)
        self._pushes: dict[str, _Push] = {}  # by our reference and by CheckoutRequestID
        self._receipts: dict[str, str] = {}  # CheckoutRequestID -> MpesaReceiptNumber
        self._reversals: dict[str, Refund] = {}  # ConversationID -> settled refund

    # ---- HTTP -------------------------------------------------------------------------

    async def _token_value(self, client: httpx.AsyncClient, *, fresh: bool = False) -> str:
        now = utcnow().timestamp()
        if self._token and not fresh and self._token[1] > now:
            return self._token[0]
        basic = base64.b64encode(f"{self.consumer_key}:{self.credentials.secret_key}".encode())
        response = await client.get(
            "/oauth/v1/generate",
            params={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic.decode()}"},
        )
        payload = _json(response.content)
        if response.status_code >= 500:
            raise httpx.HTTPStatusError("oauth 5xx", request=response.request, response=response)
        if response.status_code != 200 or not payload.get("access_token"):
            message = str(payload.get("errorMessage") or f"OAuth HTTP {response.status_code}")
            raise ProviderError(message, code="unauthorized", status=response.status_code)
        expires_in = int(str(payload.get("expires_in") or "3599"))  # a string in practice
        self._token = (str(payload["access_token"]), now + max(expires_in - 300, 60))
        return self._token[0]

    async def _post(
        self, path: str, body: Mapping[str, Any], *, retry: bool = True
    ) -> tuple[int, dict[str, Any]]:
        """POST with a bearer token; refresh once on 404.001.03; retry 5xx/timeouts
        (except ``500.001.1001``, a real answer). ``retry=False``: one attempt only."""
        attempts, problem, refreshed = 1 + self.max_retries, "no attempt made", False
        async with httpx.AsyncClient(
            base_url=self.base_url, transport=self.transport, timeout=self.timeout
        ) as client:
            attempt = 0
            while attempt < attempts:
                if attempt:
                    await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                attempt += 1
                try:
                    token = await self._token_value(client)
                    headers = {"Authorization": f"Bearer {token}"}
                    response = await client.post(path, json=dict(body), headers=headers)
                except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                    if not retry:
                        break
                    continue
                payload = _json(response.content)
                code = str(payload.get("errorCode") or "")
                if code == "404.001.03" and not refreshed:  # token invalidated: refresh once
                    refreshed, self._token, attempt = True, None, attempt - 1
                    continue
                retryable = response.status_code >= 500 and (code in _RETRYABLE_CODES or not code)
                if retryable and retry:
                    problem = f"HTTP {response.status_code} {code}".strip()
                    continue
                if retryable:
                    problem = f"HTTP {response.status_code} {code}".strip()
                    break
                return response.status_code, payload
        raise ProviderUnavailable(f"m-pesa unavailable: {problem}", status=503)

    @staticmethod
    def _error(status: int, payload: Mapping[str, Any]) -> ProviderError:
        message = str(payload.get("errorMessage") or payload.get("ResponseDescription") or status)
        return ProviderError(
            message, code=str(payload.get("errorCode") or "") or None, status=status
        )

    def _timestamp_password(self) -> tuple[str, str]:
        timestamp = utcnow().astimezone(EAT).strftime("%Y%m%d%H%M%S")
        return timestamp, stk_password(self.shortcode, self.passkey, timestamp)

    # ---- PaymentProvider ----------------------------------------------------------------

    async def verify_credentials(self) -> bool:
        try:
            async with httpx.AsyncClient(
                base_url=self.base_url, transport=self.transport, timeout=self.timeout
            ) as client:
                await self._token_value(client, fresh=True)
        except ProviderError:
            return False
        except (httpx.TransportError, httpx.HTTPStatusError) as exc:
            raise ProviderUnavailable(f"m-pesa unavailable: {exc}") from exc
        return True

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        push = await self._push(
            reference=request.reference,
            amount_minor=request.amount_minor,
            currency=request.currency,
            phone=request.phone,
            description=request.description,
            callback_url=request.callback_url,
        )
        return Checkout(
            reference=request.reference, url=None, provider_reference=push.checkout_request_id
        )

    async def charge(self, request: ChargeRequest) -> Transaction:
        """A new STK push (M-Pesa has no saved token): PENDING until the customer answers;
        poll ``verify_transaction``."""
        push = await self._push(
            reference=request.reference,
            amount_minor=request.amount_minor,
            currency=request.currency,
            phone=request.phone,
            description=request.description,
            callback_url=None,
        )
        return Transaction(
            reference=request.reference,
            outcome=Outcome.PENDING,
            amount_minor=request.amount_minor,
            currency="KES",
            provider_reference=push.checkout_request_id,
            message="STK prompt sent",
        )

    async def _push(
        self,
        *,
        reference: str,
        amount_minor: int,
        currency: str,
        phone: str | None,
        description: str | None,
        callback_url: str | None,
    ) -> _Push:
        amount = whole_kes(amount_minor, currency)
        number = msisdn(phone)
        extra = self.credentials.extra
        url = extra.get("callback_url") or extra.get("callbackUrl") or callback_url
        if not url:
            raise ProviderError("no M-Pesa callback URL configured", code="callback_url")
        timestamp, password = self._timestamp_password()
        body = {
            "BusinessShortCode": self.shortcode,
            "Password": password,
            "Timestamp": timestamp,
            "TransactionType": extra.get("transaction_type", "CustomerPayBillOnline"),
            "Amount": amount,
            "PartyA": number,
            "PartyB": extra.get("party_b") or self.shortcode,
            "PhoneNumber": number,
            "CallBackURL": url,
            "AccountReference": account_reference(reference),
            "TransactionDesc": (description or "Payment")[:13],
        }
        status, payload = await self._post("/mpesa/stkpush/v1/processrequest", body)
        if (
            status == 500
            and payload.get("errorCode") == PROCESSING
            and "lock" in str(payload.get("errorMessage", "")).lower()
        ):
            raise ProviderUnavailable(
                "subscriber locked: an earlier prompt may still be open; reconcile",
                code=PROCESSING,
                status=status,
            )
        if status != 200 or str(payload.get("ResponseCode")) != "0":
            raise self._error(status, payload)
        push = _Push(reference, str(payload["CheckoutRequestID"]), amount_minor)
        self._pushes[reference] = self._pushes[push.checkout_request_id] = push
        return push

    async def verify_transaction(self, reference: str) -> Transaction:
        """STK query by CheckoutRequestID (or our reference, if this instance pushed it)."""
        push = self._pushes.get(reference)
        if push is None and not reference.startswith("ws_CO_"):
            raise ProviderError(
                "unknown reference: pass the CheckoutRequestID", code="unknown_reference"
            )
        checkout_request_id = push.checkout_request_id if push else reference
        timestamp, password = self._timestamp_password()
        body = {
            "BusinessShortCode": self.shortcode,
            "Password": password,
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        }
        status, payload = await self._post("/mpesa/stkpushquery/v1/query", body)
        ours = push.reference if push else reference
        message = str(payload.get("errorMessage") or payload.get("ResultDesc") or "")
        if status == 500 and payload.get("errorCode") == PROCESSING and "process" in message:
            return Transaction(
                reference=ours,
                outcome=Outcome.PENDING,
                provider_reference=checkout_request_id,
                message=message,
                raw=payload,
            )
        if status != 200 or "ResultCode" not in payload:
            raise self._error(status, payload)
        outcome = result_outcome(payload["ResultCode"])
        return Transaction(
            reference=ours,
            outcome=outcome,
            # The query does not echo the amount: it is the one we pushed (fixed by us).
            amount_minor=push.amount_minor if push and outcome is Outcome.SUCCEEDED else None,
            currency="KES",
            provider_reference=checkout_request_id,
            message=message,
            raw=payload,
        )

    async def refund(self, request: RefundRequest) -> Refund:
        """Transaction reversal: PENDING until the Result callback arrives at ResultURL."""
        receipt = request.provider_transaction_id or ""
        receipt = self._receipts.get(receipt, receipt)
        if not receipt or receipt.startswith("ws_CO_"):
            raise ProviderError(
                "a reversal needs the MpesaReceiptNumber from the callback", code="receipt"
            )
        extra = self.credentials.extra
        result_url = extra.get("result_url") or extra.get("callback_url") or ""
        body = {
            "Initiator": extra.get("initiator", ""),
            "SecurityCredential": extra.get("security_credential", ""),
            "CommandID": "TransactionReversal",
            "TransactionID": receipt,
            "Amount": str(whole_kes(request.amount_minor, request.currency)),
            "ReceiverParty": self.shortcode,
            "RecieverIdentifierType": "11",  # sic (Safaricom's spelling)
            "ResultURL": result_url,
            "QueueTimeOutURL": extra.get("timeout_url") or result_url,
            "Remarks": (request.reason or f"Refund {request.reference}")[:100].ljust(2, "."),
            "Occasion": request.reference[:100],
        }
        status, payload = await self._post("/mpesa/reversal/v1/request", body, retry=False)
        if status != 200 or str(payload.get("ResponseCode")) != "0":
            raise self._error(status, payload)
        return Refund(
            reference=request.reference,
            outcome=Outcome.PENDING,
            provider_refund_id=str(payload.get("ConversationID") or ""),
            amount_minor=request.amount_minor,
            currency="KES",
            message=str(payload.get("ResponseDescription") or ""),
        )

    async def refund_status(self, refund: Refund) -> Refund:
        """Daraja has no synchronous reversal lookup: the Result callback (parsed by
        ``parse_webhook`` as ``REFUND_UPDATED``) is the answer; until then PENDING."""
        settled = self._reversals.get(refund.provider_refund_id or "")
        if settled is None:
            return refund
        return Refund(
            reference=refund.reference,
            outcome=settled.outcome,
            provider_refund_id=refund.provider_refund_id,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            message=settled.message,
        )

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        payload = _json(body)
        envelope = payload.get("Body")
        callback = envelope.get("stkCallback") if isinstance(envelope, Mapping) else None
        if isinstance(callback, Mapping):
            return self._stk_event(callback)
        result = payload.get("Result") if payload else None
        if isinstance(result, Mapping):
            return self._reversal_event(result)
        raise SignatureError("not an M-Pesa STK callback or Result body")

    # ---- callbacks ----------------------------------------------------------------------

    def _stk_event(self, callback: Mapping[str, Any]) -> WebhookEvent:
        checkout_request_id = callback.get("CheckoutRequestID")
        code = callback.get("ResultCode")
        if not isinstance(checkout_request_id, str) or isinstance(code, bool) or code is None:
            raise SignatureError("STK callback without CheckoutRequestID/ResultCode")
        try:
            code = int(code)
        except (TypeError, ValueError) as exc:
            raise SignatureError("STK callback ResultCode is not a number") from exc
        items = (callback.get("CallbackMetadata") or {}).get("Item") or []
        meta = {i["Name"]: i.get("Value") for i in items if isinstance(i, Mapping) and "Name" in i}
        receipt = meta.get("MpesaReceiptNumber")
        if receipt:
            self._receipts[checkout_request_id] = str(receipt)
        amount = meta.get("Amount")
        amount_minor = None
        if amount is not None and not isinstance(amount, bool):
            scaled = Decimal(str(amount)) * 100
            amount_minor = int(scaled) if scaled == scaled.to_integral_value() else None
        push = self._pushes.get(checkout_request_id)
        outcome = result_outcome(code)
        return WebhookEvent(
            provider=self.name,
            event_id=f"{checkout_request_id}:{code}",
            kind=EventKind.PAYMENT_SUCCEEDED if code == 0 else EventKind.PAYMENT_FAILED,
            reference=push.reference if push else None,
            outcome=outcome,
            amount_minor=amount_minor,
            currency="KES",
            provider_reference=checkout_request_id,
            raw={
                "needs_confirmation": True,  # unsigned: confirm with verify_transaction
                "result_code": code,
                "result_desc": callback.get("ResultDesc"),
                "receipt": receipt,
                "phone": meta.get("PhoneNumber"),
                "callback": dict(callback),
            },
        )

    def _reversal_event(self, result: Mapping[str, Any]) -> WebhookEvent:
        conversation = result.get("ConversationID")
        code = result.get("ResultCode")
        if not isinstance(conversation, str) or code is None:
            raise SignatureError("Result callback without ConversationID/ResultCode")
        # R000001 = already reversed: the money is back either way.
        ok = str(code) in ("0", "R000001")
        settled = Refund(
            reference="",
            outcome=Outcome.SUCCEEDED if ok else Outcome.FAILED,
            provider_refund_id=conversation,
            message=str(result.get("ResultDesc") or code),
        )
        self._reversals[conversation] = settled
        return WebhookEvent(
            provider=self.name,
            event_id=f"reversal:{conversation}:{code}",
            kind=EventKind.REFUND_UPDATED,
            reference=None,
            outcome=settled.outcome,
            provider_reference=conversation,
            raw={"needs_confirmation": True, "result": dict(result)},
        )


def _json(content: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(content or b"{}", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
