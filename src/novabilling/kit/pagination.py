"""Paginated lists (contract README §6).

Two ways to read ``page`` / ``limit`` from the query string:

- **strict** (customers, invoices, payments): ``page`` integer >= 1, ``limit`` integer
  1-100, any query parameter not in the allow-list -> 400 naming ``property``; a bad value
  -> 400 naming ``page`` / ``limit``.
- **lenient** (subscriptions, wallets): bad, missing or < 1 values fall back to the
  defaults, ``limit`` is capped at 100 (echoed in ``meta.limit``), unknown parameters are
  ignored.

Router (declare the session first so auth is checked before the query string; the
dependencies are in ``web.paging``)::

    CustomerPage = Annotated[PageParams, Depends(strict_page("search", "country"))]

    @router.get("")
    async def list_customers(session: TenantSession, params: CustomerPage) -> dict[str, Any]:
        rows, total = await service.list_customers(session, page=params.page, ...)
        return envelope([schemas.customer_out(r) for r in rows], total, params.page,
                        params.limit)

Service: ``rows, total = await paginate(session, select(Customer).where(...), page, limit)``.

``paginate(session, stmt, page, limit, *order_by)`` returns ``(rows, total)``: rows are
entities for a one-entity select (values for one column), else ``Row`` tuples; without
``order_by`` it sorts newest first (``newest_first`` of the first selected entity): ties
broken by id keep pages from overlapping. ``kit`` imports no domain module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from novabilling.errors import FieldError, Invalid
from novabilling.kit.wire import WireOut

T = TypeVar("T")

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "PageParams",
    "envelope",
    "newest_first",
    "paginate",
    "parse_lenient",
    "parse_strict",
]

DEFAULT_PAGE = 1
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MAX_DIGITS = 9  # page/limit beyond this are not integers we can offset by


@dataclass(frozen=True)
class PageParams:
    page: int = DEFAULT_PAGE
    limit: int = DEFAULT_LIMIT

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def _as_int(raw: str) -> int | None:
    text = raw.strip()
    body = text[1:] if text.startswith("-") else text
    if not body.isdigit() or not body.isascii() or len(body) > _MAX_DIGITS:
        return None
    return int(text)


def _raise(errors: list[FieldError]) -> None:
    if errors:
        exc = Invalid(errors[0].field, errors[0].message)
        exc.errors = errors
        raise exc


def parse_strict(query: Mapping[str, str], allowed: Iterable[str] = ()) -> PageParams:
    """Strict page/limit; ``allowed`` names the other accepted query parameters.

    Raises ``Invalid`` carrying one entry per broken rule (unknown keys -> ``property``).
    """
    known = {"page", "limit", *allowed}
    errors = [
        FieldError("property", f"property {key} should not exist")
        for key in query
        if key not in known
    ]
    values = {"page": DEFAULT_PAGE, "limit": DEFAULT_LIMIT}
    for name, low, high in (("page", 1, None), ("limit", 1, MAX_LIMIT)):
        raw = query.get(name)
        if raw is None:
            continue
        number = _as_int(raw)
        if number is None:
            errors.append(FieldError(name, f"{name} must be an integer number"))
        elif number < low:
            errors.append(FieldError(name, f"{name} must not be less than {low}"))
        elif high is not None and number > high:
            errors.append(FieldError(name, f"{name} must not be greater than {high}"))
        else:
            values[name] = number
    _raise(errors)
    return PageParams(page=values["page"], limit=values["limit"])


def parse_lenient(query: Mapping[str, str], *, default_limit: int = DEFAULT_LIMIT) -> PageParams:
    """Lenient page/limit: bad or < 1 -> defaults, ``limit`` capped at ``MAX_LIMIT``."""
    page = _as_int(query.get("page", "")) or DEFAULT_PAGE
    limit = _as_int(query.get("limit", "")) or default_limit
    return PageParams(
        page=page if page >= 1 else DEFAULT_PAGE,
        limit=min(limit, MAX_LIMIT) if limit >= 1 else default_limit,
    )


def newest_first(model: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """``created_at DESC, id DESC``: the contract's default order, stable across pages."""
    return (model.created_at.desc(), model.id.desc())


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    page: int,
    limit: int,
    *order_by: ColumnElement[Any],
) -> tuple[list[Any], int]:
    """One page of ``stmt`` and the total row count (before paging).

    ``order_by`` must end with a unique column; when omitted, ``newest_first`` of the
    statement's first selected entity is used.
    """
    if not order_by:
        order_by = newest_first(stmt.column_descriptions[0]["entity"])
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    page_stmt = stmt.order_by(None).order_by(*order_by).limit(limit).offset((page - 1) * limit)
    result = await session.execute(page_stmt)
    rows: list[Any] = (
        list(result.scalars().all()) if len(stmt.column_descriptions) == 1 else list(result.all())
    )
    return rows, int(total or 0)


def envelope(data: list[Any], total: int, page: int, limit: int) -> dict[str, Any]:
    """``{"data": [...], "meta": {total, page, limit, totalPages}}``; totalPages 0 if empty."""
    return {
        "data": data,
        "meta": {
            "total": total,
            "page": page,
            "limit": limit,
            "totalPages": -(-total // limit) if total else 0,
        },
    }


class PageMeta(WireOut):
    total: int
    page: int
    limit: int
    total_pages: int


class PageOut(WireOut, Generic[T]):
    """The list envelope ``envelope`` builds (documentation model)."""

    data: list[T]
    meta: PageMeta

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        return f"{params[0].__name__.removesuffix('Out')}Page"
