"""Queries of the customers domain (STYLE §2): one customer, and the list's filters and
order as a statement the caller pages (``billing.accounts`` adds the columns it embeds)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, String, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.customers.schemas import SORTABLE
from novabilling.errors import Invalid, NotFound


async def get(session: AsyncSession, customer_id: str) -> Customer:
    """The customer or ``NotFound("Customer not found")``."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("Customer not found")
    return customer


async def by_external_id(session: AsyncSession, external_id: str) -> Customer:
    """The customer with this ``externalId`` or ``NotFound("Customer not found")``."""
    customer = await session.scalar(select(Customer).where(Customer.external_id == external_id))
    if customer is None:
        raise NotFound("Customer not found")
    return customer


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered(search: bool, country: bool, currency: bool) -> Select[Any]:
    """Customers whose name or e-mail contains the ``search`` parameter (case-insensitive),
    exact ``country`` and ``currency`` - each filter only when its flag is set. The values
    are bound parameters (``filter_values``), so one statement per combination of filters
    serves every request (built and compiled once)."""
    stmt = select(Customer)
    if search:
        pattern = bindparam("nb_search", type_=String())
        stmt = stmt.where(
            or_(
                Customer.name.ilike(pattern, escape="\\"),
                Customer.email.ilike(pattern, escape="\\"),
            )
        )
    if country:
        stmt = stmt.where(Customer.country == bindparam("nb_country", type_=String()))
    if currency:
        stmt = stmt.where(Customer.currency == bindparam("nb_currency", type_=String()))
    return stmt


def filter_values(search: str | None, country: str | None, currency: str | None) -> dict[str, Any]:
    """The bound values of ``filtered(bool(search), country is not None, currency is not None)``."""
    values: dict[str, Any] = {}
    if search:
        values["nb_search"] = f"%{_escape_like(search.lower())}%"
    if country is not None:
        values["nb_country"] = country
    if currency is not None:
        values["nb_currency"] = currency
    return values


def sort_spec(sort_by: str | None, sort_order: str | None) -> tuple[str, str]:
    """(attribute, direction) of the list's sort: an allow-listed ``sortBy`` (default
    createdAt) and asc/desc (default desc); 400 naming the parameter otherwise. Cheap:
    the list checks it on every request, its statement is built once per shape."""
    key = sort_by if sort_by is not None else "createdAt"
    if key not in SORTABLE:
        raise Invalid("sortBy", f"sortBy must be one of: {', '.join(SORTABLE)}")
    direction = sort_order if sort_order is not None else "desc"
    if direction not in ("asc", "desc"):
        raise Invalid("sortOrder", "sortOrder must be one of: asc, desc")
    return SORTABLE[key], direction


def ordering(sort_by: str | None, sort_order: str | None) -> list[ColumnElement[Any]]:
    """The list's ORDER BY: an allow-listed column, then the id (stable pages)."""
    attribute, direction = sort_spec(sort_by, sort_order)
    column = getattr(Customer, attribute)
    if direction == "asc":
        return [column.asc(), Customer.id.asc()]
    return [column.desc(), Customer.id.desc()]
