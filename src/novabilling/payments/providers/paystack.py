"""Paystack adapter (reference: the shared provider reference, paystack.md).

* Amounts: Paystack takes integer subunits (2 digits, also for XOF per Paystack's
  summaries); we convert from our minor units with the ISO exponent of ``kit.money``.
* Idempotency: our reference is Paystack's ``reference``. A retried charge whose first
  attempt landed answers ``duplicate_reference``; we report UNKNOWN (a reconcile job
  verifies) instead of charging again. Refunds have no idempotency key on Paystack: the
  create call is not retried blindly — after a transport failure we look the refund up by
  the ``merchant_note`` carrying our refund reference.
* Webhooks: ``x-paystack-signature`` = hex HMAC-SHA512(secret key, raw body). Paystack has
  no event id; we derive ``charge.success:<transaction id>`` and
  ``refund.<status>:<refund_reference or transaction_reference>:<amount>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Unpack

import httpx

from novabilling.kit.money import exponent
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

DEFAULT_BASE_URL = "https://api.paystack.co"
SIGNATURE_HEADER = "x-paystack-signature"
SUPPORTED_CURRENCIES = frozenset({"NGN", "GHS", "ZAR", "KES", "USD", "XOF"})
_SUBUNIT_DIGITS = 2

_TX_OUTCOMES = {
    "success": Outcome.SUCCEEDED,
    "failed": Outcome.FAILED,
    "abandoned": Outcome.PENDING,  # the caller's own timeout turns it into FAILED
    "ongoing": Outcome.PENDING,
    "pending": Outcome.PENDING,
    "processing": Outcome.PENDING,
    "queued": Outcome.PENDING,
    "send_otp": Outcome.PENDING,
    "send_pin": Outcome.PENDING,
    "pay_offline": Outcome.PENDING,
}
_REFUND_OUTCOMES = {
    "pending": Outcome.PENDING,
    "processing": Outcome.PENDING,
    "needs-attention": Outcome.PENDING,
    "processed": Outcome.SUCCEEDED,
    "failed": Outcome.FAILED,
}


def _scale(currency: str) -> int:
    code = currency.upper()
    if code not in SUPPORTED_CURRENCIES:
        raise ProviderError(f"Paystack does not support {code}", code="unsupported_currency")
    return 10 ** (_SUBUNIT_DIGITS - exponent(code))


def to_paystack_amount(amount_minor: int, currency: str) -> int:
    return amount_minor * _scale(currency)


def from_paystack_amount(amount: int | str, currency: str) -> int:
    subunits = int(str(amount))
    scale = _scale(currency)
    if subunits % scale:
        raise ProviderError(f"{amount} {currency} subunits is not a whole minor amount")
    return subunits // scale


def _unavailable(problem: str) -> ProviderUnavailable:
    return ProviderUnavailable(f"Paystack unavailable ({problem})", code="unavailable")


class PaystackProvider:
    name = "paystack"

    def __init__(self, credentials: Credentials, **options: Unpack[http.HttpOptions]) -> None:
        self.credentials = credentials
        self.endpoint = http.Endpoint.of(credentials, DEFAULT_BASE_URL, **options)

    # -- HTTP -----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        payload: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        retries: int | None = None,
    ) -> httpx.Response:
        """One request with retries on timeouts/5xx; ProviderUnavailable when exhausted."""
        return await http.send(
            self.endpoint,
            method,
            path,
            headers=http.bearer(self.credentials.secret_key),
            body=payload,
            params=params,
            retries=retries,
            unavailable=_unavailable,
        )

    @staticmethod
    def _body(response: httpx.Response) -> dict[str, Any]:
        return http.json_object(response.content)

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        body = self._body(response)
        message = str(body.get("message") or f"HTTP {response.status_code}")
        code = body.get("code") or ("invalid_key" if response.status_code == 401 else None)
        raise ProviderError(message, code=code, status=response.status_code)

    # -- normalising ----------------------------------------------------------------------

    def _transaction(self, data: Mapping[str, Any], reference: str) -> Transaction:
        status = str(data.get("status") or "")
        outcome = _TX_OUTCOMES.get(status, Outcome.UNKNOWN)
        if status == "reversed":  # refunded / charged back: it was paid if paid_at is set
            paid = data.get("paid_at") or data.get("paidAt")
            outcome = Outcome.SUCCEEDED if paid else Outcome.FAILED
        currency = str(data.get("currency") or "").upper() or None
        amount = data.get("amount")
        auth = data.get("authorization")
        auth = auth if isinstance(auth, dict) else {}
        reusable = bool(auth.get("reusable"))
        return Transaction(
            reference=str(data.get("reference") or reference),
            outcome=outcome,
            amount_minor=from_paystack_amount(amount, currency) if amount and currency else None,
            currency=currency,
            provider_reference=str(data["id"]) if data.get("id") is not None else None,
            authorization=str(auth.get("authorization_code")) if reusable else None,
            message=data.get("gateway_response") or status or None,
            raw=dict(data),
        )

    def _refund(self, data: Mapping[str, Any], reference: str) -> Refund:
        currency = str(data.get("currency") or "").upper() or None
        amount = data.get("amount")
        status = str(data.get("status") or "")
        return Refund(
            reference=reference,
            outcome=_REFUND_OUTCOMES.get(status, Outcome.UNKNOWN),
            provider_refund_id=str(data["id"]) if data.get("id") is not None else None,
            amount_minor=from_paystack_amount(amount, currency) if amount and currency else None,
            currency=currency,
            message=status or None,
        )

    # -- the PaymentProvider interface ----------------------------------------------------

    async def verify_credentials(self) -> bool:
        response = await self._call("GET", "/bank", params={"perPage": "1"})
        return response.status_code == 200

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        payload: dict[str, Any] = {
            "email": request.email,
            "amount": to_paystack_amount(request.amount_minor, request.currency),
            "currency": request.currency.upper(),
            "reference": request.reference,
            "metadata": {**request.metadata, "nb_reference": request.reference},
        }
        if request.callback_url:
            payload["callback_url"] = request.callback_url
        response = await self._call("POST", "/transaction/initialize", payload=payload)
        self._raise_for(response)
        data = self._body(response).get("data") or {}
        return Checkout(
            reference=request.reference,
            url=data.get("authorization_url"),
            provider_reference=data.get("access_code"),
        )

    async def verify_transaction(self, reference: str) -> Transaction:
        response = await self._call("GET", f"/transaction/verify/{reference}")
        if response.status_code in (400, 404):
            message = str(self._body(response).get("message") or "not found")
            return Transaction(reference=reference, outcome=Outcome.UNKNOWN, message=message)
        self._raise_for(response)
        return self._transaction(self._body(response).get("data") or {}, reference)

    async def charge(self, request: ChargeRequest) -> Transaction:
        if not request.authorization:
            raise ProviderError("Paystack charge needs an authorization_code", code="invalid")
        payload = {
            "email": request.email,
            "amount": to_paystack_amount(request.amount_minor, request.currency),
            "currency": request.currency.upper(),
            "authorization_code": request.authorization,
            "reference": request.reference,
        }
        response = await self._call("POST", "/transaction/charge_authorization", payload=payload)
        body = self._body(response)
        if response.status_code == 401:
            self._raise_for(response)
        if response.status_code == 400 and body.get("code") == "duplicate_reference":
            # An earlier attempt with this reference landed: never charge twice.
            message = "duplicate reference: an earlier attempt exists; verify later"
            outcome = Outcome.UNKNOWN
            return Transaction(reference=request.reference, outcome=outcome, message=message)
        if response.status_code >= 400:
            message = str(body.get("message") or f"HTTP {response.status_code}")
            return Transaction(reference=request.reference, outcome=Outcome.FAILED, message=message)
        data = body.get("data") or {}
        if data.get("paused"):
            return Transaction(
                reference=request.reference,
                outcome=Outcome.PENDING,
                message=f"customer authentication required: {data.get('authorization_url')}",
                raw=dict(data),
            )
        return self._transaction(data, request.reference)

    async def refund(self, request: RefundRequest) -> Refund:
        payload = {
            "transaction": request.provider_transaction_id or request.transaction_reference,
            "amount": to_paystack_amount(request.amount_minor, request.currency),
            "currency": request.currency.upper(),
            "merchant_note": f"nb-refund:{request.reference}",
            "customer_note": request.reason or f"Refund for {request.transaction_reference}",
        }
        try:
            response = await self._call("POST", "/refund", payload=payload, retries=0)
        except ProviderUnavailable:
            existing = await self._find_refund(request)
            if existing is None:
                raise
            return existing
        self._raise_for(response)
        return self._refund(self._body(response).get("data") or {}, request.reference)

    async def _find_refund(self, request: RefundRequest) -> Refund | None:
        params = {"transaction": request.transaction_reference, "perPage": "100"}
        response = await self._call("GET", "/refund", params=params)
        self._raise_for(response)
        for data in self._body(response).get("data") or []:
            if data.get("merchant_note") == f"nb-refund:{request.reference}":
                return self._refund(data, request.reference)
        return None

    async def refund_status(self, refund: Refund) -> Refund:
        if not refund.provider_refund_id:
            raise ProviderError("refund has no Paystack id yet", code="invalid")
        response = await self._call("GET", f"/refund/{refund.provider_refund_id}")
        self._raise_for(response)
        return self._refund(self._body(response).get("data") or {}, refund.reference)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        signature = lowered.get(SIGNATURE_HEADER, "").strip().lower()
        if not signature:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        key = self.credentials.secret_key.encode()
        expected = hmac.new(key, body, hashlib.sha512).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise SignatureError("Paystack signature does not match")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise ProviderError("webhook body is not JSON", code="malformed") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            raise ProviderError("webhook body has no data object", code="malformed")
        return self._event(str(payload.get("event") or ""), payload["data"], payload)

    def _event(
        self, event: str, data: Mapping[str, Any], payload: Mapping[str, Any]
    ) -> WebhookEvent:
        currency = str(data.get("currency") or "").upper() or None
        amount = data.get("amount")
        amount_minor = (
            from_paystack_amount(amount, currency)
            if amount not in (None, "") and currency in SUPPORTED_CURRENCIES
            else None
        )
        if event.startswith("refund."):
            status = str(data.get("status") or event.removeprefix("refund."))
            anchor = data.get("refund_reference") or data.get("transaction_reference")
            return WebhookEvent(
                provider=self.name,
                event_id=f"{event}:{anchor}:{amount}",
                kind=EventKind.REFUND_UPDATED,
                reference=data.get("transaction_reference"),
                outcome=_REFUND_OUTCOMES.get(status, Outcome.UNKNOWN),
                amount_minor=amount_minor,
                currency=currency,
                provider_reference=data.get("refund_reference"),
                raw=dict(payload),
            )
        anchor = data.get("id") if data.get("id") is not None else data.get("reference")
        succeeded = event == "charge.success" and data.get("status", "success") == "success"
        return WebhookEvent(
            provider=self.name,
            event_id=f"{event}:{anchor}",
            kind=EventKind.PAYMENT_SUCCEEDED if succeeded else EventKind.OTHER,
            reference=data.get("reference"),
            outcome=Outcome.SUCCEEDED if succeeded else None,
            amount_minor=amount_minor,
            currency=currency,
            provider_reference=str(data["id"]) if data.get("id") is not None else None,
            raw=dict(payload),
        )
