"""Customers (contract customers.md). One tenant per database, so no tenant filters."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Select, func, insert, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers import relations
from novabilling.customers.models import Customer
from novabilling.customers.schemas import SORTABLE, CustomerCreate, CustomerPatch
from novabilling.errors import BusinessRule, Conflict, Invalid, NotFound
from novabilling.kit.clock import Clock
from novabilling.kit.ids import new_id
from novabilling.webhooks import outbound

log = structlog.get_logger(__name__)

# (attribute, column) of every mapped column: ``metadata_`` is stored as ``metadata``.
_COLUMNS = [(attr.key, attr.columns[0]) for attr in sa_inspect(Customer).column_attrs]


async def get_customer(session: AsyncSession, customer_id: str) -> Customer:
    """The customer or ``NotFound("Customer not found")``."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("Customer not found")
    return customer


def customer_event(customer: Customer) -> dict[str, Any]:
    """``data`` of customer.created / customer.updated (webhooks.md)."""
    return {
        "customerId": customer.id,
        "externalId": customer.external_id,
        "email": customer.email,
        "name": customer.name,
    }


async def create_customer(
    session: AsyncSession, *, body: CustomerCreate, tenant_id: str, clock: Clock
) -> Customer:
    """409 when ``externalId`` is taken: the unique index decides (no look-up first, so
    no race and one round trip less). One Core INSERT on the request's transaction (the
    hottest write of the API: the ORM unit of work cost more than the statement); the
    returned object is complete but not attached to the session. Outbound
    ``customer.created`` after the commit."""
    now = clock.now()
    customer = Customer(
        id=new_id(),
        external_id=body.external_id,
        email=body.email,
        name=body.name,
        phone=None,
        country=body.country,
        currency=body.currency,
        net_payment_terms=body.net_payment_terms,
        metadata_=body.metadata,
        created_at=body.created_at or now,
        updated_at=now,
    )
    values = {column.key: getattr(customer, attr) for attr, column in _COLUMNS}
    connection = await session.connection()
    try:
        await connection.execute(insert(Customer).values(values))
    except IntegrityError as exc:
        raise Conflict(f"Customer with externalId {body.external_id} already exists") from exc
    outbound.emit(
        tenant_id, "customer.created", customer_event(customer), clock=clock, key=customer.id
    )
    log.info("customer.created", customer_id=customer.id)
    return customer


async def update_customer(
    session: AsyncSession, customer_id: str, *, body: CustomerPatch, tenant_id: str, clock: Clock
) -> Customer:
    """``externalId`` and ``createdAt`` are ignored (contract). Outbound
    ``customer.updated`` after the commit (one per update: keyed by the new updatedAt)."""
    nulls = body.explicit_nulls()
    if nulls:
        raise Invalid(nulls[0], f"{nulls[0]} should not be null")
    customer = await get_customer(session, customer_id)
    changes = body.model_dump(exclude_unset=True)
    for name in ("email", "name", "country", "currency", "net_payment_terms"):
        if name in changes:
            setattr(customer, name, changes[name])
    if "metadata" in changes:
        customer.metadata_ = changes["metadata"]
    customer.updated_at = clock.now()
    await session.flush()
    key = f"{customer.id}:{customer.updated_at.isoformat()}"
    outbound.emit(tenant_id, "customer.updated", customer_event(customer), clock=clock, key=key)
    log.info("customer.updated", customer_id=customer.id, fields=sorted(changes))
    return customer


async def delete_customer(
    session: AsyncSession,
    customer_id: str,
    *,
    tenant_id: str,
    clock: Clock,
    data_dir: Path | None = None,
) -> None:
    """Delete the customer and everything that belongs to it (``relations``) in the
    request's transaction; 400 while it has an ACTIVE subscription. Outbound
    ``customer.deleted`` after the commit (webhooks.md)."""
    customer = await get_customer(session, customer_id)
    blocker = await relations.delete_blocker(session, customer.id)
    if blocker is not None:
        raise BusinessRule(blocker)
    # Locked last (after its invoices and subscriptions, like the billing engine): from
    # here no new invoice or subscription can reference the row until the commit.
    await session.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update())
    await relations.delete_for_customer(session, customer.id, data_dir=data_dir)
    data = {"customerId": customer.id, "externalId": customer.external_id, "email": customer.email}
    await session.delete(customer)
    await session.flush()
    outbound.emit(tenant_id, "customer.deleted", data, clock=clock, key=customer_id)
    log.info("customer.deleted", customer_id=customer_id)


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(search: str | None, country: str | None, currency: str | None) -> Select[Any]:
    stmt = select(Customer)
    if search:
        pattern = f"%{_escape_like(search.lower())}%"
        stmt = stmt.where(
            or_(
                Customer.name.ilike(pattern, escape="\\"),
                Customer.email.ilike(pattern, escape="\\"),
            )
        )
    if country is not None:
        stmt = stmt.where(Customer.country == country)
    if currency is not None:
        stmt = stmt.where(Customer.currency == currency)
    return stmt


def _order(sort_by: str | None, sort_order: str | None) -> list[ColumnElement[Any]]:
    key = sort_by if sort_by is not None else "createdAt"
    if key not in SORTABLE:
        raise Invalid("sortBy", f"sortBy must be one of: {', '.join(SORTABLE)}")
    direction = sort_order if sort_order is not None else "desc"
    if direction not in ("asc", "desc"):
        raise Invalid("sortOrder", "sortOrder must be one of: asc, desc")
    column = getattr(Customer, SORTABLE[key])
    if direction == "asc":
        return [column.asc(), Customer.id.asc()]
    return [column.desc(), Customer.id.desc()]


async def list_customers(
    session: AsyncSession,
    *,
    page: int,
    limit: int,
    search: str | None = None,
    country: str | None = None,
    currency: str | None = None,
    sort_by: str | None = None,
    sort_order: str | None = None,
) -> tuple[list[tuple[Customer, int, Decimal]], int]:
    """One page of (customer, ACTIVE subscriptions, total PAID invoices) and the total.
    Three statements: the count, the page with each customer's ACTIVE subscriptions
    (correlated), the PAID totals of the page's customers."""
    order = _order(sort_by, sort_order)
    filtered = _filtered(search, country, currency)
    total = await session.scalar(
        filtered.with_only_columns(func.count(), maintain_column_froms=True)
    )
    page_stmt = (
        filtered.add_columns(relations.active_subscriptions_of(Customer.id))
        .order_by(*order)
        .limit(limit)
        .offset((page - 1) * limit)
    )
    rows = (await session.execute(page_stmt)).tuples().all()
    spent = await relations.total_spent(session, [customer.id for customer, _ in rows])
    out = [(c, int(n or 0), spent.get(c.id, Decimal(0))) for c, n in rows]
    return out, int(total or 0)
