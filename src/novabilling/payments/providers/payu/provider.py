"""``PayuProvider``: PayU (South Africa) over its SOAP API and Redirect Payment Page.

* Checkout: ``setTransaction`` (``PAYMENT``, our reference as ``merchantReference``, the
  per-tenant ``notificationUrl``, ``storePaymentMethod`` so a card can be charged again)
  -> ``payUReference``; the customer pays on ``{base}/rpp.do?PayUReference=...``. Not
  re-sent after a lost answer (an unpaid orphan is harmless, a second payable one is not).
* Verify: ``getTransaction`` by ``merchantReference`` (ours) or ``payUReference``.
  ``transactionState``: ``SUCCESSFUL`` paid, ``FAILED`` failed, ``NEW``/``PROCESSING`` not
  final. Amounts are ``amountInCents`` (two-decimal currencies only).
* Recurring charge: ``doTransaction`` ``PAYMENT`` with ``AuthenticationType`` ``TOKEN`` and
  the stored card's ``pmId``. After a lost answer the same reference is sent once more; an
  answer to that retry that is not ``SUCCESSFUL`` is UNKNOWN (an earlier attempt may have
  gone through: reconcile asks ``getTransaction``), never a second charge.
* Refund: ``doTransaction`` ``CREDIT`` against the original ``payUReference`` (one attempt);
  ``refund_status`` asks ``getTransaction`` for the credit's own ``payUReference``.
* IPN (``PaymentNotification`` XML) is unsigned: ``parse_webhook`` only reads it; the
  caller confirms with ``getTransaction`` (the original trusted the body: we do not).

Credentials: ``secret_key`` = safeKey, ``public_key`` = apiKey (the SOAP password);
``extra``: ``apiUsername`` (the SOAP username), ``environment`` (``staging`` |
``production``), ``notifyUrl`` (our IPN URL), ``returnUrl``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

import httpx

from novabilling.kit.money import exponent
from novabilling.payments.providers import http, xmlwire
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
from novabilling.payments.providers.payu import soap

BASE_URLS = {"staging": "https://staging.payu.co.za", "production": "https://secure.payu.co.za"}
API_PATH = "/service/PayUAPI"
RPP_PATH = "/rpp.do"
STATES = {
    "SUCCESSFUL": Outcome.SUCCEEDED,
    "FAILED": Outcome.FAILED,
    "NEW": Outcome.PENDING,
    "PROCESSING": Outcome.PENDING,
}


def _cents(amount_minor: int, currency: str) -> str:
    if exponent(currency) != 2:
        raise ProviderError(
            f"PayU takes amounts in cents: {currency} has no cents", code="currency"
        )
    return str(amount_minor)


def _minor(value: Any) -> int | None:
    text = xmlwire.text_of(value)
    return int(text) if text and text.isdigit() else None


def _stored_card(methods: Any) -> str | None:
    """The ``pmId`` of the card used (``paymentMethodsUsed/<method>/pmId``), if PayU
    stored it."""
    if isinstance(methods, list):
        return next((t for t in map(_stored_card, methods) if t), None)
    if not isinstance(methods, dict):
        return None
    if token := xmlwire.text_of(methods.get("pmId")):
        return token
    return next((t for t in map(_stored_card, methods.values()) if t), None)


def _branch(fields: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = fields.get(name)
    return value if isinstance(value, dict) else {}


def _unavailable(problem: str) -> ProviderUnavailable:
    return ProviderUnavailable(f"payu unavailable ({problem})", code="unavailable", status=503)


def _retry_reason(response: httpx.Response) -> str | None:
    if response.status_code >= 500 and soap.server_fault(response.content):
        return f"HTTP {response.status_code}"
    return None


class PayuProvider:
    name = "payu"

    def __init__(self, credentials: Credentials, **options: Unpack[http.HttpOptions]) -> None:
        extra = credentials.extra
        self.credentials = credentials
        self.safe_key = credentials.secret_key
        self.username = extra.get("apiUsername", "")
        self.password = credentials.public_key or extra.get("apiKey", "")
        production = extra.get("environment", "staging").strip().lower() == "production"
        base = BASE_URLS["production" if production else "staging"]
        self.endpoint = http.Endpoint.of(credentials, base, **options)
        self.notify_url = extra.get("notifyUrl")
        self.return_url = extra.get("returnUrl")

    # -- SOAP -----------------------------------------------------------------------------

    async def _soap(
        self, operation: str, body: Mapping[str, Any], *, retries: int | None = None
    ) -> dict[str, Any]:
        """``operation``'s ``return`` fields; a client fault raises ``ProviderError``."""
        if not self.username:
            raise ProviderError(
                "payu credentials need apiUsername (the SOAP username PayU issues)",
                code="configuration",
            )
        document = soap.envelope(
            operation,
            {"Api": soap.API_VERSION, "Safekey": self.safe_key, **body},
            username=self.username,
            password=self.password,
        )
        response = await http.send(
            self.endpoint,
            "POST",
            API_PATH,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
            content=document,
            retries=retries,
            retry_reason=_retry_reason,
            unavailable=_unavailable,
        )
        answer = soap.read(response.content)
        if answer is None:
            raise ProviderError(f"unreadable PayU answer (HTTP {response.status_code})")
        if answer.fault_code:
            code = "rejected" if answer.client_fault else "fault"
            raise ProviderError(
                answer.fault or "SOAP fault", code=code, status=response.status_code
            )
        return answer.fields

    def _transaction(self, fields: Mapping[str, Any], reference: str) -> Transaction:
        state = (xmlwire.text_of(fields.get("transactionState")) or "").upper()
        basket = _branch(fields, "basket")
        token = _stored_card(fields.get("paymentMethodsUsed"))
        currency = (xmlwire.text_of(basket.get("currencyCode")) or "").upper() or None
        message = xmlwire.text_of(fields.get("resultMessage")) or xmlwire.text_of(
            fields.get("displayMessage")
        )
        return Transaction(
            reference=xmlwire.text_of(fields.get("merchantReference")) or reference,
            outcome=STATES.get(state, Outcome.UNKNOWN),
            amount_minor=_minor(basket.get("amountInCents")),
            currency=currency,
            provider_reference=xmlwire.text_of(fields.get("payUReference")),
            authorization=token,
            message=message or state or None,
            raw=dict(fields),
        )

    # -- the PaymentProvider interface ----------------------------------------------------

    async def verify_credentials(self) -> bool:
        try:
            await self._soap(
                "getTransaction", {"AdditionalInformation": {"merchantReference": "nb-check"}}
            )
        except ProviderUnavailable:
            raise
        except ProviderError as exc:
            if exc.code in ("rejected", "configuration"):
                return False
            raise
        return True

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        currency = request.currency.upper()
        return_url = request.callback_url or self.return_url
        body = {
            "TransactionType": "PAYMENT",
            "AdditionalInformation": {
                "merchantReference": request.reference,
                "notificationUrl": self.notify_url,
                "returnUrl": return_url,
                "cancelUrl": return_url,
                "supportedPaymentMethods": "CREDITCARD",
                "secure3d": "true",
                "demoMode": "false",
            },
            "storePaymentMethod": "true",
            "Customer": {"email": request.email or None, "mobile": request.phone},
            "Basket": {
                "description": (request.description or "Payment")[:64],
                "amountInCents": _cents(request.amount_minor, currency),
                "currencyCode": currency,
            },
        }
        fields = await self._soap("setTransaction", body, retries=0)
        payu_reference = xmlwire.text_of(fields.get("payUReference"))
        if xmlwire.text_of(fields.get("successful")) != "true" or not payu_reference:
            raise ProviderError(
                xmlwire.text_of(fields.get("resultMessage")) or "PayU refused the transaction",
                code=xmlwire.text_of(fields.get("resultCode")),
            )
        return Checkout(
            reference=request.reference,
            url=f"{self.endpoint.base_url}{RPP_PATH}?PayUReference={payu_reference}",
            provider_reference=payu_reference,
        )

    async def verify_transaction(self, reference: str) -> Transaction:
        key = "merchantReference"
        fields = await self._soap("getTransaction", {"AdditionalInformation": {key: reference}})
        if not xmlwire.text_of(fields.get("transactionState")):
            message = xmlwire.text_of(fields.get("resultMessage")) or "not found"
            return Transaction(reference=reference, outcome=Outcome.UNKNOWN, message=message)
        return self._transaction(fields, reference)

    async def charge(self, request: ChargeRequest) -> Transaction:
        if not request.authorization:
            raise ProviderError("a PayU charge needs the stored card's pmId", code="invalid")
        currency = request.currency.upper()
        cents = _cents(request.amount_minor, currency)
        body = {
            "TransactionType": "PAYMENT",
            "AuthenticationType": "TOKEN",
            "AdditionalInformation": {
                "merchantReference": request.reference,
                "notificationUrl": self.notify_url,
            },
            "Customer": {"email": request.email or None},
            "Basket": {
                "description": (request.description or "Renewal")[:64],
                "amountInCents": cents,
                "currencyCode": currency,
            },
            "Creditcard": {"pmId": request.authorization, "amountInCents": cents},
        }
        for attempt in range(1 + self.endpoint.max_retries):
            await self.endpoint.pause(attempt)
            try:
                fields = await self._soap("doTransaction", body, retries=0)
            except ProviderUnavailable:
                continue
            tx = self._transaction(fields, request.reference)
            if tx.outcome is Outcome.UNKNOWN:  # refused before any transaction existed
                return await self._after_refusal(request.reference, tx)
            if attempt and tx.outcome is not Outcome.SUCCEEDED:
                return self._maybe_earlier(request.reference)
            return tx
        raise ProviderUnavailable("payu doTransaction: no answer after retries", code="unavailable")

    @staticmethod
    def _maybe_earlier(reference: str) -> Transaction:
        message = "an earlier attempt may have gone through; verify later"
        return Transaction(reference, Outcome.UNKNOWN, message=message)

    async def _after_refusal(self, reference: str, refused: Transaction) -> Transaction:
        """A refusal without a transaction: a real refusal (FAILED) - unless a transaction
        with our reference exists already (a retry, or a job redone after a crash), whose
        outcome reconcile will read: never a second charge, never a false FAILED."""
        earlier = await self.verify_transaction(reference)
        if earlier.outcome is not Outcome.UNKNOWN:
            return self._maybe_earlier(reference)
        return Transaction(reference, Outcome.FAILED, message=refused.message or "refused")

    async def refund(self, request: RefundRequest) -> Refund:
        original = request.provider_transaction_id
        if not original:
            raise ProviderError("a PayU refund needs the payment's payUReference", code="invalid")
        currency = request.currency.upper()
        cents = _cents(request.amount_minor, currency)
        body = {
            "TransactionType": "CREDIT",
            "AdditionalInformation": {
                "merchantReference": request.reference,
                "payUReference": original,
            },
            "Basket": {
                "description": (request.reason or "Refund")[:64],
                "amountInCents": cents,
                "currencyCode": currency,
            },
            "Creditcard": {"amountInCents": cents},
        }
        fields = await self._soap("doTransaction", body, retries=0)  # not idempotent
        tx = self._transaction(fields, request.reference)
        if xmlwire.text_of(fields.get("successful")) != "true" or tx.outcome is Outcome.FAILED:
            raise ProviderError(tx.message or "PayU refused the refund", code="refused")
        return Refund(
            reference=request.reference,
            outcome=tx.outcome if tx.outcome is Outcome.SUCCEEDED else Outcome.PENDING,
            provider_refund_id=tx.provider_reference,
            amount_minor=request.amount_minor,
            currency=currency,
            message=tx.message,
        )

    async def refund_status(self, refund: Refund) -> Refund:
        if not refund.provider_refund_id:
            return refund
        body = {"AdditionalInformation": {"payUReference": refund.provider_refund_id}}
        tx = self._transaction(await self._soap("getTransaction", body), refund.reference)
        outcome = tx.outcome if tx.outcome in (Outcome.SUCCEEDED, Outcome.FAILED) else None
        return Refund(
            reference=refund.reference,
            outcome=outcome or Outcome.PENDING,
            provider_refund_id=refund.provider_refund_id,
            amount_minor=tx.amount_minor or refund.amount_minor,
            currency=tx.currency or refund.currency,
            message=tx.message,
        )

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Read an IPN (unsigned; confirm it with ``getTransaction``)."""
        root = xmlwire.parse(body)
        if root is None or xmlwire.local(root.tag) != "PaymentNotification":
            raise SignatureError("not a PayU PaymentNotification")
        fields = xmlwire.fields(root)
        reference = xmlwire.text_of(fields.get("MerchantReference"))
        payu_reference = xmlwire.text_of(fields.get("PayUReference"))
        if not reference or not payu_reference:
            raise SignatureError("PayU notification without MerchantReference/PayUReference")
        state = (xmlwire.text_of(fields.get("TransactionState")) or "").upper()
        outcome = STATES.get(state)
        basket = _branch(fields, "Basket")
        extra = _branch(fields, "IpnExtraInfo")
        response_hash = xmlwire.text_of(extra.get("ResponseHash"))
        kind = {
            Outcome.SUCCEEDED: EventKind.PAYMENT_SUCCEEDED,
            Outcome.FAILED: EventKind.PAYMENT_FAILED,
        }
        return WebhookEvent(
            provider=self.name,
            event_id=response_hash or f"{payu_reference}:{state}",
            kind=kind.get(outcome, EventKind.OTHER) if outcome else EventKind.OTHER,
            reference=reference,
            outcome=outcome,
            amount_minor=_minor(basket.get("AmountInCents")),
            currency=(xmlwire.text_of(basket.get("CurrencyCode")) or "").upper() or None,
            provider_reference=payu_reference,
            raw={"needs_confirmation": True, **fields},
        )
