"""Stripe adapter (reference: the shared provider reference, stripe.md).

* Form-encoded requests, lower-case currency, amounts in Stripe's minor unit: zero-decimal
  currencies (UGX, RWF, XOF, XAF, JPY, ...) are whole units, three-decimal ones have 3.
* Idempotency: every POST carries ``Idempotency-Key`` = our reference (payment id for
  checkout/charge, refund id for refunds), so a retry replays Stripe's first answer and
  never charges twice. Our reference also goes into ``metadata[nb_reference]`` so
  ``verify_transaction(reference)`` can find the PaymentIntent via the search API.
* Off-session charge: 402 ``card_declined`` / ``authentication_required`` -> FAILED.
* Webhooks: ``Stripe-Signature: t=..,v1=..`` = hex HMAC-SHA256(whsec as-is, "{t}.{body}"),
  any ``v1`` may match, ``|now - t| <= tolerance`` (300 s; ``now`` injectable).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
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

DEFAULT_BASE_URL = "https://api.stripe.com"
SIGNATURE_HEADER = "stripe-signature"
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
_RETRY_STATUSES = frozenset({409, 429})
_PI_OUTCOMES = {
    "succeeded": Outcome.SUCCEEDED,
    "processing": Outcome.PENDING,
    "requires_action": Outcome.PENDING,
    "requires_confirmation": Outcome.PENDING,
    "requires_capture": Outcome.PENDING,
    "canceled": Outcome.FAILED,
}
_REFUND_OUTCOMES = {
    "pending": Outcome.PENDING,
    "requires_action": Outcome.PENDING,
    "succeeded": Outcome.SUCCEEDED,
    "failed": Outcome.FAILED,
    "canceled": Outcome.FAILED,
}


def _shift(currency: str) -> int:
    """Stripe digits minus ISO digits (0 for nearly everything; ISK 2)."""
    code = currency.lower()
    stripe_digits = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    try:
        iso_digits = exponent(code.upper())
    except Exception as exc:  # kit raises a domain Invalid for unsupported currencies
        raise ProviderError(
            f"unsupported currency {currency}", code="unsupported_currency"
        ) from exc
    return stripe_digits - iso_digits


def to_stripe_amount(amount_minor: int, currency: str) -> int:
    shift = _shift(currency)
    if shift >= 0:
        return amount_minor * 10**shift
    if amount_minor % 10**-shift:
        raise ProviderError(f"{amount_minor} is not payable in {currency} on Stripe")
    return amount_minor // 10**-shift


def from_stripe_amount(amount: int, currency: str) -> int:
    shift = _shift(currency)
    if shift <= 0:
        return int(amount) * 10**-shift
    return int(amount) // 10**shift


def _unavailable(problem: str) -> ProviderUnavailable:
    return ProviderUnavailable(f"Stripe unavailable ({problem})", code="unavailable")


def _retry_reason(response: httpx.Response) -> str | None:
    """5xx, 409 (the same key in flight) and 429 (rate limited) are worth another try."""
    if response.status_code in _RETRY_STATUSES:
        return f"HTTP {response.status_code}"
    return http.server_error(response)


class StripeProvider:
    name = "stripe"

    def __init__(
        self,
        credentials: Credentials,
        *,
        now: Callable[[], float] | None = None,
        tolerance: int = 300,
        return_url: str | None = None,
        **options: Unpack[http.HttpOptions],
    ) -> None:
        self.credentials = credentials
        self.return_url = return_url  # success_url when the checkout names none
        self.endpoint = http.Endpoint.of(credentials, DEFAULT_BASE_URL, **options)
        self.now = now or time.time
        self.tolerance = tolerance

    # -- HTTP -----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = http.bearer(self.credentials.secret_key)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return await http.send(
            self.endpoint,
            method,
            path,
            headers=headers,
            form=form,
            params=params,
            retry_reason=_retry_reason,
            unavailable=_unavailable,
        )

    @staticmethod
    def _body(response: httpx.Response) -> dict[str, Any]:
        return http.json_object(response.content)

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        error = self._body(response).get("error") or {}
        message = str(error.get("message") or f"HTTP {response.status_code}")
        code = error.get("code") or error.get("type")
        raise ProviderError(message, code=code, status=response.status_code)

    # -- normalising ----------------------------------------------------------------------

    def _transaction(self, pi: Mapping[str, Any], reference: str) -> Transaction:
        status = str(pi.get("status") or "")
        error = pi.get("last_payment_error") or {}
        outcome = _PI_OUTCOMES.get(status, Outcome.UNKNOWN)
        if status == "requires_payment_method":
            outcome = Outcome.FAILED if error else Outcome.PENDING
        currency = str(pi.get("currency") or "")
        received = pi.get("amount_received") or pi.get("amount")
        message = f"{error.get('code')}: {error.get('message')}" if error else status
        return Transaction(
            reference=str((pi.get("metadata") or {}).get("nb_reference") or reference),
            outcome=outcome,
            amount_minor=from_stripe_amount(received, currency) if received and currency else None,
            currency=currency.upper() or None,
            provider_reference=pi.get("id"),
            authorization=pi.get("payment_method") if outcome is Outcome.SUCCEEDED else None,
            message=message or None,
            raw=dict(pi),
        )

    def _refund(self, data: Mapping[str, Any], reference: str) -> Refund:
        currency = str(data.get("currency") or "")
        amount = data.get("amount")
        status = str(data.get("status") or "")
        return Refund(
            reference=reference,
            outcome=_REFUND_OUTCOMES.get(status, Outcome.UNKNOWN),
            provider_refund_id=data.get("id"),
            amount_minor=from_stripe_amount(amount, currency) if amount and currency else None,
            currency=currency.upper() or None,
            message=data.get("failure_reason") or status or None,
        )

    # -- the PaymentProvider interface ----------------------------------------------------

    async def verify_credentials(self) -> bool:
        response = await self._call("GET", "/v1/balance")
        return response.status_code == 200

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        currency = request.currency.lower()
        success_url = request.callback_url or self.return_url
        if not success_url:
            raise ProviderError("Stripe Checkout needs a callbackUrl", code="callback_url")
        form = {
            "mode": "payment",
            "line_items[0][price_data][currency]": currency,
            "line_items[0][price_data][unit_amount]": str(
                to_stripe_amount(request.amount_minor, currency)
            ),
            "line_items[0][price_data][product_data][name]": request.description
            or f"Payment {request.reference}",
            "line_items[0][quantity]": "1",
            "success_url": success_url,
            "client_reference_id": request.reference,
            "customer_email": request.email,
            "metadata[nb_reference]": request.reference,
            "payment_intent_data[metadata][nb_reference]": request.reference,
            "payment_intent_data[setup_future_usage]": "off_session",
        }
        for key, value in request.metadata.items():
            form[f"metadata[{key}]"] = str(value)
        response = await self._call(
            "POST", "/v1/checkout/sessions", form=form, idempotency_key=request.reference
        )
        self._raise_for(response)
        session = self._body(response)
        return Checkout(
            reference=request.reference,
            url=session.get("url"),
            provider_reference=session.get("id"),
        )

    async def expire_checkout(self, provider_reference: str) -> None:
        """Close an open Checkout Session (a newer checkout superseded it)."""
        response = await self._call(
            "POST", f"/v1/checkout/sessions/{provider_reference}/expire", form={}
        )
        self._raise_for(response)

    async def verify_transaction(self, reference: str) -> Transaction:
        if reference.startswith("pi_"):
            response = await self._call("GET", f"/v1/payment_intents/{reference}")
            self._raise_for(response)
            return self._transaction(self._body(response), reference)
        query = f"metadata['nb_reference']:'{reference}'"
        response = await self._call("GET", "/v1/payment_intents/search", params={"query": query})
        self._raise_for(response)
        found = [self._transaction(pi, reference) for pi in self._body(response).get("data") or []]
        for outcome in (Outcome.SUCCEEDED, Outcome.PENDING, Outcome.FAILED):
            for tx in found:
                if tx.outcome is outcome:
                    return tx
        # Nothing yet (checkout not paid, or search not caught up): ask again later.
        return Transaction(reference=reference, outcome=Outcome.UNKNOWN, message="not found yet")

    async def charge(self, request: ChargeRequest) -> Transaction:
        if not (request.authorization and request.customer_ref):
            raise ProviderError("Stripe charge needs customer and payment_method", code="invalid")
        currency = request.currency.lower()
        form = {
            "amount": str(to_stripe_amount(request.amount_minor, currency)),
            "currency": currency,
            "customer": request.customer_ref,
            "payment_method": request.authorization,
            "off_session": "true",
            "confirm": "true",
            "metadata[nb_reference]": request.reference,
        }
        if request.description:
            form["description"] = request.description
        response = await self._call(
            "POST", "/v1/payment_intents", form=form, idempotency_key=request.reference
        )
        if response.status_code == 200:
            return self._transaction(self._body(response), request.reference)
        error = self._body(response).get("error") or {}
        if response.status_code in (401, 403) or error.get("type") == "idempotency_error":
            self._raise_for(response)
        pi = error.get("payment_intent") or {}
        return Transaction(
            reference=request.reference,
            outcome=Outcome.FAILED,
            provider_reference=pi.get("id"),
            message=f"{error.get('code') or error.get('type')}: {error.get('message')}",
            raw=dict(error),
        )

    async def refund(self, request: RefundRequest) -> Refund:
        payment_intent = request.provider_transaction_id
        if not payment_intent:
            payment_intent = (
                await self.verify_transaction(request.transaction_reference)
            ).provider_reference
        if not payment_intent:
            raise ProviderError("no Stripe payment_intent for this payment", code="not_found")
        form = {
            "payment_intent": payment_intent,
            "amount": str(to_stripe_amount(request.amount_minor, request.currency)),
            "metadata[nb_reference]": request.reference,
        }
        if request.reason in ("duplicate", "fraudulent", "requested_by_customer"):
            form["reason"] = request.reason
        response = await self._call(
            "POST", "/v1/refunds", form=form, idempotency_key=request.reference
        )
        self._raise_for(response)
        return self._refund(self._body(response), request.reference)

    async def refund_status(self, refund: Refund) -> Refund:
        if not refund.provider_refund_id:
            raise ProviderError("refund has no Stripe id yet", code="invalid")
        response = await self._call("GET", f"/v1/refunds/{refund.provider_refund_id}")
        self._raise_for(response)
        return self._refund(self._body(response), refund.reference)

    # -- webhooks -------------------------------------------------------------------------

    def _secret(self) -> str:
        secret = self.credentials.webhook_secret or self.credentials.extra.get("webhook_secret")
        if not secret:
            raise SignatureError("no Stripe webhook secret configured")
        return secret

    def verify_signature(self, body: bytes, header: str) -> None:
        timestamp: int | None = None
        candidates: list[str] = []
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key == "t":
                try:
                    timestamp = int(value)
                except ValueError as exc:
                    raise SignatureError("bad timestamp in Stripe-Signature") from exc
            elif key == "v1":
                candidates.append(value.strip().lower())
        if timestamp is None or not candidates:
            raise SignatureError("Stripe-Signature lacks t= or v1=")
        signed = f"{timestamp}.".encode() + body
        expected = hmac.new(self._secret().encode(), signed, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            raise SignatureError("Stripe signature does not match")
        if abs(self.now() - timestamp) > self.tolerance:
            raise SignatureError("Stripe-Signature timestamp outside the tolerance")

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        header = lowered.get(SIGNATURE_HEADER, "")
        if not header.strip():
            raise SignatureError("missing Stripe-Signature header")
        self.verify_signature(body, header)
        try:
            event = json.loads(body)
        except ValueError as exc:
            raise ProviderError("webhook body is not JSON", code="malformed") from exc
        obj = (event.get("data") or {}).get("object") if isinstance(event, dict) else None
        if not isinstance(obj, dict) or not event.get("id"):
            raise ProviderError("webhook is not a Stripe event", code="malformed")
        return self._event(event, obj)

    def _event(self, event: Mapping[str, Any], obj: Mapping[str, Any]) -> WebhookEvent:
        type_ = str(event.get("type") or "")
        currency = str(obj.get("currency") or "")
        metadata = obj.get("metadata") or {}
        kind, outcome = EventKind.OTHER, None
        amount = obj.get("amount")
        reference = metadata.get("nb_reference")
        provider_reference = obj.get("id")
        if type_.startswith("refund."):
            kind = EventKind.REFUND_UPDATED
            outcome = _REFUND_OUTCOMES.get(str(obj.get("status")), Outcome.UNKNOWN)
        elif type_ == "payment_intent.succeeded":
            kind, outcome = EventKind.PAYMENT_SUCCEEDED, Outcome.SUCCEEDED
            amount = obj.get("amount_received") or amount
        elif type_ == "payment_intent.payment_failed":
            kind, outcome = EventKind.PAYMENT_FAILED, Outcome.FAILED
        elif type_.startswith("checkout.session."):
            amount = obj.get("amount_total")
            reference = obj.get("client_reference_id") or reference
            provider_reference = obj.get("payment_intent") or obj.get("id")
            paid = obj.get("payment_status") == "paid"
            if type_ in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
                if paid:
                    kind, outcome = EventKind.PAYMENT_SUCCEEDED, Outcome.SUCCEEDED
            elif type_ in ("checkout.session.async_payment_failed", "checkout.session.expired"):
                kind, outcome = EventKind.PAYMENT_FAILED, Outcome.FAILED
        known = bool(currency) and isinstance(amount, int)
        return WebhookEvent(
            provider=self.name,
            event_id=str(event["id"]),
            kind=kind,
            reference=reference,
            outcome=outcome,
            amount_minor=from_stripe_amount(int(amount or 0), currency) if known else None,
            currency=currency.upper() or None,
            provider_reference=provider_reference,
            raw=dict(event),
        )
