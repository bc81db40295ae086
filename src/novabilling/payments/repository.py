"""Queries of the payments domain (STYLE §2): payments, refunds and saved methods in the
tenant database. Rows in, rows out - no wire shapes, no side effects; the service layer
(``payments.service``, ``refunds``, ``charge``) calls these and other domains call the
services."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.errors import NotFound
from novabilling.invoices.models import Invoice
from novabilling.kit.pagination import paginate
from novabilling.payments.models import Payment, PaymentMethod, Refund


async def get(session: AsyncSession, payment_id: str, *, lock: bool = False) -> Payment:
    """The payment (row-locked on PostgreSQL with ``lock``) or ``NotFound``."""
    stmt = select(Payment).where(Payment.id == payment_id)
    if lock:
        stmt = stmt.with_for_update()
    payment = await session.scalar(stmt)
    if payment is None:
        raise NotFound("Payment not found")
    return payment


async def invoices_with_customers(
    session: AsyncSession, invoice_ids: set[str]
) -> tuple[dict[str, Invoice], dict[str, Customer]]:
    """The invoices named and their customers, by id (two queries)."""
    if not invoice_ids:
        return {}, {}
    invoices = {
        i.id: i for i in await session.scalars(select(Invoice).where(Invoice.id.in_(invoice_ids)))
    }
    customer_ids = {i.customer_id for i in invoices.values()}
    customers = (
        {
            c.id: c
            for c in await session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
        }
        if customer_ids
        else {}
    )
    return invoices, customers


async def page(
    session: AsyncSession,
    *,
    page: int,
    limit: int,
    status: str | None = None,
    provider: str | None = None,
    invoice_id: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> tuple[list[Payment], int]:
    """One page of payments matching the filters, newest first, and the total."""
    stmt = select(Payment)
    if status is not None:
        stmt = stmt.where(Payment.status == status)
    if provider is not None:
        stmt = stmt.where(Payment.provider == provider)
    if invoice_id is not None:
        stmt = stmt.where(Payment.invoice_id == invoice_id)
    if date_from is not None:
        stmt = stmt.where(Payment.created_at >= date_from)
    if date_to is not None:
        stmt = stmt.where(Payment.created_at <= date_to)
    return await paginate(session, stmt, page, limit)


async def of_invoice(session: AsyncSession, invoice_id: str) -> Sequence[Payment]:
    """An invoice's payments, oldest first."""
    rows = await session.scalars(
        select(Payment)
        .where(Payment.invoice_id == invoice_id)
        .order_by(Payment.created_at, Payment.id)
    )
    return rows.all()


async def of_customer(session: AsyncSession, customer_id: str) -> Sequence[Payment]:
    """A customer's payments, newest invoice first."""
    rows = await session.scalars(
        select(Payment)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.customer_id == customer_id)
        .order_by(Invoice.created_at.desc(), Invoice.id.desc(), Payment.created_at.desc())
    )
    return rows.all()


async def find_for_event(
    session: AsyncSession, *, payment_id: str | None, provider_reference: str | None
) -> Payment | None:
    """The payment an inbound event is about: our id from the echoed reference, else the
    provider's transaction id."""
    if payment_id:
        found = await session.get(Payment, payment_id)
        if found is not None:
            return found
    if provider_reference:
        return await session.scalar(
            select(Payment).where(Payment.provider_transaction_id == provider_reference)
        )
    return None


async def claim(
    session: AsyncSession, payment: Payment, sources: tuple[str, ...], **values: Any
) -> bool:
    """Compare-and-set: update the payment only while its status is one of ``sources``
    (of two workers recording answers for one payment, one wins - also on SQLite, which
    has no row locks). Refreshes ``payment`` either way."""
    result = await session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status.in_(sources))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(payment)
    return getattr(result, "rowcount", 0) == 1


async def delete_for_customer(session: AsyncSession, customer_id: str) -> None:
    """A customer's payments - by ``customer_id`` or through the customer's invoices, so
    call this before the invoices go - with their refunds, and the saved methods."""
    theirs = or_(
        Payment.customer_id == customer_id,
        Payment.invoice_id.in_(select(Invoice.id).where(Invoice.customer_id == customer_id)),
    )
    await session.execute(
        delete(Refund).where(Refund.payment_id.in_(select(Payment.id).where(theirs)))
    )
    await session.execute(delete(Payment).where(theirs))
    await session.execute(delete(PaymentMethod).where(PaymentMethod.customer_id == customer_id))


async def method_by_token_hash(session: AsyncSession, token_hash: str) -> PaymentMethod | None:
    return await session.scalar(select(PaymentMethod).where(PaymentMethod.token_hash == token_hash))


async def has_default_method(session: AsyncSession, customer_id: str) -> bool:
    found = await session.scalar(
        select(PaymentMethod.id).where(
            PaymentMethod.customer_id == customer_id, PaymentMethod.is_default.is_(True)
        )
    )
    return found is not None
