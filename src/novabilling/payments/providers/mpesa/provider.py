"""``MpesaProvider``: the :class:`PaymentProvider` calls on Daraja — STK push (checkout
and charge), STK query, reversal — built from ``fields`` (formats), ``client`` (OAuth +
retrying POSTs) and ``callbacks`` (webhook parsing); see the package doc."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Unpack

import httpx

from novabilling.payments.providers import http
from novabilling.payments.providers.base import (
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    Credentials,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    Refund,
    RefundRequest,
    Transaction,
    WebhookEvent,
)
from novabilling.payments.providers.mpesa.callbacks import parse_callback
from novabilling.payments.providers.mpesa.client import (
    PROCESSING,
    PRODUCTION_URL,
    SANDBOX_URL,
    DarajaClient,
    error_from,
)
from novabilling.payments.providers.mpesa.fields import (
    account_reference,
    msisdn,
    result_outcome,
    stk_auth,
    whole_kes,
)
from novabilling.payments.providers.mpesa.ledger import Ledger, Push


class MpesaProvider:
    name = "mpesa"

    def __init__(self, credentials: Credentials, **options: Unpack[http.HttpOptions]) -> None:
        extra = credentials.extra
        self.credentials = credentials
        production = extra.get("environment", "sandbox").lower() in ("production", "live")
        consumer_key = extra.get("consumer_key") or extra.get("consumerKey")
        self.shortcode = extra.get("shortcode", "")
        self.passkey = extra.get("passkey", "")
        base_url = credentials.base_url or (PRODUCTION_URL if production else SANDBOX_URL)
        # the real Daraja (no baseUrl) refuses plain-http callback URLs: say so before the
        # call; a baseUrl (the simulator, a proxy) decides for itself
        self.https_callbacks = not credentials.base_url
        self.client = DarajaClient(
            http.Endpoint(base_url, **options),
            consumer_key=consumer_key or credentials.public_key or "",
            consumer_secret=credentials.secret_key,
        )
        self.ledger = Ledger()

    # ---- PaymentProvider ----------------------------------------------------------------

    async def verify_credentials(self) -> bool:
        try:
            await self.client.fresh_token()
        except ProviderError:
            return False
        except (httpx.TransportError, httpx.HTTPStatusError) as exc:
            raise ProviderUnavailable(f"m-pesa unavailable: {exc}") from exc
        return True

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        push = await self._push(request, callback_url=request.callback_url)
        return Checkout(
            reference=request.reference, url=None, provider_reference=push.checkout_request_id
        )

    async def charge(self, request: ChargeRequest) -> Transaction:
        """A new STK push (M-Pesa has no saved token): PENDING until the customer answers;
        poll ``verify_transaction``."""
        push = await self._push(request, callback_url=None)
        return Transaction(
            reference=request.reference,
            outcome=Outcome.PENDING,
            amount_minor=request.amount_minor,
            currency="KES",
            provider_reference=push.checkout_request_id,
            message="STK prompt sent",
        )

    def _check_callback_url(self, url: str, *, field: str) -> None:
        if self.https_callbacks and not url.lower().startswith("https://"):
            raise ProviderError(
                f"Daraja needs an https {field}; set NB_PUBLIC_URL to this server's public "
                "https address",
                code=field,
            )

    async def _push(
        self, request: CheckoutRequest | ChargeRequest, *, callback_url: str | None
    ) -> Push:
        """An STK push for ``request`` (reference, amount, phone, description); the
        tenant's configured callback URL wins over ``callback_url``."""
        reference, amount_minor = request.reference, request.amount_minor
        amount = whole_kes(amount_minor, request.currency)
        number = msisdn(request.phone)
        extra = self.credentials.extra
        url = extra.get("callback_url") or extra.get("callbackUrl") or callback_url
        if not url:
            raise ProviderError("no M-Pesa callback URL configured", code="callback_url")
        self._check_callback_url(url, field="CallBackURL")
        body = {
            **stk_auth(self.shortcode, self.passkey),
            "TransactionType": extra.get("transaction_type", "CustomerPayBillOnline"),
            "Amount": amount,
            "PartyA": number,
            "PartyB": extra.get("party_b") or self.shortcode,
            "PhoneNumber": number,
            "CallBackURL": url,
            "AccountReference": account_reference(reference),
            "TransactionDesc": (request.description or "Payment")[:13],
        }
        status, payload = await self.client.post("/mpesa/stkpush/v1/processrequest", body)
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
            raise error_from(status, payload)
        push = Push(reference, str(payload["CheckoutRequestID"]), amount_minor)
        self.ledger.add_push(push)
        return push

    async def verify_transaction(self, reference: str) -> Transaction:
        """STK query by CheckoutRequestID (or our reference, if this instance pushed it)."""
        push = self.ledger.pushes.get(reference)
        if push is None and not reference.startswith("ws_CO_"):
            raise ProviderError(
                "unknown reference: pass the CheckoutRequestID", code="unknown_reference"
            )
        checkout_request_id = push.checkout_request_id if push else reference
        body = {
            **stk_auth(self.shortcode, self.passkey),
            "CheckoutRequestID": checkout_request_id,
        }
        status, payload = await self.client.post("/mpesa/stkpushquery/v1/query", body)
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
            raise error_from(status, payload)
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
        receipt = self.ledger.receipts.get(receipt, receipt)
        if not receipt or receipt.startswith("ws_CO_"):
            raise ProviderError(
                "a reversal needs the MpesaReceiptNumber from the callback", code="receipt"
            )
        extra = self.credentials.extra
        result_url = extra.get("result_url") or extra.get("callback_url") or ""
        self._check_callback_url(result_url, field="ResultURL")
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
        status, payload = await self.client.post("/mpesa/reversal/v1/request", body, retry=False)
        if status != 200 or str(payload.get("ResponseCode")) != "0":
            raise error_from(status, payload)
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
        settled = self.ledger.reversals.get(refund.provider_refund_id or "")
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
        """Shape check only (Daraja does not sign): changes nothing. Confirm the event,
        then hand it to :meth:`accept_callback`."""
        return parse_callback(body, provider=self.name, ledger=self.ledger)

    def accept_callback(self, event: WebhookEvent) -> None:
        """Remember what a *confirmed* callback says (receipt, reversal result)."""
        self.ledger.accept(event)
