"""What customers read from (and delete in) the domains built on top of them: plain calls
into each domain's service (a service may call another domain's service, STYLE §2).

Each function here calls the same-named (or obvious) function of
``novabilling.<domain>.service``: ``list_for_customer`` of subscriptions, invoices and
payments; ``subscriptions.active_count_of``; ``invoices.paid_minor_of``;
``lock_for_customer`` of invoices and subscriptions (deletion check); ``delete_for_customer``
of payments, invoices and subscriptions (deletion).

List functions return wire dicts in the contract's order (newest first).
"""

from __future__ import annotations

import functools
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Integer, ScalarSelect, Select, bindparam, func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from novabilling.customers import service as customers_service
from novabilling.customers.models import Customer
from novabilling.errors import BusinessRule
from novabilling.invoices import service as invoices_service
from novabilling.kit import rowcounts
from novabilling.kit.clock import Clock
from novabilling.payments import service as payments_service
from novabilling.subscriptions import service as subscriptions_service
from novabilling.subscriptions.transitions import Status
from novabilling.webhooks import outbound

log = structlog.get_logger(__name__)

Wire = list[dict[str, Any]]


async def subscriptions_for_customer(session: AsyncSession, customer_id: str) -> Wire:
    """Subscription objects with embedded ``plan`` (no prices), newest first."""
    return await subscriptions_service.list_for_customer(session, customer_id)


async def invoices_for_customer(
    session: AsyncSession, customer_id: str, *, limit: int | None = None
) -> Wire:
    """Invoice objects (no embeds), newest first; at most ``limit`` when given."""
    return await invoices_service.list_for_customer(session, customer_id, limit=limit)


async def payments_for_customer(session: AsyncSession, customer_id: str) -> Wire:
    """Payment objects of all the customer's invoices, newest invoice first."""
    return await payments_service.list_for_customer(session, customer_id)


def active_subscriptions_of(
    customer_id: ColumnElement[str] | InstrumentedAttribute[str],
) -> ScalarSelect[int]:
    """Correlated count of ACTIVE subscriptions, selected with the customers page."""
    return subscriptions_service.active_count_of(customer_id)


async def delete_blocker(session: AsyncSession, customer_id: str) -> str | None:
    """Why the customer cannot be deleted, or None: only an ACTIVE subscription blocks
    (customers.md; TRIALING, PAUSED, PAST_DUE and CANCELED ones go with the customer).

    Row-locks (PostgreSQL) what the deletion will touch, invoices first and then
    subscriptions - the order the charge job and the dunning hook take them in - so the
    statuses checked are the ones deleted and a renewal in flight finishes first."""
    await invoices_service.lock_for_customer(session, customer_id)
    subscriptions = await subscriptions_service.lock_for_customer(session, customer_id)
    if any(sub.status == Status.ACTIVE.value for sub in subscriptions):
        return "Cannot delete customer with active subscriptions"
    return None


async def delete_for_customer(
    session: AsyncSession, customer_id: str, *, data_dir: Path | None = None
) -> None:
    """Delete everything that belongs to the customer, in foreign-key order: payments
    (with refunds) and payment methods, invoices (with lines; stored PDFs removed after
    the commit), subscriptions (with their events and pending proration lines)."""
    await payments_service.delete_for_customer(session, customer_id)
    await invoices_service.delete_for_customer(session, customer_id, data_dir=data_dir)
    await subscriptions_service.delete_for_customer(session, customer_id)


@functools.lru_cache(maxsize=128)
def _page_statement(
    search: bool, country: bool, currency: bool, sort_by: str | None, sort_order: str | None
) -> Select[Any]:
    """The list's page statement for one combination of filters and order (values, limit
    and offset are bound parameters): built once, not on every request."""
    filtered = customers_service.filtered(search, country, currency)
    return (
        filtered.with_only_columns(*Customer.__table__.columns, maintain_column_froms=True)
        .add_columns(
            active_subscriptions_of(Customer.id).label("nb_active"),
            invoices_service.paid_minor_of(Customer.id).label("nb_paid"),
            _total(search, country, currency).label("nb_total"),
        )
        .order_by(*customers_service.ordering(sort_by, sort_order))
        .limit(bindparam("nb_limit", type_=Integer()))
        .offset(bindparam("nb_offset", type_=Integer()))
    )


def _total(search: bool, country: bool, currency: bool) -> ScalarSelect[int]:
    """The list's total as an uncorrelated subquery (computed once per statement). Without
    filters it is the table's row count kept by the database (``kit.rowcounts``: constant
    time at any size); with filters, a count of the matching rows. (A window
    ``count(*) OVER ()`` made the database read and sort every matching row before the
    LIMIT; this way the page comes off the (created_at, id) index either way.)"""
    if not (search or country or currency):
        return rowcounts.total_of(Customer.__tablename__)
    filtered = customers_service.filtered(search, country, currency)
    return (
        filtered.with_only_columns(func.count(), maintain_column_froms=True)
        .correlate(None)
        .scalar_subquery()
    )


async def list_customers(
    connection: AsyncConnection,
    *,
    page: int,
    limit: int,
    search: str | None = None,
    country: str | None = None,
    currency: str | None = None,
    sort_by: str | None = None,
    sort_order: str | None = None,
) -> tuple[list[tuple[RowMapping, int, Decimal]], int]:
    """One page of (customer row, ACTIVE subscriptions, total PAID invoices) and the
    total. The customers come as table rows, not ORM objects: the list only renders them.
    One statement: the page with each customer's ACTIVE subscriptions and PAID totals
    per currency (correlated subqueries) and the filtered total (an uncorrelated one).
    A page past the end has no row to carry the total: only then
    is it counted on its own."""
    customers_service.sort_spec(sort_by, sort_order)  # 400 on a bad sortBy/sortOrder first
    shape = (bool(search), country is not None, currency is not None)
    filters = customers_service.filter_values(search, country, currency)
    values = {**filters, "nb_limit": limit, "nb_offset": (page - 1) * limit}
    page_stmt = _page_statement(*shape, sort_by, sort_order)
    # Core statements on a connection: the rows are plain mappings; an ORM session's
    # execution layer (compile state, result set-up, its transaction bookkeeping) would
    # only add to every list call
    rows = (await connection.execute(page_stmt, values)).mappings().all()
    if rows:
        total = int(rows[0]["nb_total"])
    elif page > 1:
        total = int(await connection.scalar(select(_total(*shape)), filters) or 0)
    else:
        total = 0
    if not rows:
        return [], total
    out = [
        (row, int(row["nb_active"] or 0), invoices_service.paid_total(row["nb_paid"]))
        for row in rows
    ]
    return out, total


async def delete_customer(
    session: AsyncSession,
    customer_id: str,
    *,
    tenant_id: str,
    clock: Clock,
    data_dir: Path | None = None,
) -> None:
    """Delete the customer and everything that belongs to it  in the
    request's transaction; 400 while it has an ACTIVE subscription. Outbound
    ``customer.deleted`` after the commit (webhooks.md)."""
    customer = await customers_service.get_customer(session, customer_id)
    blocker = await delete_blocker(session, customer.id)
    if blocker is not None:
        raise BusinessRule(blocker)
    # Locked last (after its invoices and subscriptions, like the billing engine): from
    # here no new invoice or subscription can reference the row until the commit.
    await session.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update())
    await delete_for_customer(session, customer.id, data_dir=data_dir)
    data = {"customerId": customer.id, "externalId": customer.external_id, "email": customer.email}
    await session.delete(customer)
    await session.flush()
    outbound.emit(tenant_id, "customer.deleted", data, clock=clock, key=customer_id)
    log.info("customer.deleted", customer_id=customer_id)
