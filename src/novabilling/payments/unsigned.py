"""Inbound notifications that carry no signature: DPO (``pushPayments`` / the original's
``TransToken``+``CompanyRef``), PayU (IPN ``PaymentNotification``) and Pesapal (IPN with the
order's ids only). Nothing in their bodies is trusted (the original trusted PayU's body).

- ``peek_reference``: our reference as the body claims it, only to find the tenant when the
  bare ``/webhooks/<provider>`` path is used (the per-tenant path needs nothing).
- ``confirm``: ask the provider (``verifyToken`` / ``getTransaction`` by our reference,
  ``GetTransactionStatus`` by Pesapal's tracking id) and build the event from ITS answer:
  outcome, amount, currency. The notification must name the same transaction the provider
  describes (reference and provider id both, where both sides give them), else it is not
  confirmed. The inbox key is ``<provider id>:<confirmed outcome>``: a replay of the same
  notification is a duplicate, a later real status change is new.

M-Pesa (also unsigned) keeps its STK-query path in ``inbound``.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from novabilling.payments.credentials import ProviderHandle
from novabilling.payments.providers import dpo, pesapal, registry, xmlwire
from novabilling.payments.providers.base import EventKind, Outcome, ProviderError, WebhookEvent

log = structlog.get_logger(__name__)

PROVIDERS = frozenset({"dpo", "payu", "pesapal"})
_KINDS = {Outcome.SUCCEEDED: EventKind.PAYMENT_SUCCEEDED, Outcome.FAILED: EventKind.PAYMENT_FAILED}


def peek_reference(provider: str, body: bytes) -> str | None:
    if provider == "dpo":
        fields = dpo.notification_fields(body)
        return fields.get("CompanyRef") or fields.get("TransactionRef")
    if provider == "payu":
        root = xmlwire.parse(body)
        if root is None:
            return None
        return xmlwire.text_of(xmlwire.fields(root).get("MerchantReference"))
    if provider == "pesapal":
        return pesapal.ipn_fields(body).get("OrderMerchantReference")
    return None


def _differs(claimed: str | None, confirmed: str | None) -> bool:
    return bool(claimed and confirmed and claimed != confirmed)


async def confirm(handle: ProviderHandle, event: WebhookEvent) -> WebhookEvent | None:
    """The event as the provider confirms it, or None (unknown, mismatched, unreachable)."""
    by_provider_id = registry.spec(handle.name).confirm_by == "provider_reference"
    key = event.provider_reference if by_provider_id else event.reference
    if not key:
        return None
    try:
        txn = await handle.adapter.verify_transaction(key)
    except ProviderError as exc:
        log.warning("webhook.confirm_failed", provider=handle.name, error=exc.message)
        return None
    if txn.outcome is Outcome.UNKNOWN:
        return None  # the provider does not know it: an unknown reference
    if _differs(event.reference, txn.reference) or _differs(
        event.provider_reference, txn.provider_reference
    ):
        log.warning("webhook.mismatch", provider=handle.name, reference=event.reference)
        return None
    provider_id = txn.provider_reference or key  # never the notification's own claim
    return replace(
        event,
        event_id=f"{provider_id}:{txn.outcome.value}",
        kind=_KINDS.get(txn.outcome, EventKind.OTHER),
        reference=txn.reference or event.reference,
        outcome=txn.outcome,
        amount_minor=txn.amount_minor,
        currency=txn.currency,
        provider_reference=provider_id,
        raw={"confirmed": True, "notification": dict(event.raw)},
    )
