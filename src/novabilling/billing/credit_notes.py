"""A credit note's outcome (Stripe's credit note outcomes), one per note: a FINALIZED note
on a PAID invoice is either refunded to the provider through the invoice's payment
(``payments.refunds``: the provider's refund API, its asynchronous status followed by
webhooks and polling), or credited to one of the customer's wallets (GRANTED credits worth
the note's amount at the wallet's rate, in one transaction with the note).

Refund:
No provider call under a lock: (1) claim the note (marked refunded) and pick the payment,
commit; (2) refund (it records its own attempt and the provider's answer); (3) on a
refusal, release the claim and answer 400 with the provider's message.
"""

from __future__ import annotations

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.errors import BusinessRule, DomainError
from novabilling.invoices import credit_notes
from novabilling.kit.clock import Clock
from novabilling.kit.money import to_major
from novabilling.payments import refunds
from novabilling.payments import service as payments
from novabilling.payments.credentials import ProviderFactory
from novabilling.wallets import service as wallets
from novabilling.wallets.amounts import MAX_BALANCE_E4, credits_for_minor
from novabilling.wallets.models import ACTIVE, GRANTED, INBOUND, Wallet

__all__ = ["credit_wallet", "refund_note"]

log = structlog.get_logger(__name__)


async def refund_note(
    maker: async_sessionmaker[AsyncSession],
    *,
    tenant_id: str,
    note_id: str,
    factory: ProviderFactory,
) -> credit_notes.Found:
    clock = factory.runtime.clock
    async with maker() as session:
        claim = await credit_notes.claim_refund(session, note_id, clock=clock)
        payment = await payments.refundable_payment(session, claim.invoice_id, claim.amount_minor)
        if payment is None:
            raise BusinessRule("No payment of this invoice has enough left to refund this note")
        await session.commit()
    amount = to_major(claim.amount_minor, claim.currency)
    try:
        await refunds.refund_payment(
            maker,
            tenant_id=tenant_id,
            payment_id=payment.id,
            amount=amount,
            reason=f"Credit note {claim.note_id}",
            factory=factory,
        )
    except DomainError:
        async with maker() as session:
            await credit_notes.release_refund(session, claim.note_id)
            await session.commit()
        raise
    log.info("credit_note.refunded", credit_note_id=note_id, payment_id=payment.id)
    async with maker() as session:
        return await credit_notes.get(session, note_id)


async def _wallet_for(
    session: AsyncSession, *, customer_id: str, currency: str, wallet_id: str | None
) -> Wallet:
    if wallet_id is None:
        wallet_id = await session.scalar(
            select(Wallet.id)
            .where(
                Wallet.customer_id == customer_id,
                Wallet.currency == currency,
                Wallet.status == ACTIVE,
            )
            .order_by(Wallet.created_at, Wallet.id)
            .limit(1)
        )
        if wallet_id is None:
            raise BusinessRule(f"The customer has no active wallet in {currency}")
    wallet = await wallets.lock(session, wallet_id)
    if wallet.customer_id != customer_id:
        raise BusinessRule("Wallet belongs to another customer")
    if wallet.status != ACTIVE:
        raise BusinessRule("Wallet is not active")
    if wallet.currency != currency:
        raise BusinessRule(f"Wallet currency {wallet.currency} is not the note's ({currency})")
    return wallet


async def credit_wallet(
    session: AsyncSession, note_id: str, *, wallet_id: str | None, clock: Clock
) -> credit_notes.Found:
    """Credit a FINALIZED note on a PAID invoice to a wallet of its customer (``wallet_id``,
    else the oldest ACTIVE one in the note's currency): GRANTED credits worth the amount
    (rounded up to the credit's 4th decimal), the transaction naming the note."""
    note = await credit_notes.settleable(session, note_id, verb="credited")
    wallet = await _wallet_for(
        session, customer_id=note.customer_id, currency=note.currency, wallet_id=wallet_id
    )
    credits = credits_for_minor(
        note.amount_minor, wallet.rate_amount_e4, note.currency, cap_e4=MAX_BALANCE_E4
    )
    now = clock.now()
    change = wallets.Move(INBOUND, GRANTED, credits, {"creditNoteId": note.id})
    await wallets.move(session, wallet, change, now=now)
    credit_notes.mark_credited(note, wallet.id, now=now)
    await session.flush()
    log.info("credit_note.credited", credit_note_id=note.id, wallet_id=wallet.id)
    return await credit_notes.get(session, note_id)
