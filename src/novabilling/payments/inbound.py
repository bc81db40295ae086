"""Inbound provider webhooks: verify, store in the central inbox, answer at once
(DESIGN rule 4; contract webhooks.md "Inbound").

Intake (``receive``), kept lean for throughput: no principal, no tenant-DB query on the hot
path (the tenant's adapter comes from ``ProviderFactory``'s short-TTL cache), one
``INSERT .. ON CONFLICT (provider, event_id) DO NOTHING RETURNING id`` on the central DB,
then one job on the ``webhooks`` queue only when the row is new.

- Tenant: the ``tenantKey`` of ``/webhooks/{provider}/{tenantKey}`` (our tenant id), else
  the tenant part of our payment reference echoed in the payload (``<payment>-<tenant>``;
  see ``payments.models``). The key only routes: the signature checked with that tenant's
  own secret is the trust.
- Signature over the RAW bytes by the adapter's ``parse_webhook``. Missing header, wrong
  signature, unknown tenant or no active configuration -> 401, logged, nothing stored.
- M-Pesa callbacks are unsigned: accepted only when an STK query confirms the same final
  result (reversal results only when they name a refund we are waiting for). DPO, PayU
  and Pesapal notifications are unsigned too: ``unsigned.confirm`` rebuilds the event from
  the provider's own answer (nothing in the body is trusted) or it is refused (401).
- Inbox ``event_id`` = ``"<tenant id>:<provider event id>"``: a duplicate delivery is a
  no-op, and one tenant can never occupy another tenant's event ids. ``headers`` keeps the
  signature headers plus the normalised event under ``x-nb-event`` (the job does not
  re-verify: a Stripe signature is only valid for 300 s).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

from novabilling.errors import NotFound, Unauthorized
from novabilling.payments import unsigned
from novabilling.payments.credentials import ProviderHandle, provider_factory
from novabilling.payments.inbox import InboxRow, inbox_writer
from novabilling.payments.models import PENDING, Refund
from novabilling.payments.providers.base import (
    EventKind,
    Outcome,
    ProviderError,
    RemembersCallbacks,
    SignatureError,
    WebhookEvent,
)

if TYPE_CHECKING:
    from novabilling.runtime import Runtime

log = structlog.get_logger(__name__)

PROVIDERS = ("paystack", "flutterwave", "stripe", "mpesa", "dpo", "payu", "pesapal")
SIGNATURE_HEADERS: dict[str, tuple[str, ...]] = {
    "paystack": ("x-paystack-signature",),
    "flutterwave": ("verif-hash", "flutterwave-signature"),
    "stripe": ("stripe-signature",),
    "mpesa": (),
    "dpo": (),
    "payu": (),
    "pesapal": (),
}
EVENT_KEY = "x-nb-event"


def response_body(provider: str) -> dict[str, Any]:
    return {"received": True} if provider == "stripe" else {"status": "success"}


def payment_reference(payment_id: str, tenant_id: str) -> str:
    """What providers see as our reference (idempotency key / tx_ref / metadata)."""
    return f"{payment_id}-{tenant_id}"


def split_reference(reference: str | None) -> tuple[str | None, str | None]:
    """``(payment id, tenant id)`` of one of our references, else ``(None, None)``."""
    if not reference or reference.count("-") != 1:
        return None, None
    payment_id, tenant_id = reference.split("-")
    return (payment_id or None), (tenant_id or None)


def _peek_reference(provider: str, body: bytes) -> str | None:
    """Our reference as echoed in the (not yet verified) payload; used only to route."""
    if provider in unsigned.PROVIDERS:
        return unsigned.peek_reference(provider, body)
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    found: Any = None
    if provider == "paystack":
        found = data.get("reference") or data.get("transaction_reference")
    elif provider == "flutterwave":
        found = data.get("tx_ref") or payload.get("txRef")
    elif provider == "stripe":
        obj = data.get("object")
        obj = obj if isinstance(obj, dict) else {}
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        found = meta.get("nb_reference") or obj.get("client_reference_id")
    return found if isinstance(found, str) else None


def _reject(provider: str, reason: str, **fields: Any) -> Unauthorized:
    log.warning("webhook.rejected", provider=provider, reason=reason, **fields)
    return Unauthorized("Invalid webhook signature")


def event_to_dict(event: WebhookEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "kind": event.kind.value,
        "reference": event.reference,
        "outcome": event.outcome.value if event.outcome else None,
        "amount_minor": event.amount_minor,
        "currency": event.currency,
        "provider_reference": event.provider_reference,
        "receipt": event.raw.get("receipt") if isinstance(event.raw, Mapping) else None,
    }


async def _confirm_unsigned(runtime: Runtime, handle: ProviderHandle, event: WebhookEvent) -> bool:
    """M-Pesa: trust an unsigned callback only once the provider confirms it."""
    if event.kind is EventKind.REFUND_UPDATED:
        maker = await runtime.engines.sessionmaker(handle.tenant_id)
        async with maker() as session:
            refund = await session.scalar(
                select(Refund.id).where(
                    Refund.provider_refund_id == event.provider_reference,
                    Refund.status == PENDING,
                )
            )
        return refund is not None
    if not event.provider_reference or event.outcome not in (Outcome.SUCCEEDED, Outcome.FAILED):
        return False
    try:
        confirmed = await handle.adapter.verify_transaction(event.provider_reference)
    except ProviderError:
        return False
    return confirmed.outcome is event.outcome


async def receive(
    runtime: Runtime,
    *,
    provider: str,
    tenant_key: str | None,
    body: bytes,
    headers: Mapping[str, str],
) -> dict[str, Any]:
    """Verify and store one delivery; the contract's 200 body, or ``Unauthorized``."""
    name = provider.lower()
    if name not in PROVIDERS:
        raise NotFound("Cannot POST webhook for unknown provider")
    lowered = {k.lower(): v for k, v in headers.items()}
    wanted = SIGNATURE_HEADERS[name]
    if wanted and not any(lowered.get(h, "").strip() for h in wanted):
        raise _reject(name, "missing signature header")
    tenant_id = tenant_key or split_reference(_peek_reference(name, body))[1]
    if not tenant_id:
        raise _reject(name, "no tenant")
    handle = await provider_factory(runtime).get(tenant_id, name)
    if handle is None:
        raise _reject(name, "no active configuration", tenant_id=tenant_id)
    try:
        event = handle.adapter.parse_webhook(body, lowered)
    except (SignatureError, ProviderError) as exc:
        raise _reject(name, str(exc), tenant_id=tenant_id) from None
    if name == "mpesa":
        if not await _confirm_unsigned(runtime, handle, event):
            raise _reject(name, "not confirmed by the provider", tenant_id=tenant_id)
        if isinstance(handle.adapter, RemembersCallbacks):
            handle.adapter.accept_callback(event)  # only now may it change anything
    elif name in unsigned.PROVIDERS:
        confirmed = await unsigned.confirm(handle, event)
        if confirmed is None:
            raise _reject(name, "not confirmed by the provider", tenant_id=tenant_id)
        event = confirmed
    stored: dict[str, Any] = {h: lowered[h] for h in wanted if h in lowered}
    stored[EVENT_KEY] = event_to_dict(event)
    inbox_id = await inbox_writer(runtime).write(
        InboxRow(
            provider=name,
            event_id=f"{tenant_id}:{event.event_id}"[:255],
            tenant_id=tenant_id,
            body=body.decode("utf-8", errors="replace"),
            headers=stored,
            received_at=runtime.clock.now(),
        )
    )
    if inbox_id is None:
        log.info("webhook.duplicate", provider=name, tenant_id=tenant_id, event_id=event.event_id)
    return response_body(name)
