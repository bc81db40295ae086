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

Modules: ``fields`` (Daraja formats), ``client`` (OAuth token + retrying POSTs),
``ledger`` (what an instance remembers), ``callbacks`` (webhook parsing), ``provider``
(:class:`MpesaProvider`).
"""

from novabilling.payments.providers.mpesa.client import (
    PROCESSING,
    PRODUCTION_URL,
    SANDBOX_URL,
)
from novabilling.payments.providers.mpesa.fields import (
    EAT,
    RESULT_MESSAGES,
    account_reference,
    msisdn,
    result_outcome,
    stk_password,
    whole_kes,
)
from novabilling.payments.providers.mpesa.provider import MpesaProvider

__all__ = [
    "EAT",
    "PROCESSING",
    "PRODUCTION_URL",
    "RESULT_MESSAGES",
    "SANDBOX_URL",
    "MpesaProvider",
    "account_reference",
    "msisdn",
    "result_outcome",
    "stk_password",
    "whole_kes",
]
