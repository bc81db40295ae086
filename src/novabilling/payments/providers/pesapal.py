"""Pesapal API 3.0 adapter (JSON over REST; facts: docs/providers/pesapal.md).

* Auth: ``POST /api/Auth/RequestToken`` with the consumer key and secret -> a bearer
  token (5 minutes; cached until shortly before ``expiryDate``). Pesapal reports errors in
  the body (``{"error": {"error_type", "code", "message"}, "status": "500"}``), often with
  HTTP 200: every answer is checked for ``error``.
* IPN: ``SubmitOrderRequest`` needs the ``notification_id`` of a registered IPN URL. The
  adapter uses ``ipnId`` when configured, else finds our per-tenant URL in
  ``GET /api/URLSetup/GetIpnList`` or registers it (``POST /api/URLSetup/RegisterIPN``,
  ``ipn_notification_type`` POST), once per adapter instance.
* Checkout: ``POST /api/Transactions/SubmitOrderRequest`` -> ``order_tracking_id`` and
  ``redirect_url``. ``id`` (our reference) holds at most 50 characters: a longer reference
  is sent as its first 35 characters + ``-`` + 14 hex of its SHA-256 (deterministic). Not
  re-sent after a lost answer (``id`` must be unique per order).
* Verify: ``GET /api/Transactions/GetTransactionStatus?orderTrackingId=`` - by Pesapal's
  tracking id only (``registry`` spec ``confirm_by="provider_reference"``).
  ``status_code`` 1 COMPLETED paid, 2 FAILED, 3 REVERSED (was paid, then refunded), 0
  INVALID not paid (yet). ``amount`` is in major units (parsed exactly).
* Refund: ``POST /api/Transactions/RefundRequest`` with the payment's
  ``confirmation_code`` (read from the status first): accepted = PENDING until the
  merchant approves it; the order then reads REVERSED (``refund_status``). One refund per
  payment; mobile-money payments only in full (Pesapal's rules).
* No merchant-initiated charge: ``charge`` refuses (``code="unsupported"``).
* IPNs name the order only (``OrderTrackingId``, ``OrderNotificationType``,
  ``OrderMerchantReference``) and are unsigned: the status always comes from
  ``GetTransactionStatus``.

Credentials: ``public_key`` = consumerKey, ``secret_key`` = consumerSecret; ``extra``:
``environment`` (``sandbox`` | ``live``), ``ipnId``, ``notifyUrl`` (our IPN URL),
``returnUrl``, ``refundUsername``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Unpack
from urllib.parse import parse_qsl

import httpx

from novabilling.errors import Invalid
from novabilling.kit import money
from novabilling.kit.clock import SystemClock
from novabilling.payments.providers import http
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

BASE_URLS = {"sandbox": "https://cybqa.pesapal.com/pesapalv3", "live": "https://pay.pesapal.com/v3"}
MAX_ID = 50
STATUS_CODES = {
    1: Outcome.SUCCEEDED,
    2: Outcome.FAILED,
    3: Outcome.SUCCEEDED,  # REVERSED: it was paid (then refunded)
    0: Outcome.PENDING,  # INVALID: not paid (yet)
}
_TOKEN_MARGIN_SECONDS = 30


def merchant_id(reference: str) -> str:
    """Our reference as Pesapal's ``id`` (at most 50 characters, deterministic)."""
    if len(reference) <= MAX_ID:
        return reference
    return f"{reference[:35]}-{hashlib.sha256(reference.encode()).hexdigest()[:14]}"


def to_minor(amount: Any, currency: str | None) -> int | None:
    if amount is None or isinstance(amount, bool) or not currency:
        return None
    try:
        return money.to_minor(Decimal(str(amount)), currency, field="amount")
    except (Invalid, ArithmeticError, ValueError):
        return None


def _unavailable(problem: str) -> ProviderUnavailable:
    return ProviderUnavailable(f"pesapal unavailable ({problem})", code="unavailable", status=503)


def _error(payload: Mapping[str, Any], status: int) -> ProviderError | None:
    error = payload.get("error")
    if isinstance(error, Mapping) and (error.get("code") or error.get("message")):
        message = str(error.get("message") or error.get("code"))
        return ProviderError(message, code=str(error.get("code") or "") or None, status=status)
    return None


class PesapalProvider:
    name = "pesapal"

    def __init__(self, credentials: Credentials, **options: Unpack[http.HttpOptions]) -> None:
        extra = credentials.extra
        self.credentials = credentials
        live = extra.get("environment", "sandbox").strip().lower() == "live"
        base = BASE_URLS["live" if live else "sandbox"]
        self.endpoint = http.Endpoint.of(credentials, base, **options)
        self.consumer_key = credentials.public_key or extra.get("consumerKey", "")
        self.notify_url = extra.get("notifyUrl")
        self.return_url = extra.get("returnUrl")
        self.ipn_id = extra.get("ipnId")
        self.refund_username = extra.get("refundUsername", "NovaBilling")
        self._token: tuple[str, float] | None = None

    # -- HTTP -----------------------------------------------------------------------------

    async def _bearer(self, client: httpx.AsyncClient) -> Mapping[str, str]:
        now = SystemClock().now().timestamp()
        if self._token is None or self._token[1] <= now:
            response = await client.post(
                "api/Auth/RequestToken",
                json={
                    "consumer_key": self.consumer_key,
                    "consumer_secret": self.credentials.secret_key,
                },
                headers={"Accept": "application/json"},
            )
            if response.status_code >= 500:
                raise httpx.HTTPStatusError(
                    "token 5xx", request=response.request, response=response
                )
            payload = http.json_object(response.content)
            if (error := _error(payload, response.status_code)) or not payload.get("token"):
                raise error or ProviderError("pesapal issued no token", code="unauthorized")
            self._token = (str(payload["token"]), self._expiry(payload.get("expiryDate"), now))
        return {**http.bearer(self._token[0]), "Accept": "application/json"}

    @staticmethod
    def _expiry(value: Any, now: float) -> float:
        try:
            stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
        except ValueError:
            stamp = now + 300
        return max(stamp - _TOKEN_MARGIN_SECONDS, now + 1)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        retries: int | None = None,
    ) -> Any:
        response = await http.send(
            self.endpoint,
            method,
            path,
            auth=self._bearer,
            body=body,
            params=params,
            retries=retries,
            unavailable=_unavailable,
        )
        try:
            payload = json.loads(response.content or b"null", parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise ProviderError(
                f"unreadable Pesapal answer (HTTP {response.status_code})"
            ) from None
        if isinstance(payload, Mapping) and (error := _error(payload, response.status_code)):
            raise error
        if response.status_code >= 400:
            raise ProviderError(f"Pesapal HTTP {response.status_code}", status=response.status_code)
        return payload

    async def _notification_id(self) -> str:
        if self.ipn_id:
            return self.ipn_id
        if not self.notify_url:
            raise ProviderError(
                "pesapal needs an IPN URL (notifyUrl) or an ipnId", code="configuration"
            )
        listed = await self._call("GET", "api/URLSetup/GetIpnList")
        for entry in listed if isinstance(listed, list) else []:
            if (
                isinstance(entry, Mapping)
                and entry.get("url") == self.notify_url
                and entry.get("ipn_id")
            ):
                self.ipn_id = str(entry["ipn_id"])
                return self.ipn_id
        body = {"url": self.notify_url, "ipn_notification_type": "POST"}
        registered = await self._call("POST", "api/URLSetup/RegisterIPN", body=body, retries=0)
        if not isinstance(registered, Mapping) or not registered.get("ipn_id"):
            raise ProviderError("pesapal registered no IPN id")
        self.ipn_id = str(registered["ipn_id"])
        return self.ipn_id

    # -- the PaymentProvider interface ----------------------------------------------------

    async def verify_credentials(self) -> bool:
        self._token = None
        try:
            async with self.endpoint.client() as client:
                await self._bearer(client)
        except ProviderError:
            return False
        except (httpx.TransportError, httpx.HTTPStatusError, TimeoutError) as exc:
            raise _unavailable(f"{type(exc).__name__}: {exc}") from exc
        return True

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        currency = request.currency.upper()
        callback = request.callback_url or self.return_url or self.notify_url
        body = {
            "id": merchant_id(request.reference),
            "currency": currency,
            "amount": money.to_number(request.amount_minor, currency),
            "description": (request.description or "Payment")[:100],
            "callback_url": callback,
            "notification_id": await self._notification_id(),
            "billing_address": {
                "email_address": request.email or None,
                "phone_number": request.phone,
            },
        }
        payload = await self._call(
            "POST", "api/Transactions/SubmitOrderRequest", body=body, retries=0
        )
        tracking = payload.get("order_tracking_id") if isinstance(payload, Mapping) else None
        url = payload.get("redirect_url") if isinstance(payload, Mapping) else None
        if not tracking or not url:
            raise ProviderError("pesapal returned no order tracking id / redirect URL")
        return Checkout(reference=request.reference, url=str(url), provider_reference=str(tracking))

    async def verify_transaction(self, reference: str) -> Transaction:
        """``reference`` is Pesapal's order tracking id."""
        try:
            payload = await self._call(
                "GET",
                "api/Transactions/GetTransactionStatus",
                params={"orderTrackingId": reference},
            )
        except ProviderUnavailable:
            raise
        except ProviderError as exc:
            if exc.code in ("unauthorized", "invalid_consumer_key_or_secret_provided"):
                raise
            return Transaction(reference=reference, outcome=Outcome.UNKNOWN, message=exc.message)
        data = payload if isinstance(payload, Mapping) else {}
        currency = str(data.get("currency") or "").upper() or None
        code = str(data.get("status_code"))
        outcome = (
            STATUS_CODES.get(int(code), Outcome.UNKNOWN) if code.isdigit() else Outcome.UNKNOWN
        )
        return Transaction(
            reference=str(data.get("merchant_reference") or reference),
            outcome=outcome,
            amount_minor=to_minor(data.get("amount"), currency)
            if outcome is Outcome.SUCCEEDED
            else None,
            currency=currency,
            provider_reference=reference,
            message=str(data.get("payment_status_description") or data.get("description") or "")
            or None,
            raw=dict(data),
        )

    async def charge(self, request: ChargeRequest) -> Transaction:
        raise ProviderError(
            "pesapal has no merchant-initiated charge of a saved card: send a checkout link",
            code="unsupported",
        )

    async def refund(self, request: RefundRequest) -> Refund:
        tracking = request.provider_transaction_id
        if not tracking:
            raise ProviderError("a Pesapal refund needs the order tracking id", code="invalid")
        paid = await self.verify_transaction(tracking)
        code = paid.raw.get("confirmation_code")
        if paid.outcome is not Outcome.SUCCEEDED or not code:
            raise ProviderError("only a COMPLETED Pesapal payment can be refunded", code="invalid")
        body = {
            "confirmation_code": str(code),
            "amount": money.to_number(request.amount_minor, request.currency.upper()),
            "username": self.refund_username,
            "remarks": (request.reason or f"Refund {request.reference}")[:200],
        }
        payload = await self._call("POST", "api/Transactions/RefundRequest", body=body, retries=0)
        if not isinstance(payload, Mapping) or str(payload.get("status")) != "200":
            message = payload.get("message") if isinstance(payload, Mapping) else None
            raise ProviderError(str(message or "Pesapal refused the refund"), code="refused")
        return Refund(
            reference=request.reference,
            outcome=Outcome.PENDING,  # the merchant approves it at Pesapal
            provider_refund_id=tracking,
            amount_minor=request.amount_minor,
            currency=request.currency.upper(),
            message=str(payload.get("message") or ""),
        )

    async def refund_status(self, refund: Refund) -> Refund:
        if not refund.provider_refund_id:
            return refund
        order = await self.verify_transaction(refund.provider_refund_id)
        reversed_ = str(order.raw.get("status_code")) == "3"
        return Refund(
            reference=refund.reference,
            outcome=Outcome.SUCCEEDED if reversed_ else Outcome.PENDING,
            provider_refund_id=refund.provider_refund_id,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            message=order.message,
        )

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Read an IPN (it names the order only; confirm with ``GetTransactionStatus``)."""
        data = ipn_fields(body)
        tracking = data.get("OrderTrackingId")
        if not tracking:
            raise SignatureError("not a Pesapal IPN (no OrderTrackingId)")
        kind = data.get("OrderNotificationType") or "IPNCHANGE"
        return WebhookEvent(
            provider=self.name,
            event_id=f"{tracking}:{kind}",
            kind=EventKind.OTHER,
            reference=data.get("OrderMerchantReference"),
            provider_reference=tracking,
            raw={"needs_confirmation": True, **data},
        )


def ipn_fields(body: bytes) -> dict[str, str]:
    """The IPN's fields from a JSON object or a query-string body; ``{}`` otherwise."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        try:
            parsed = dict(parse_qsl(body.decode(), strict_parsing=True))
        except (ValueError, UnicodeDecodeError):
            return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): str(v) for k, v in parsed.items() if isinstance(v, str | int) and str(v)}
