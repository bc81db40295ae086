"""Refunds (contract payments.md ``POST /api/payments/{id}/refund``).

Full or partial, never more than what is left (``amount_minor - refunded_minor``). For a
provider payment the provider's refund API is called first (refusal -> 400 with its
message, payment unchanged); the refund row then follows the provider's asynchronous
status from webhooks (``REFUND_UPDATED``) or ``refund_status`` polling. The wire shape is
the contract's: status ``REFUNDED`` after the first refund, ``metadata`` gains
``refundAmount`` (total so far), ``refundReason``, ``refundedAt``.
"""

from __future__ import annotations

from decimal import Decimal

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.errors import BusinessRule, Invalid
from novabilling.kit import money
from novabilling.kit.ids import new_id
from novabilling.kit.timestamps import to_wire
from novabilling.payments import provider_policy, service
from novabilling.payments.credentials import ProviderFactory
from novabilling.payments.models import (
    FAILED,
    KIND_MANUAL,
    PENDING,
    REFUNDED,
    SUCCEEDED,
    Payment,
    Refund,
)
from novabilling.payments.providers.base import Outcome, ProviderError, RefundRequest
from novabilling.payments.providers.base import Refund as ProviderRefund
from novabilling.webhooks import outbound

log = structlog.get_logger(__name__)

_STATUS = {Outcome.SUCCEEDED: SUCCEEDED, Outcome.FAILED: FAILED}


async def refund_payment(
    session: AsyncSession,
    *,
    tenant_id: str,
    payment_id: str,
    amount: Decimal | None,
    reason: str | None,
    factory: ProviderFactory,
) -> Payment:
    clock = factory.runtime.clock
    payment = await service.get_payment(session, payment_id=payment_id, lock=True)
    left = payment.amount_minor - payment.refunded_minor
    refundable = payment.status == SUCCEEDED or (payment.status == REFUNDED and left > 0)
    if not refundable:
        raise BusinessRule("Only succeeded payments can be refunded")
    amount_minor = (
        left
        if amount is None
        else money.to_minor(amount, payment.currency, field="amount", allow_zero=False)
    )
    if amount_minor > left:
        raise Invalid("amount", "amount must not exceed the amount paid (less earlier refunds)")
    now = clock.now()
    refund = Refund(
        id=new_id(),
        payment_id=payment.id,
        amount_minor=amount_minor,
        currency=payment.currency,
        status=SUCCEEDED,
        reason=reason,
        created_at=now,
        updated_at=now,
    )
    handle = None
    if payment.kind != KIND_MANUAL:
        handle = await factory.get(tenant_id, payment.provider)
    if handle is not None:
        try:
            answer = await handle.adapter.refund(
                RefundRequest(
                    reference=refund.id,
                    transaction_reference=payment.reference or payment.id,
                    provider_transaction_id=_refund_key(payment),
                    amount_minor=amount_minor,
                    currency=payment.currency,
                    reason=reason,
                )
            )
        except ProviderError as exc:
            settings = factory.runtime.settings
            message = provider_policy.public_message(payment.provider, exc, settings=settings)
            raise BusinessRule(f"Refund refused by {payment.provider}: {message}") from exc
        refund.status = _STATUS.get(answer.outcome, PENDING)
        refund.provider_refund_id = answer.provider_refund_id
        refund.message = answer.message
    session.add(refund)
    payment.refunded_minor += amount_minor
    payment.status = REFUNDED
    payment.metadata_ = {
        **(payment.metadata_ or {}),
        "refundAmount": money.to_number(payment.refunded_minor, payment.currency),
        "refundReason": reason,
        "refundedAt": to_wire(now),
    }
    payment.updated_at = now
    await session.flush()
    outbound.emit(
        tenant_id,
        "payment.refunded",
        {
            "paymentId": payment.id,
            "invoiceId": payment.invoice_id,
            "refundAmount": money.to_number(amount_minor, payment.currency),
            "currency": payment.currency,
        },
        clock=clock,
        key=refund.id,
    )
    log.info("payment.refunded", payment_id=payment.id, refund_id=refund.id, status=refund.status)
    return payment


def _refund_key(payment: Payment) -> str | None:
    """What the provider refunds by: Paystack/Flutterwave/Stripe transaction id, the
    M-Pesa receipt number (kept in metadata from the callback)."""
    if payment.provider == "mpesa":
        return str((payment.metadata_ or {}).get("mpesaReceipt") or "") or None
    return payment.provider_transaction_id


async def apply_update(
    session: AsyncSession,
    *,
    provider_refund_id: str | None,
    our_reference: str | None,
    outcome: Outcome | None,
    payment_id: str | None = None,
    amount_minor: int | None = None,
) -> Refund | None:
    """A refund webhook / poll: PENDING -> SUCCEEDED / FAILED (idempotent). Found by the
    provider's refund id, our refund id, or (Paystack events carry neither) the oldest
    PENDING refund of ``payment_id`` for exactly ``amount_minor``."""
    refund = None
    if provider_refund_id:
        refund = await session.scalar(
            select(Refund).where(Refund.provider_refund_id == provider_refund_id)
        )
    if refund is None and our_reference:
        refund = await session.get(Refund, our_reference)
    if refund is None and payment_id and amount_minor is not None:
        refund = await session.scalar(
            select(Refund)
            .where(
                Refund.payment_id == payment_id,
                Refund.status == PENDING,
                Refund.amount_minor == amount_minor,
            )
            .order_by(Refund.created_at, Refund.id)
        )
    if refund is None or refund.status != PENDING or outcome not in _STATUS:
        return refund
    refund.status = _STATUS[outcome]
    if refund.status == FAILED:
        payment = await service.get_payment(session, payment_id=refund.payment_id, lock=True)
        payment.refunded_minor = max(0, payment.refunded_minor - refund.amount_minor)
        if payment.refunded_minor == 0:
            payment.status = SUCCEEDED
        log.warning("refund.failed", refund_id=refund.id, payment_id=payment.id)
    await session.flush()
    return refund


async def poll_pending(
    session: AsyncSession, *, tenant_id: str, factory: ProviderFactory, limit: int = 50
) -> int:
    """Ask the provider about PENDING refunds (reconcile); returns how many settled."""
    rows = list(await session.scalars(select(Refund).where(Refund.status == PENDING).limit(limit)))
    settled = 0
    for refund in rows:
        payment = await session.get(Payment, refund.payment_id)
        handle = await factory.get(tenant_id, payment.provider) if payment else None
        if handle is None or not refund.provider_refund_id:
            continue
        probe = ProviderRefund(
            reference=refund.id,
            outcome=Outcome.PENDING,
            provider_refund_id=refund.provider_refund_id,
        )
        try:
            answer = await handle.adapter.refund_status(probe)
        except ProviderError:
            continue
        updated = await apply_update(
            session,
            provider_refund_id=refund.provider_refund_id,
            our_reference=refund.id,
            outcome=answer.outcome,
        )
        settled += int(updated is not None and updated.status != PENDING)
    return settled
