"""A credit note's refund outcome (Stripe's "refund" credit note outcome): a FINALIZED note
on a PAID invoice is refunded to the provider through the invoice's payment
(``payments.refunds``: the provider's refund API, its asynchronous status followed by
webhooks and polling).

No provider call under a lock: (1) claim the note (marked refunded) and pick the payment,
commit; (2) refund (it records its own attempt and the provider's answer); (3) on a
refusal, release the claim and answer 400 with the provider's message.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.errors import BusinessRule, DomainError
from novabilling.invoices import credit_notes
from novabilling.kit.money import to_major
from novabilling.payments import refunds
from novabilling.payments import service as payments
from novabilling.payments.credentials import ProviderFactory

__all__ = ["refund_note"]

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
