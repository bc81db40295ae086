"""Credit notes (contract credit-notes.md): amounts credited against one invoice.

The API's use cases: create (checks in the contract's order; the invoice row is locked so
two notes cannot together exceed it), list, get, update a DRAFT, finalize, void, with the
``credit_note.*`` outbound events. Refunding a note on a PAID invoice to the provider is
orchestrated by ``billing.credit_notes`` (payments sit above this package): it claims the
note here (``claim_refund``), refunds, and releases the claim if the provider refuses.

Also the automatic ones of subscriptions.md - cancel ``now`` and an upgrade issue a
FINALIZED ``ORDER_CHANGE`` note against the subscription's latest invoice, for the
current price x remaining days / total days of the period (whole days, rounded), in exact
decimals rounded half-up to the currency's minor unit. They skip the amount checks and
emit no outbound event (contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.errors import BusinessRule, Invalid, NotFound
from novabilling.invoices import repository
from novabilling.invoices.credit_note_schemas import CreditNoteCreate, CreditNotePatch
from novabilling.invoices.models import CANCELED, CREDIT_NOTE_STATUSES, CreditNote, Invoice
from novabilling.kit import money
from novabilling.kit.clock import Clock
from novabilling.kit.money import round_half_up
from novabilling.kit.pagination import paginate
from novabilling.webhooks import outbound

__all__ = [
    "ORDER_CHANGE",
    "Found",
    "claim_refund",
    "create",
    "finalize",
    "get",
    "issue_order_change",
    "latest_invoice",
    "list_notes",
    "mark_credited",
    "release_refund",
    "remaining_share",
    "settleable",
    "update_note",
    "void",
]

log = structlog.get_logger(__name__)

ORDER_CHANGE = "ORDER_CHANGE"
DRAFT = "DRAFT"
FINALIZED = "FINALIZED"
VOIDED = "VOIDED"
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


# --- the API ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A note with what its responses embed."""

    note: CreditNote
    invoice: Invoice
    customer: Customer | None


def _event(note: CreditNote, *, reason: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "creditNoteId": note.id,
        "invoiceId": note.invoice_id,
        "customerId": note.customer_id,
        "amount": money.to_number(note.amount_minor, note.currency),
        "currency": note.currency,
    }
    if reason:
        data["reason"] = note.reason
    return data


def _non_negative(value: Decimal, field: str = "amount") -> None:
    if value < 0:
        raise Invalid(field, f"{field} must not be less than 0")


async def _credited(session: AsyncSession, invoice_id: str, *, without: str | None = None) -> int:
    """Sum of the invoice's notes that are not VOIDED (minor units)."""
    stmt = select(func.coalesce(func.sum(CreditNote.amount_minor), 0)).where(
        CreditNote.invoice_id == invoice_id, CreditNote.status != VOIDED
    )
    if without is not None:
        stmt = stmt.where(CreditNote.id != without)
    return int(await session.scalar(stmt) or 0)


async def create(
    session: AsyncSession, *, tenant_id: str, body: CreditNoteCreate, clock: Clock
) -> Found:
    """Checks in the contract's order: validation -> invoice 404 -> customer 404 -> the
    invoice of another customer -> currency (Improve) -> amount above the invoice ->
    total of the invoice's notes above the invoice (the invoice row locked)."""
    _non_negative(body.amount)
    currency = money.normalize_code(body.currency)
    invoice = await repository.get(session, body.invoice_id, lock=True)
    customer = await repository.get_customer(session, body.customer_id)
    if invoice.customer_id != customer.id:
        raise BusinessRule("Invoice does not belong to this customer")
    if currency != invoice.currency.upper():
        raise Invalid("currency", f"currency must be the invoice's currency ({invoice.currency})")
    amount = money.to_minor(body.amount, invoice.currency, field="amount")
    if amount > invoice.total_minor:
        raise BusinessRule("Credit note amount cannot exceed invoice amount")
    credited = await _credited(session, invoice.id)
    if credited + amount > invoice.total_minor:
        total = money.to_wire(credited + amount, invoice.currency)
        limit = money.to_wire(invoice.total_minor, invoice.currency)
        raise BusinessRule(f"Total credit notes ({total}) would exceed invoice amount ({limit})")
    now = clock.now()
    note = CreditNote(
        invoice_id=invoice.id,
        customer_id=customer.id,
        amount_minor=amount,
        currency=currency,
        reason=body.reason,
        status=body.status,
        metadata_=body.metadata,
        refunded_minor=0,
        created_at=body.created_at or now,
        updated_at=now,
    )
    session.add(note)
    await session.flush()
    outbound.emit(
        tenant_id, "credit_note.created", _event(note, reason=True), clock=clock, key=note.id
    )
    log.info("credit_note.created", credit_note_id=note.id, invoice_id=invoice.id, amount=amount)
    return Found(note, invoice, customer)


async def list_notes(
    session: AsyncSession,
    *,
    customer_id: str | None,
    invoice_id: str | None,
    status: str | None,
    page: int,
    limit: int,
) -> tuple[list[Found], int]:
    if status is not None and status not in CREDIT_NOTE_STATUSES:
        raise Invalid("status", f"status must be one of: {', '.join(CREDIT_NOTE_STATUSES)}")
    stmt = select(CreditNote)
    if customer_id is not None:
        stmt = stmt.where(CreditNote.customer_id == customer_id)
    if invoice_id is not None:
        stmt = stmt.where(CreditNote.invoice_id == invoice_id)
    if status is not None:
        stmt = stmt.where(CreditNote.status == status)
    notes, total = await paginate(session, stmt, page, limit)
    return await _embedded(session, notes), total


async def _embedded(session: AsyncSession, notes: list[CreditNote]) -> list[Found]:
    invoice_ids = {n.invoice_id for n in notes}
    customer_ids = {n.customer_id for n in notes}
    invoices = {
        i.id: i
        for i in (await session.scalars(select(Invoice).where(Invoice.id.in_(invoice_ids)))).all()
    }
    customers = {
        c.id: c
        for c in (
            await session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
        ).all()
    }
    return [Found(n, invoices[n.invoice_id], customers.get(n.customer_id)) for n in notes]


async def _note(session: AsyncSession, note_id: str, *, lock: bool = False) -> CreditNote:
    stmt = select(CreditNote).where(CreditNote.id == note_id)
    if lock:
        stmt = stmt.with_for_update()
    note = await session.scalar(stmt)
    if note is None:
        raise NotFound("Credit note not found")
    return note


async def get(session: AsyncSession, note_id: str) -> Found:
    [found] = await _embedded(session, [await _note(session, note_id)])
    return found


async def update_note(
    session: AsyncSession, note_id: str, *, body: CreditNotePatch, clock: Clock
) -> Found:
    nulls = body.explicit_nulls()
    if nulls:
        raise Invalid(nulls[0], f"{nulls[0]} must not be null")
    if body.amount is not None:
        _non_negative(body.amount)
    note = await _note(session, note_id)
    if note.status != DRAFT:
        raise BusinessRule("Only draft credit notes can be updated")
    invoice = await repository.get(session, note.invoice_id, lock=True)
    if body.amount is not None:
        amount = money.to_minor(body.amount, note.currency, field="amount")
        if amount > invoice.total_minor:
            raise BusinessRule("Credit note amount cannot exceed invoice amount")
        if await _credited(session, invoice.id, without=note.id) + amount > invoice.total_minor:
            raise BusinessRule("Total credit notes would exceed invoice amount")
        note.amount_minor = amount
    if body.reason is not None:
        note.reason = body.reason
    if "metadata" in body.model_fields_set:
        note.metadata_ = body.metadata
    note.updated_at = clock.now()
    await session.flush()
    return Found(note, invoice, await session.get(Customer, note.customer_id))


async def _move(
    session: AsyncSession, note_id: str, *, tenant_id: str, clock: Clock, to: str
) -> Found:
    note = await _note(session, note_id, lock=True)
    if to == FINALIZED and note.status != DRAFT:
        raise BusinessRule("Only draft credit notes can be finalized")
    if to == VOIDED:
        if note.status == VOIDED:
            raise BusinessRule("Credit note is already voided")
        if note.refunded_minor or note.credited_minor:
            raise BusinessRule("Credit note has been refunded or credited and cannot be voided")
    note.status = to
    note.updated_at = clock.now()
    await session.flush()
    event = "credit_note.finalized" if to == FINALIZED else "credit_note.voided"
    outbound.emit(tenant_id, event, _event(note), clock=clock, key=note.id)
    log.info(event, credit_note_id=note.id)
    [found] = await _embedded(session, [note])
    return found


async def finalize(session: AsyncSession, note_id: str, *, tenant_id: str, clock: Clock) -> Found:
    return await _move(session, note_id, tenant_id=tenant_id, clock=clock, to=FINALIZED)


async def void(session: AsyncSession, note_id: str, *, tenant_id: str, clock: Clock) -> Found:
    return await _move(session, note_id, tenant_id=tenant_id, clock=clock, to=VOIDED)


# --- refund outcome (orchestrated by billing.credit_notes) --------------------------------


@dataclass(frozen=True)
class RefundClaim:
    note_id: str
    invoice_id: str
    amount_minor: int
    currency: str


async def settleable(session: AsyncSession, note_id: str, *, verb: str) -> CreditNote:
    """The note (locked) if it may get an outcome: FINALIZED, on a PAID invoice, above
    zero, neither refunded nor credited yet (one outcome per note)."""
    note = await _note(session, note_id, lock=True)
    if note.status != FINALIZED:
        raise BusinessRule(f"Only finalized credit notes can be {verb}")
    invoice = await repository.get(session, note.invoice_id)
    if invoice.status != "PAID":
        raise BusinessRule(f"Only credit notes of paid invoices can be {verb}")
    if note.refunded_minor:
        raise BusinessRule("Credit note is already refunded")
    if note.credited_minor:
        raise BusinessRule("Credit note is already credited to a wallet")
    if note.amount_minor <= 0:
        raise BusinessRule(f"Credit note amount is zero: nothing to be {verb}")
    return note


def mark_credited(note: CreditNote, wallet_id: str, *, now: datetime) -> None:
    note.credited_minor = note.amount_minor
    note.credited_at = now
    note.credited_wallet_id = wallet_id
    note.updated_at = now


async def claim_refund(session: AsyncSession, note_id: str, *, clock: Clock) -> RefundClaim:
    """Reserve the refund of a FINALIZED note on a PAID invoice (marked refunded before
    the provider call: two requests cannot both refund it)."""
    note = await settleable(session, note_id, verb="refunded")
    invoice = await repository.get(session, note.invoice_id)
    claimed = await session.execute(
        update(CreditNote)
        .where(CreditNote.id == note.id, CreditNote.refunded_minor == 0)
        .values(refunded_minor=note.amount_minor, refunded_at=clock.now(), updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise BusinessRule("Credit note is already refunded")
    return RefundClaim(note.id, invoice.id, note.amount_minor, note.currency)


async def release_refund(session: AsyncSession, note_id: str) -> None:
    """The provider refused: the note is not refunded after all."""
    await session.execute(
        update(CreditNote)
        .where(CreditNote.id == note_id)
        .values(refunded_minor=0, refunded_at=None)
        .execution_options(synchronize_session=False)
    )
