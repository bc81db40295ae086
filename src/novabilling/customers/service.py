"""Customers (contract customers.md): create, update, read one, and the list's filters
and order. One tenant per database, so no tenant filters. Views that embed what is billed
to a customer (subscriptions, invoices, payments) and deletion, which cascades to them,
are ``billing.accounts``'s (the domains above customers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from novabilling.customers import repository
from novabilling.customers.models import Customer
from novabilling.customers.schemas import (
    CustomerCreate,
    CustomerPatch,
    customer_row,
    new_customer_row,
)
from novabilling.errors import Conflict, Invalid
from novabilling.kit.clock import Clock
from novabilling.kit.ids import new_id
from novabilling.testclocks import service as test_clocks
from novabilling.webhooks import outbound

log = structlog.get_logger(__name__)

# Built once, values passed as parameters: one cache key and compiled form for every
# create (a fresh ``.values(...)`` statement was coerced and hashed on each request).
_INSERT = insert(Customer)


get_customer = repository.get
get_by_external_id = repository.by_external_id
filtered = repository.filtered
filter_values = repository.filter_values
ordering = repository.ordering
sort_spec = repository.sort_spec


def customer_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` of customer.created / customer.updated (webhooks.md), from the customer's
    row (column name -> value)."""
    return {
        "customerId": row["id"],
        "externalId": row["external_id"],
        "email": row["email"],
        "name": row["name"],
    }


async def create_customer(
    connection: AsyncConnection, *, body: CustomerCreate, tenant_id: str, clock: Clock
) -> dict[str, Any]:
    """The new customer's row (column name -> value). 409 when ``externalId`` is taken:
    the unique index decides (no look-up first, so no race and one round trip less). One
    Core INSERT on the request's transaction (the hottest write of the API: neither the
    ORM unit of work nor an ORM object; ``connection`` is the request's, see
    ``web.deps.tenant_single_write``). Outbound ``customer.created`` after the commit.
    With ``testClockId`` the customer lives on that test clock (created at its time; 400
    naming the field when there is no such clock)."""
    if body.test_clock_id is not None:
        clock = await test_clocks.attachable(connection, body.test_clock_id)
    row = new_customer_row(body, id=new_id(), now=clock.now())
    try:
        await connection.execute(_INSERT, row)
    except IntegrityError as exc:
        raise Conflict(f"Customer with externalId {body.external_id} already exists") from exc
    outbound.emit(tenant_id, "customer.created", customer_event(row), clock=clock, key=row["id"])
    log.info("customer.created", customer_id=row["id"])
    return row


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
    outbound.emit(
        tenant_id, "customer.updated", customer_event(customer_row(customer)), clock=clock, key=key
    )
    log.info("customer.updated", customer_id=customer.id, fields=sorted(changes))
    return customer
