"""Queries of the invoices domain (STYLE §2): invoices, their lines and the customers they
are billed to, in the tenant database. Rows in, rows out; the services render and decide."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ScalarSelect, Select, String, delete, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.errors import NotFound
from novabilling.invoices.models import PAID, Invoice, InvoiceLine
from novabilling.kit.pagination import paginate
from novabilling.kit.sqlfuncs import comma_joined
from novabilling.subscriptions.models import Subscription

DELETE_CHUNK = 500  # ids per IN (...) list when deleting a customer's invoices


async def get(session: AsyncSession, invoice_id: str, *, lock: bool = False) -> Invoice:
    """The invoice (row-locked on PostgreSQL with ``lock``) or ``NotFound``."""
    stmt = select(Invoice).where(Invoice.id == invoice_id)
    if lock:
        stmt = stmt.with_for_update()
    invoice = await session.scalar(stmt)
    if invoice is None:
        raise NotFound("Invoice not found")
    return invoice


async def get_customer(session: AsyncSession, customer_id: str) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("Customer not found")
    return customer


async def subscription_exists(session: AsyncSession, subscription_id: str) -> bool:
    found = await session.scalar(select(Subscription.id).where(Subscription.id == subscription_id))
    return found is not None


async def page(
    session: AsyncSession,
    *,
    page: int,
    limit: int,
    status: str | None = None,
    customer_id: str | None = None,
    subscription_id: str | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    created_until: datetime | None = None,
) -> tuple[list[tuple[Invoice, Customer]], int]:
    """One page of (invoice, customer) matching the filters, newest first, and the total."""
    stmt = cast(
        "Select[Any]",
        select(Invoice, Customer).join(Customer, Customer.id == Invoice.customer_id),
    )
    if status is not None:
        stmt = stmt.where(Invoice.status == status)
    if customer_id is not None:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    if subscription_id is not None:
        stmt = stmt.where(Invoice.subscription_id == subscription_id)
    if created_from is not None:
        stmt = stmt.where(Invoice.created_at >= created_from)
    if created_before is not None:
        stmt = stmt.where(Invoice.created_at < created_before)
    if created_until is not None:
        stmt = stmt.where(Invoice.created_at <= created_until)
    rows, total = await paginate(
        session, stmt, page, limit, Invoice.created_at.desc(), Invoice.id.desc()
    )
    return [(row[0], row[1]) for row in rows], total


async def newest(
    session: AsyncSession,
    *,
    subscription_id: str | None = None,
    customer_id: str | None = None,
    limit: int | None = None,
) -> Sequence[Invoice]:
    """A subscription's or a customer's invoices, newest first."""
    stmt = select(Invoice).order_by(Invoice.created_at.desc(), Invoice.id.desc())
    if subscription_id is not None:
        stmt = stmt.where(Invoice.subscription_id == subscription_id)
    if customer_id is not None:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.scalars(stmt)).all()


async def paid_minor_by_customer(
    session: AsyncSession, customer_ids: list[str]
) -> list[tuple[str, str, int]]:
    """(customer id, currency, PAID total in minor units) per customer and currency."""
    if not customer_ids:
        return []
    rows = await session.execute(
        select(Invoice.customer_id, Invoice.currency, func.sum(Invoice.total_minor))
        .where(Invoice.customer_id.in_(customer_ids), Invoice.status == PAID)
        .group_by(Invoice.customer_id, Invoice.currency)
    )
    return [(cid, currency, int(minor or 0)) for cid, currency, minor in rows]


def paid_minor_of(customer_id: Any) -> ScalarSelect[str | None]:
    """Correlated to ``customer_id`` (a column of the outer query): the customer's PAID
    totals per currency in minor units as ``"NGN:150000,USD:2500"`` (NULL when none), to
    select alongside customers in one statement (``parse_paid_minor`` reads it)."""
    per_currency = (
        select(Invoice.currency.label("currency"), func.sum(Invoice.total_minor).label("minor"))
        .where(Invoice.customer_id == customer_id, Invoice.status == PAID)
        .group_by(Invoice.currency)
        .correlate_except(Invoice)
        .subquery()
    )
    entry = per_currency.c.currency + ":" + sql_cast(per_currency.c.minor, String)
    return select(comma_joined(entry)).scalar_subquery()


def parse_paid_minor(text: str | None) -> list[tuple[str, int]]:
    """``paid_minor_of``'s value as (currency, minor units) pairs."""
    if not text:
        return []
    pairs = (entry.split(":", 1) for entry in text.split(","))
    return [(currency, int(minor)) for currency, minor in pairs]


async def lock_for_customer(session: AsyncSession, customer_id: str) -> None:
    """Row-lock a customer's invoices on PostgreSQL (deletion): invoices first, then
    subscriptions, the order the charge job and the dunning hook lock in."""
    await session.execute(
        select(Invoice.id)
        .where(Invoice.customer_id == customer_id)
        .order_by(Invoice.id)
        .with_for_update()
    )


async def delete_for_customer(session: AsyncSession, customer_id: str) -> list[str]:
    """Delete a customer's invoices and their lines; returns the ids deleted."""
    ids = list(
        (await session.scalars(select(Invoice.id).where(Invoice.customer_id == customer_id))).all()
    )
    for offset in range(0, len(ids), DELETE_CHUNK):
        chunk = ids[offset : offset + DELETE_CHUNK]
        await session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id.in_(chunk)))
        await session.execute(delete(Invoice).where(Invoice.id.in_(chunk)))
    return ids
