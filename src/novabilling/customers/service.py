"""Customers (contract customers.md): create, update, read one, and the list's filters
and order. One tenant per database, so no tenant filters. Views that embed what is billed
to a customer (subscriptions, invoices, payments) and deletion, which cascades to them,
are ``billing.accounts``'s (the domains above customers)."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import ColumnElement, Select, insert, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.customers.schemas import SORTABLE, CustomerCreate, CustomerPatch
from novabilling.errors import Conflict, Invalid, NotFound
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
        phone=body.phone,
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
    for name in ("email", "name", "phone", "country", "currency", "net_payment_terms"):
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


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered(search: str | None, country: str | None, currency: str | None) -> Select[Any]:
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


def ordering(sort_by: str | None, sort_order: str | None) -> list[ColumnElement[Any]]:
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
