"""DPO Pay (3G Direct Pay) adapter over its XML API v6 (facts: docs/providers/dpo.md).

* One endpoint, ``POST {base}/API/v6/``, an ``<API3G>`` XML document naming the
  ``<Request>`` (``createToken``, ``verifyToken``, ``refundToken``) and carrying the
  tenant's ``CompanyToken``. Every answer is ``<API3G><Result>`` (3-digit code) +
  ``<ResultExplanation>``; ``801``/``802``/``803`` mean the company token is missing,
  unknown or the request name is wrong (our credentials problem), ``804`` bad XML.
* Checkout: ``createToken`` with ``CompanyRef`` = our reference (``CompanyRefUnique=1``:
  DPO refuses a second transaction for it) and one ``<Service>`` of the tenant's
  ``serviceType``; the customer pays on ``{base}/payv2.php?ID=<TransToken>``. The create
  call is not retried blindly: a lost answer leaves an orphan token that nobody pays, and
  the caller gets ``ProviderUnavailable``.
* Money: ``PaymentAmount`` in major units, the currency's own decimals (``kit.money``);
  answers are parsed back exactly (an amount that is not exact becomes ``None``).
* Verify: ``verifyToken`` by ``TransactionToken`` (a GUID) or by ``CompanyRef`` (our
  reference). ``000`` paid; ``900``/``003``/``005``/``007``/``001`` not final; ``901``,
  ``903``, ``904`` failed; ``002`` (over/underpaid) is UNKNOWN, never paid automatically.
* Refund: ``refundToken`` by ``TransactionToken`` (synchronous: ``000`` = done).
* Recurring charges: DPO's API has no merchant-initiated charge of a saved card, so
  ``charge`` refuses (``code="unsupported"``); every payment goes through checkout.
* Notifications (``pushPayments``, or the original's JSON ``TransToken``/``CompanyRef``) are
  unsigned: ``parse_webhook`` only reads them; the caller confirms with ``verifyToken``.

Credentials: ``secret_key`` = companyToken; ``extra``: ``serviceType``, ``environment``
(``test`` | ``live``), ``returnUrl`` (browser return page when the checkout has none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Unpack
from urllib.parse import parse_qsl

from novabilling.errors import Invalid
from novabilling.kit import money
from novabilling.kit.clock import SystemClock
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

BASE_URLS = {
    "test": "https://secure1.sandbox.directpay.online",
    "live": "https://secure.3gdirectpay.com",
}
API_PATH = "/API/v6/"
PAY_PAGE = "/payv2.php"
PAYMENT_TIME_LIMIT_HOURS = 24  # PTL: how long the customer may take
_GUID = re.compile(r"^[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")
_CREDENTIAL_CODES = {"801", "802", "803"}
_PENDING = {"900", "001", "003", "005", "007"}
_FAILED = {"901", "903", "904"}
_NOT_FOUND = {"902", "950"}


def verify_outcome(code: str) -> Outcome:
    if code == "000":
        return Outcome.SUCCEEDED
    if code in _FAILED:
        return Outcome.FAILED
    if code in _PENDING:
        return Outcome.PENDING
    return Outcome.UNKNOWN  # 002 over/underpaid and anything new: a person looks at it


def to_minor(amount: str | None, currency: str | None) -> int | None:
    if not amount or not currency:
        return None
    try:
        return money.to_minor(Decimal(amount.replace(",", "")), currency, field="amount")
    except (Invalid, ArithmeticError, ValueError):
        return None


def _unavailable(problem: str) -> ProviderUnavailable:
    return ProviderUnavailable(f"dpo unavailable ({problem})", code="unavailable", status=503)


class DpoProvider:
    name = "dpo"

    def __init__(self, credentials: Credentials, **options: Unpack[http.HttpOptions]) -> None:
        extra = credentials.extra
        self.credentials = credentials
        self.company_token = credentials.secret_key
        self.service_type = extra.get("serviceType", "")
        live = extra.get("environment", "test").strip().lower() == "live"
        self.return_url = extra.get("returnUrl")
        self.endpoint = http.Endpoint.of(
            credentials, BASE_URLS["live" if live else "test"], **options
        )

    # -- HTTP -----------------------------------------------------------------------------

    async def _call(
        self, request: str, body: Mapping[str, Any], *, retries: int | None = None
    ) -> dict[str, Any]:
        """One API3G request; the answer's fields (``Result`` always present)."""
        document = xmlwire.build(
            "API3G", {"CompanyToken": self.company_token, "Request": request, **body}
        )
        response = await http.send(
            self.endpoint,
            "POST",
            API_PATH,
            headers={"Content-Type": "application/xml"},
            content=xmlwire.to_bytes(document),
            retries=retries,
            unavailable=_unavailable,
        )
        root = xmlwire.parse(response.content)
        answer = xmlwire.fields(root) if root is not None else {}
        code = xmlwire.text_of(answer.get("Result"))
        if code is None:
            raise ProviderError(
                f"unreadable DPO answer (HTTP {response.status_code})", status=response.status_code
            )
        answer["Result"] = code
        if code in _CREDENTIAL_CODES:
            raise ProviderError(self._explain(answer), code=code, status=401)
        if code == "804":
            raise ProviderError(self._explain(answer), code=code, status=400)
        return answer

    @staticmethod
    def _explain(answer: Mapping[str, Any]) -> str:
        return (
            xmlwire.text_of(answer.get("ResultExplanation")) or f"DPO result {answer.get('Result')}"
        )

    # -- the PaymentProvider interface ----------------------------------------------------

    async def verify_credentials(self) -> bool:
        """A verifyToken for a token that cannot exist: an unknown company token answers
        ``801``/``802`` (rejected); anything else means DPO accepted the company token."""
        try:
            await self._call(
                "verifyToken", {"TransactionToken": "00000000-0000-0000-0000-000000000000"}
            )
        except ProviderUnavailable:
            raise
        except ProviderError as exc:
            if exc.code in _CREDENTIAL_CODES:
                return False
            raise
        return True

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        currency = request.currency.upper()
        if not self.service_type:
            raise ProviderError("dpo credentials need a serviceType", code="configuration")
        transaction = {
            "PaymentAmount": money.to_wire(request.amount_minor, currency),
            "PaymentCurrency": currency,
            "CompanyRef": request.reference,
            "CompanyRefUnique": "1",
            "RedirectURL": request.callback_url or self.return_url,
            "BackURL": request.callback_url or self.return_url,
            "PTL": str(PAYMENT_TIME_LIMIT_HOURS),
            "PTLtype": "hours",
            "customerEmail": request.email or None,
            "customerPhone": request.phone,
        }
        service = {
            "ServiceType": self.service_type,
            "ServiceDescription": (request.description or "Payment")[:100],
            "ServiceDate": SystemClock().now().strftime("%Y/%m/%d %H:%M"),
        }
        answer = await self._call(
            "createToken", {"Transaction": transaction, "Services": {"Service": service}}, retries=0
        )
        token = xmlwire.text_of(answer.get("TransToken"))
        if answer["Result"] != "000" or not token:
            raise ProviderError(self._explain(answer), code=answer["Result"])
        return Checkout(
            reference=request.reference,
            url=f"{self.endpoint.base_url}{PAY_PAGE}?ID={token}",
            provider_reference=token,
        )

    async def verify_transaction(self, reference: str) -> Transaction:
        key = "TransactionToken" if _GUID.match(reference) else "CompanyRef"
        answer = await self._call("verifyToken", {key: reference})
        code = answer["Result"]
        message = self._explain(answer)
        if code in _NOT_FOUND:
            return Transaction(reference=reference, outcome=Outcome.UNKNOWN, message=message)
        currency = (xmlwire.text_of(answer.get("TransactionCurrency")) or "").upper() or None
        token = xmlwire.text_of(answer.get("TransactionToken"))
        return Transaction(
            reference=xmlwire.text_of(answer.get("CompanyRef")) or reference,
            outcome=verify_outcome(code),
            amount_minor=to_minor(xmlwire.text_of(answer.get("TransactionAmount")), currency),
            currency=currency,
            provider_reference=token or (reference if key == "TransactionToken" else None),
            message=message,
            raw=answer,
        )

    async def charge(self, request: ChargeRequest) -> Transaction:
        raise ProviderError(
            "dpo has no merchant-initiated charge of a saved card: send a checkout link",
            code="unsupported",
        )

    async def refund(self, request: RefundRequest) -> Refund:
        token = request.provider_transaction_id
        if not token:
            raise ProviderError("a DPO refund needs the transaction token", code="invalid")
        body = {
            "TransactionToken": token,
            "refundAmount": money.to_wire(request.amount_minor, request.currency.upper()),
            "refundDetails": (request.reason or f"Refund {request.reference}")[:200],
            "refundRef": request.reference,
        }
        answer = await self._call("refundToken", body, retries=0)  # not idempotent
        if answer["Result"] != "000":
            raise ProviderError(self._explain(answer), code=answer["Result"])
        return Refund(
            reference=request.reference,
            outcome=Outcome.SUCCEEDED,  # DPO refunds are synchronous
            provider_refund_id=request.reference,
            amount_minor=request.amount_minor,
            currency=request.currency.upper(),
            message=self._explain(answer),
        )

    async def refund_status(self, refund: Refund) -> Refund:
        return refund  # settled when refundToken answered 000; nothing to ask later

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Read a notification (unsigned; confirm it with ``verifyToken``)."""
        data = notification_fields(body)
        token = data.get("TransactionToken") or data.get("TransToken")
        reference = data.get("CompanyRef") or data.get("TransactionRef")
        if not token and not reference:
            raise SignatureError("not a DPO notification (no TransactionToken / CompanyRef)")
        code = data.get("Result")
        outcome = verify_outcome(code) if code else None
        kind = {
            Outcome.SUCCEEDED: EventKind.PAYMENT_SUCCEEDED,
            Outcome.FAILED: EventKind.PAYMENT_FAILED,
        }
        currency = (data.get("TransactionCurrency") or "").upper() or None
        return WebhookEvent(
            provider=self.name,
            event_id=f"{token or reference}:{code or 'notify'}",
            kind=kind.get(outcome, EventKind.OTHER) if outcome else EventKind.OTHER,
            reference=reference,
            outcome=outcome,
            amount_minor=to_minor(data.get("TransactionAmount"), currency),
            currency=currency,
            provider_reference=token,
            raw={"needs_confirmation": True, **data},
        )


def notification_fields(body: bytes) -> dict[str, str]:
    """The flat text fields of a DPO notification: ``pushPayments`` XML, a JSON object or
    a form body; ``{}`` for anything else."""
    root = xmlwire.parse(body) if body.lstrip().startswith(b"<") else None
    if root is not None:
        flat = xmlwire.fields(root)
        return {k: v for k, v in ((k, xmlwire.text_of(v)) for k, v in flat.items()) if v}
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        try:
            parsed = dict(parse_qsl(body.decode(), strict_parsing=True))
        except (ValueError, UnicodeDecodeError):
            return {}
    if not isinstance(parsed, dict):
        return {}
    return {
        str(k): str(v).strip()
        for k, v in parsed.items()
        if isinstance(v, str | int) and str(v).strip()
    }
