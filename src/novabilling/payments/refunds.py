"""Refunds (contract payments.md ``POST /api/payments/{id}/refund``).

Full or partial, never more than what is left (``amount_minor - refunded_minor``). For a
provider payment the provider's refund API is called first (refusal -> 400 with its
message, payment unchanged); the refund row then follows the provider's asynchronous
status from webhooks (``REFUND_UPDATED``) or ``refund_status`` polling. The wire shape is
the contract's: status ``REFUNDED`` after the first refund, ``metadata`` gains
``refundAmount`` (total so far), ``refundReason``, ``refundedAt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.errors import BusinessRule, Invalid
from novabilling.kit import money
from novabilling.kit.clock import Clock
from novabilling.kit.ids import new_id
from novabilling.kit.timestamps import to_wire
from novabilling.notifications import jobs as emails
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
    maker: async_sessionmaker[AsyncSession],
    *,
    tenant_id: str,
    payment_id: str,
    amount: Decimal | None,
    reason: str | None,
    factory: ProviderFactory,
) -> str:
    """Refund ``amount`` (default: all that is left) of a payment; returns its id.

    No provider call under a lock: (1) lock the payment, check, reserve the amount and
    record the refund, commit; (2) ask the provider; (3) record its answer - a refusal
    gives the reserved amount back and answers 400 with the provider's message."""
    clock = factory.runtime.clock
    async with maker() as session:
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
        handle = None
        if payment.kind != KIND_MANUAL:
            handle = await factory.get(tenant_id, payment.provider)
        before = _Reserved(payment.status, dict(payment.metadata_ or {}))
        refund = _reserve(payment, amount_minor, reason, clock, provider=handle is not None)
        session.add(refund)
        request = RefundRequest(
            reference=refund.id,
            transaction_reference=payment.reference or payment.id,
            provider_transaction_id=_refund_key(payment),
            amount_minor=amount_minor,
            currency=payment.currency,
            reason=reason,
        )
        if handle is None:
            _announce(tenant_id, payment, refund, clock)
        await session.commit()
    if handle is None:
        return payment_id
    try:
        answer = await handle.adapter.refund(request)
    except ProviderError as exc:
        message = provider_policy.public_message(
            payment.provider, exc, settings=factory.runtime.settings
        )
        await _release(maker, refund.id, before, message=message)
        raise BusinessRule(f"Refund refused by {payment.provider}: {message}") from exc
    async with maker() as session:
        stored = await session.get(Refund, refund.id, with_for_update=True)
        payment = await service.get_payment(session, payment_id=payment_id)
        if stored is None:  # its payment was deleted meanwhile (customer deletion)
            return payment_id
        refund = stored
        refund.status = _STATUS.get(answer.outcome, PENDING)
        refund.provider_refund_id = answer.provider_refund_id
        refund.message = answer.message
        refund.updated_at = clock.now()
        _announce(tenant_id, payment, refund, clock)
        await session.commit()
    log.info("payment.refunded", payment_id=payment_id, refund_id=refund.id, status=refund.status)
    return payment_id


@dataclass(frozen=True)
class _Reserved:
    """What a payment looked like before a refund reserved part of it."""

    status: str
    metadata: dict[str, object]


def _reserve(
    payment: Payment, amount_minor: int, reason: str | None, clock: Clock, *, provider: bool
) -> Refund:
    now = clock.now()
    payment.refunded_minor += amount_minor
    payment.status = REFUNDED
    payment.metadata_ = {
        **(payment.metadata_ or {}),
        "refundAmount": money.to_number(payment.refunded_minor, payment.currency),
        "refundReason": reason,
        "refundedAt": to_wire(now),
    }
    payment.updated_at = now
    return Refund(
        id=new_id(),
        payment_id=payment.id,
        amount_minor=amount_minor,
        currency=payment.currency,
        status=PENDING if provider else SUCCEEDED,
        reason=reason,
        created_at=now,
        updated_at=now,
    )


async def _release(
    maker: async_sessionmaker[AsyncSession], refund_id: str, before: _Reserved, *, message: str
) -> None:
    """The provider refused: the refund FAILED, the payment as it was."""
    async with maker() as session:
        refund = await session.get(Refund, refund_id, with_for_update=True)
        if refund is None:
            return
        payment = await service.get_payment(session, payment_id=refund.payment_id, lock=True)
        refund.status = FAILED
        refund.message = message
        payment.refunded_minor = max(0, payment.refunded_minor - refund.amount_minor)
        payment.status = before.status
        payment.metadata_ = before.metadata or None
        await session.commit()


def _announce(tenant_id: str, payment: Payment, refund: Refund, clock: Clock) -> None:
    """Outbound ``payment.refunded`` and the customer's e-mail (contract payments.md);
    no e-mail for a refund the provider refused outright."""
    if refund.status != FAILED:
        emails.queue(tenant_id, emails.REFUND_ISSUED, {"refund_id": refund.id}, key=refund.id)
    outbound.emit(
        tenant_id,
        "payment.refunded",
        {
            "paymentId": payment.id,
            "invoiceId": payment.invoice_id,
            "refundAmount": money.to_number(refund.amount_minor, payment.currency),
            "currency": payment.currency,
        },
        clock=clock,
        key=refund.id,
    )


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
    maker: async_sessionmaker[AsyncSession],
    *,
    tenant_id: str,
    factory: ProviderFactory,
    limit: int = 50,
) -> int:
    """Ask the provider about PENDING refunds (reconcile); returns how many settled. Each
    answer is recorded in its own short transaction (no provider call inside one)."""
    async with maker() as session:
        rows = (
            await session.execute(
                select(Refund.id, Refund.provider_refund_id, Payment.provider)
                .join(Payment, Payment.id == Refund.payment_id)
                .where(Refund.status == PENDING, Refund.provider_refund_id.is_not(None))
                .limit(limit)
            )
        ).all()
    settled = 0
    for refund_id, provider_refund_id, provider in rows:
        handle = await factory.get(tenant_id, provider)
        if handle is None:
            continue
        probe = ProviderRefund(
            reference=refund_id, outcome=Outcome.PENDING, provider_refund_id=provider_refund_id
        )
        try:
            answer = await handle.adapter.refund_status(probe)
        except ProviderError:
            continue
        async with maker() as session:
            updated = await apply_update(
                session,
                provider_refund_id=provider_refund_id,
                our_reference=refund_id,
                outcome=answer.outcome,
            )
            await session.commit()
        settled += int(updated is not None and updated.status != PENDING)
    return settled
