"""Flutterwave v3 adapter (reference: shared/reference/providers/flutterwave.md).

* Auth: ``Authorization: Bearer <secret key>``; base URL ``https://api.flutterwave.com``
  (paths carry ``/v3``), or ``credentials.base_url`` (simulator, sandbox proxy).
* Money: Flutterwave takes MAJOR units. Minor units are converted exactly with the
  currency's exponent from ``kit.money`` (UGX/XOF have none); answers are parsed with
  ``Decimal`` and converted back exactly (an inexact amount becomes ``None``).
* Idempotency: our payment reference is Flutterwave's ``tx_ref``. After a 503/timeout on
  a tokenized charge the adapter asks ``verify_by_reference`` before retrying, so a charge
  that went through is reported, never repeated (convention 10).
* Webhooks: accepted when ``verif-hash`` equals the secret hash (constant time) or
  ``flutterwave-signature`` is base64 HMAC-SHA256(secret hash, raw body) (or, per the
  v4-era doc variant, equals the secret hash). Both the v3 envelope and the legacy flat
  camelCase body are parsed. Event id = ``"<data.id>:<status>"``.

Credentials: ``secret_key`` = FLWSECK..., ``webhook_secret`` (or ``extra["secret_hash"]``
/ ``extra["secretHash"]``) = the dashboard secret hash, ``extra["country"]`` = ISO-2
country for tokenized charges (default derived from the currency, else ``NG``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any, Unpack

from novabilling.kit import money
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

DEFAULT_BASE_URL = "https://api.flutterwave.com"

_STATUS_OUTCOME = {
    "successful": Outcome.SUCCEEDED,
    "success": Outcome.SUCCEEDED,
    "completed": Outcome.SUCCEEDED,
    "failed": Outcome.FAILED,
    "cancelled": Outcome.FAILED,
    "canceled": Outcome.FAILED,
    "pending": Outcome.PENDING,
    "pending auth": Outcome.PENDING,
    "processing": Outcome.PENDING,
}
_CURRENCY_COUNTRY = {
    "NGN": "NG", "KES": "KE", "GHS": "GH", "ZAR": "ZA", "UGX": "UG", "TZS": "TZ",
    "RWF": "RW", "ZMW": "ZM", "MWK": "MW", "EGP": "EG", "MAD": "MA", "XOF": "CI",
    "XAF": "CM", "GBP": "GB", "EUR": "FR", "USD": "US", "CAD": "CA",
}  # fmt: skip


def to_major(amount_minor: int, currency: str) -> int | float:
    """Minor units -> the JSON number Flutterwave expects (major units), exactly.

    ``kit.money.to_number`` renders the exact decimal string (``"50.25"``) and only then
    makes it a JSON number, so the wire text is exact; no arithmetic is done on it.
    """
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ProviderError("amount_minor must be a positive integer", code="invalid_amount")
    if currency.upper() not in money.CURRENCIES:
        raise ProviderError(f"unsupported currency {currency!r}", code="currency")
    return money.to_number(amount_minor, currency.upper())


def to_minor(value: Any, currency: str | None) -> int | None:
    """A Flutterwave major amount (Decimal/int/str) -> minor units, or None if inexact."""
    if value is None or isinstance(value, bool) or currency is None:
        return None
    known = money.CURRENCIES.get(currency.upper())
    if known is None:
        return None
    try:
        scaled = Decimal(str(value)).scaleb(known.decimals)
    except ArithmeticError:
        return None
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def outcome_of(status: Any) -> Outcome:
    """Payment status -> outcome; unknown values are UNKNOWN (never FAILED)."""
    return _STATUS_OUTCOME.get(str(status or "").strip().lower(), Outcome.UNKNOWN)


def _unavailable(problem: str) -> ProviderUnavailable:
    return ProviderUnavailable(f"flutterwave unavailable: {problem}", status=503)


class FlutterwaveProvider:
    name = "flutterwave"

    def __init__(
        self,
        credentials: Credentials,
        *,
        return_url: str | None = None,
        **options: Unpack[http.HttpOptions],
    ) -> None:
        self.credentials = credentials
        self.return_url = return_url  # redirect_url when the checkout names none
        endpoint = http.Endpoint.of(credentials, DEFAULT_BASE_URL, **options)
        self.endpoint = replace(endpoint, base_url=endpoint.base_url.removesuffix("/v3"))

    # ---- HTTP -------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        retry: bool = True,
    ) -> tuple[int, dict[str, Any]]:
        """One API call with retries on 5xx/timeouts; (status, parsed body) otherwise.

        ``retry=False``: a single attempt (a non-idempotent POST), still raising
        ``ProviderUnavailable`` on 5xx/timeouts.
        """
        response = await http.send(
            self.endpoint,
            method,
            path,
            headers=http.bearer(self.credentials.secret_key),
            body=body,
            params=params,
            retries=None if retry else 0,
            unavailable=_unavailable,
            deadline=False,
        )
        return response.status_code, http.json_object(response.content, exact=True)

    @staticmethod
    def _raise_for(status: int, payload: Mapping[str, Any]) -> None:
        if status < 400:
            return
        message = str(payload.get("message") or f"HTTP {status}")
        code = "unauthorized" if status == 401 else "invalid_request"
        raise ProviderError(message, code=code, status=status)

    # ---- PaymentProvider ----------------------------------------------------------------

    async def verify_credentials(self) -> bool:
        status, payload = await self._call("GET", "/v3/banks/NG")
        return status == 200 and payload.get("status") == "success"

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        body: dict[str, Any] = {
            "tx_ref": request.reference,
            "amount": to_major(request.amount_minor, request.currency),
            "currency": request.currency.upper(),
            "redirect_url": request.callback_url or self.return_url or "",
            "customer": {"email": request.email},
            "meta": dict(request.metadata),
        }
        if request.phone:
            body["customer"]["phonenumber"] = request.phone  # no underscore on /payments
        if request.description:
            body["customizations"] = {"description": request.description}
        status, payload = await self._call("POST", "/v3/payments", body=body)
        self._raise_for(status, payload)
        link = (payload.get("data") or {}).get("link")
        if not link:
            raise ProviderError("flutterwave returned no hosted link", status=status)
        return Checkout(reference=request.reference, url=str(link))

    async def verify_transaction(self, reference: str) -> Transaction:
        status, payload = await self._call(
            "GET", "/v3/transactions/verify_by_reference", params={"tx_ref": reference}
        )
        if status in (400, 404) and not payload.get("data"):
            # No transaction yet: the customer has not paid (or the link was abandoned).
            message = str(payload.get("message") or "not found")
            return Transaction(reference=reference, outcome=Outcome.PENDING, message=message)
        self._raise_for(status, payload)
        return self._transaction(reference, payload)

    async def charge(self, request: ChargeRequest) -> Transaction:
        if not request.authorization:
            raise ProviderError("a card token is required", code="missing_authorization")
        currency = request.currency.upper()
        body = {
            "token": request.authorization,
            "email": request.email,  # must be the email the token was created with
            "currency": currency,
            "country": self.credentials.extra.get("country")
            or _CURRENCY_COUNTRY.get(currency, "NG"),
            "amount": to_major(request.amount_minor, currency),
            "tx_ref": request.reference,
            "narration": request.description or "",
        }
        for attempt in range(1 + self.endpoint.max_retries):
            await self.endpoint.pause(attempt)
            try:
                status, payload = await self._call(
                    "POST", "/v3/tokenized-charges", body=body, retry=False
                )
            except ProviderUnavailable:
                # The charge may have gone through (flutterwave.md §1, §8.9): ask before
                # any retry, and only re-http.send when Flutterwave has no record of tx_ref.
                known = await self.verify_transaction(request.reference)
                if known.outcome in (Outcome.SUCCEEDED, Outcome.FAILED):
                    return known
                if known.provider_reference:  # recorded, still in flight: reconcile later
                    return replace(known, outcome=Outcome.UNKNOWN, message="timed out; pending")
                continue
            data = payload.get("data")
            if isinstance(data, Mapping) and data.get("status"):
                return self._transaction(request.reference, payload)
            self._raise_for(status, payload)
            raise ProviderError(str(payload.get("message") or "unexpected answer"), status=status)
        raise ProviderUnavailable("flutterwave tokenized charge: no answer after retries")

    async def refund(self, request: RefundRequest) -> Refund:
        transaction_id = request.provider_transaction_id
        if not transaction_id:
            found = await self.verify_transaction(request.transaction_reference)
            transaction_id = found.provider_reference
            if not transaction_id:
                raise ProviderError("transaction not found at flutterwave", code="not_found")
        body = {
            "amount": to_major(request.amount_minor, request.currency),
            "comments": request.reason or request.reference,
        }
        # A refund POST is not idempotent at Flutterwave: one attempt only.
        status, payload = await self._call(
            "POST", f"/v3/transactions/{transaction_id}/refund", body=body, retry=False
        )
        self._raise_for(status, payload)
        return self._refund(request.reference, payload, request.currency)

    async def refund_status(self, refund: Refund) -> Refund:
        if not refund.provider_refund_id:
            return refund
        status, payload = await self._call("GET", f"/v3/refunds/{refund.provider_refund_id}")
        self._raise_for(status, payload)
        return self._refund(refund.reference, payload, refund.currency)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        self._check_signature(body, headers)
        payload = http.json_object(body, exact=True)
        if not payload:
            raise SignatureError("webhook body is not a JSON object")
        if isinstance(payload.get("data"), Mapping) and "event" in payload:
            event_name = str(payload["event"])
            data: Mapping[str, Any] = payload["data"]
            tx_ref, flw_ref = data.get("tx_ref"), data.get("flw_ref")
        else:  # legacy flat camelCase body (txRef, flwRef, "event.type")
            event_name = "charge.completed" if payload.get("txRef") else "other"
            data = payload
            tx_ref, flw_ref = data.get("txRef"), data.get("flwRef")
        ident = data.get("id") or flw_ref
        if ident is None:
            raise SignatureError("webhook body carries no transaction id")
        status = str(data.get("status") or "").lower()
        currency = str(data["currency"]).upper() if data.get("currency") else None
        outcome = outcome_of(status) if event_name == "charge.completed" else None
        kind = EventKind.OTHER
        if outcome is Outcome.SUCCEEDED:
            kind = EventKind.PAYMENT_SUCCEEDED
        elif outcome is Outcome.FAILED:
            kind = EventKind.PAYMENT_FAILED
        return WebhookEvent(
            provider=self.name,
            event_id=f"{ident}:{status}" if status else str(ident),
            kind=kind,
            reference=str(tx_ref) if tx_ref else None,
            outcome=outcome,
            amount_minor=to_minor(data.get("amount"), currency),
            currency=currency,
            provider_reference=str(data["id"]) if data.get("id") is not None else flw_ref,
            raw=payload,
        )

    # ---- helpers ----------------------------------------------------------------------

    def secret_hash(self) -> str | None:
        extra = self.credentials.extra
        return (
            self.credentials.webhook_secret or extra.get("secret_hash") or extra.get("secretHash")
        )

    def _check_signature(self, body: bytes, headers: Mapping[str, str]) -> None:
        secret = self.secret_hash()
        if not secret:
            raise SignatureError("no flutterwave secret hash configured")
        lowered = {k.lower(): v for k, v in headers.items()}
        verif_hash = lowered.get("verif-hash")
        if verif_hash and hmac.compare_digest(verif_hash.encode(), secret.encode()):
            return
        signature = lowered.get("flutterwave-signature")
        if signature:
            mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
            expected = base64.b64encode(mac).decode()
            if hmac.compare_digest(signature.encode(), expected.encode()):
                return
            if hmac.compare_digest(signature.encode(), secret.encode()):
                return  # v4-era doc variant: the header carries the secret hash itself
        if not verif_hash and not signature:
            raise SignatureError("missing verif-hash / flutterwave-signature header")
        raise SignatureError("flutterwave webhook signature mismatch")

    def _transaction(self, reference: str, payload: Mapping[str, Any]) -> Transaction:
        data = payload.get("data") or {}
        if not isinstance(data, Mapping):
            raise ProviderError("unexpected flutterwave answer: data is not an object")
        currency = str(data["currency"]).upper() if data.get("currency") else None
        card = data.get("card") if isinstance(data.get("card"), Mapping) else {}
        tx_ref = data.get("tx_ref")
        if tx_ref is not None and str(tx_ref) != reference:
            raise ProviderError(f"flutterwave answered for tx_ref {tx_ref!r}", code="mismatch")
        return Transaction(
            reference=reference,
            outcome=outcome_of(data.get("status")),
            amount_minor=to_minor(data.get("amount"), currency),
            currency=currency,
            provider_reference=str(data["id"]) if data.get("id") is not None else None,
            authorization=card.get("token") if card else None,
            message=data.get("processor_response") or payload.get("message"),
            raw=payload,
        )

    def _refund(self, reference: str, payload: Mapping[str, Any], currency: str | None) -> Refund:
        data = payload.get("data") or {}
        if not isinstance(data, Mapping):
            raise ProviderError("unexpected flutterwave refund answer")
        status = str(data.get("status") or "").lower()
        outcome = {"completed": Outcome.SUCCEEDED, "failed": Outcome.FAILED}.get(
            status, Outcome.PENDING
        )
        return Refund(
            reference=reference,
            outcome=outcome,
            provider_refund_id=str(data["id"]) if data.get("id") is not None else None,
            amount_minor=to_minor(data.get("amount_refunded"), currency),
            currency=currency,
            message=status or str(payload.get("message") or ""),
        )
