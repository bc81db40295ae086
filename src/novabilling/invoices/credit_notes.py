"""Credit notes (contract credit-notes.md): amounts credited against one invoice.

Here: the automatic ones of subscriptions.md - cancel ``now`` and an upgrade issue a
FINALIZED ``ORDER_CHANGE`` note against the subscription's latest invoice, for the
current price x remaining days / total days of the period (whole days, rounded), in exact
decimals rounded half-up to the currency's minor unit. They skip the amount checks and
emit no outbound event (contract).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.invoices.models import CANCELED, CreditNote, Invoice
from novabilling.kit.money import round_half_up

__all__ = ["ORDER_CHANGE", "issue_order_change", "latest_invoice", "remaining_share"]

log = structlog.get_logger(__name__)

ORDER_CHANGE = "ORDER_CHANGE"
FINALIZED = "FINALIZED"
_DAY = timedelta(days=1)


async def latest_invoice(session: AsyncSession, subscription_id: str) -> Invoice | None:
    """The subscription's newest invoice that is not voided."""
    return await session.scalar(
        select(Invoice)
        .where(Invoice.subscription_id == subscription_id, Invoice.status != CANCELED)
        .order_by(Invoice.created_at.desc(), Invoice.id.desc())
        .limit(1)
    )


def remaining_share(period: tuple[datetime, datetime], at: datetime) -> tuple[int, int]:
    """(remaining days, total days) of ``period`` seen from ``at``, each rounded to whole
    days (at least one day in total)."""
    start, end = period
    total = max(1, round((end - start) / _DAY))
    remaining = min(total, max(0, round((end - max(at, start)) / _DAY)))
    return remaining, total


async def issue_order_change(
    session: AsyncSession,
    *,
    subscription_id: str,
    price_minor: int,
    currency: str,
    period: tuple[datetime, datetime],
    at: datetime,
    metadata: dict[str, Any],
) -> CreditNote | None:
    """The automatic note for the unused part of ``period`` after ``at`` at
    ``price_minor``, against the subscription's latest invoice (None when it has none
    or nothing is left)."""
    invoice = await latest_invoice(session, subscription_id)
    if invoice is None:
        return None
    remaining, total = remaining_share(period, at)
    amount = round_half_up(Decimal(price_minor) * remaining / total)
    if amount <= 0:
        return None
    note = CreditNote(
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        amount_minor=amount,
        currency=currency.upper(),
        reason=ORDER_CHANGE,
        status=FINALIZED,
        metadata_={**metadata, "remainingDays": remaining, "totalDays": total},
        created_at=at,
        updated_at=at,
    )
    session.add(note)
    await session.flush()
    log.info("credit_note.issued", credit_note_id=note.id, invoice_id=invoice.id, amount=amount)
    return note
