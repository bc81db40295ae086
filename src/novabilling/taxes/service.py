"""Taxes (contract taxes.md): rates CRUD, assignments to customers, plans and charges, and
the tax sets of subscription invoices (``tax_sets``).

Called by other modules: ``tax_sets`` (the billing engine loads the taxes of the
subscriptions it invoices, in bulk, into the invoice builder's inputs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers import service as customers
from novabilling.errors import Conflict, Invalid, NotFound
from novabilling.kit.clock import Clock
from novabilling.kit.pagination import paginate
from novabilling.plans import service as plans
from novabilling.taxes.models import ChargeTax, CustomerTax, PlanTax, Tax
from novabilling.taxes.schemas import TaxCreate, TaxPatch
from novabilling.usage.models import Charge

__all__ = [
    "KINDS",
    "TaxSets",
    "assign",
    "create_tax",
    "delete_tax",
    "get_tax",
    "list_taxes",
    "tax_sets",
    "taxes_of",
    "unassign",
    "update_tax",
]

log = structlog.get_logger(__name__)

_PLACES = Decimal("0.0001")
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Kind:
    """One kind of assignment: its table, the owner column and wire field."""

    model: type[CustomerTax] | type[PlanTax] | type[ChargeTax]
    owner: str  # column name
    wire: str  # response field


KINDS: dict[str, Kind] = {
    "customer": Kind(CustomerTax, "customer_id", "customerId"),
    "plan": Kind(PlanTax, "plan_id", "planId"),
    "charge": Kind(ChargeTax, "charge_id", "chargeId"),
}


def _rate(value: Decimal, *, field: str = "rate") -> Decimal:
    """A percentage 0-100, stored with 4 decimals (half-up): ``100.0001`` is refused."""
    rate = value.quantize(_PLACES, rounding=ROUND_HALF_UP)
    if value < 0 or value > _HUNDRED or rate > _HUNDRED:
        raise Invalid(field, f"{field} must be between 0 and 100")
    return rate


async def _code_taken(session: AsyncSession, code: str) -> bool:
    return await session.scalar(select(Tax.id).where(Tax.code == code)) is not None


async def create_tax(session: AsyncSession, *, body: TaxCreate, clock: Clock) -> Tax:
    rate = _rate(body.rate)
    conflict = Conflict(f'Tax with code "{body.code}" already exists')
    if await _code_taken(session, body.code):
        raise conflict
    now = clock.now()
    tax = Tax(
        name=body.name,
        code=body.code,
        rate=rate,
        description=body.description,
        applied_by_default=body.applied_by_default,
        created_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(tax)
    except IntegrityError:  # a concurrent create took the code
        raise conflict from None
    log.info("tax.created", tax_id=tax.id, code=tax.code)
    return tax


async def list_taxes(
    session: AsyncSession, *, applied_by_default: str | None, page: int, limit: int
) -> tuple[list[Tax], int]:
    """``appliedByDefault``: ``true`` only those, any other value the others, absent all."""
    stmt = select(Tax)
    if applied_by_default is not None:
        stmt = stmt.where(Tax.applied_by_default.is_(applied_by_default == "true"))
    return await paginate(session, stmt, page, limit)


async def get_tax(session: AsyncSession, tax_id: str) -> Tax:
    tax = await session.get(Tax, tax_id)
    if tax is None:
        raise NotFound("Tax not found")
    return tax


async def update_tax(session: AsyncSession, tax_id: str, *, body: TaxPatch, clock: Clock) -> Tax:
    nulls = body.explicit_nulls()
    if nulls:
        raise Invalid(nulls[0], f"{nulls[0]} must not be null")
    rate = _rate(body.rate) if body.rate is not None else None
    tax = await get_tax(session, tax_id)
    sent = body.model_fields_set
    if body.name is not None:
        tax.name = body.name
    if rate is not None:
        tax.rate = rate
    if "description" in sent:
        tax.description = body.description
    if body.applied_by_default is not None:
        tax.applied_by_default = body.applied_by_default
    tax.updated_at = clock.now()
    await session.flush()
    log.info("tax.updated", tax_id=tax.id)
    return tax


async def delete_tax(session: AsyncSession, tax_id: str) -> None:
    tax = await get_tax(session, tax_id)
    for kind in KINDS.values():  # its assignments go with it (also ON DELETE CASCADE)
        await session.execute(delete(kind.model).where(kind.model.tax_id == tax.id))
    await session.delete(tax)
    await session.flush()
    log.info("tax.deleted", tax_id=tax_id)


# --- assignments --------------------------------------------------------------------------


async def taxes_of(session: AsyncSession, kind: str, owner_id: str) -> list[Tax]:
    """The owner's taxes in assignment order (an unknown owner has none)."""
    k = KINDS[kind]
    owner = getattr(k.model, k.owner)
    rows = await session.scalars(
        select(Tax)
        .join(k.model, k.model.tax_id == Tax.id)
        .where(owner == owner_id)
        .order_by(k.model.position, k.model.id)
    )
    return list(rows.all())


async def _check_owner(session: AsyncSession, kind: str, owner_id: str) -> None:
    if kind == "customer":
        await customers.get_customer(session, owner_id)
    elif kind == "plan":
        await plans.get_plan(session, owner_id)
    elif await session.get(Charge, owner_id) is None:
        raise NotFound("Charge not found")


async def assign(
    session: AsyncSession, kind: str, owner_id: str, *, tax_id: str, clock: Clock
) -> CustomerTax | PlanTax | ChargeTax:
    """Checks in the contract's order: tax 404 -> owner 404 -> pair exists 409."""
    k = KINDS[kind]
    await get_tax(session, tax_id)
    await _check_owner(session, kind, owner_id)
    owner = getattr(k.model, k.owner)
    conflict = Conflict(f"Tax is already assigned to this {kind}")
    existing = await session.scalar(
        select(k.model.id).where(owner == owner_id, k.model.tax_id == tax_id)
    )
    if existing is not None:
        raise conflict
    last = await session.scalar(select(func.max(k.model.position)).where(owner == owner_id))
    row = k.model(
        **{k.owner: owner_id},
        tax_id=tax_id,
        position=int(last or 0) + 1,
        created_at=clock.now(),
    )
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent assignment of the same pair
        raise conflict from None
    log.info("tax.assigned", kind=kind, owner_id=owner_id, tax_id=tax_id)
    return row


async def unassign(session: AsyncSession, kind: str, owner_id: str, tax_id: str) -> None:
    """Always succeeds (contract: no checks)."""
    k = KINDS[kind]
    owner = getattr(k.model, k.owner)
    await session.execute(delete(k.model).where(owner == owner_id, k.model.tax_id == tax_id))
    log.info("tax.unassigned", kind=kind, owner_id=owner_id, tax_id=tax_id)


# --- tax sets of subscription invoices ----------------------------------------------------


@dataclass(frozen=True)
class TaxSets:
    """The taxes of a batch of invoices: plan -> customer -> default (the general set),
    and the charges with their own taxes per plan (contract taxes.md, "Improve: charge
    taxes used")."""

    defaults: tuple[Tax, ...] = ()
    by_plan: dict[str, tuple[Tax, ...]] = field(default_factory=dict)
    by_customer: dict[str, tuple[Tax, ...]] = field(default_factory=dict)
    charges_by_plan: dict[str, tuple[tuple[str, tuple[Tax, ...]], ...]] = field(
        default_factory=dict
    )

    def general(self, plan_id: str | None, customer_id: str) -> tuple[Tax, ...]:
        """The first non-empty of the plan's, the customer's and the default taxes."""
        return (
            (self.by_plan.get(plan_id, ()) if plan_id else ())
            or self.by_customer.get(customer_id, ())
            or self.defaults
        )

    def charges(self, plan_id: str | None) -> tuple[tuple[str, tuple[Tax, ...]], ...]:
        """(charge id, its taxes) of the plan's charges that have taxes of their own."""
        return self.charges_by_plan.get(plan_id, ()) if plan_id else ()


async def _grouped(
    session: AsyncSession, kind: str, owner_ids: set[str]
) -> dict[str, tuple[Tax, ...]]:
    if not owner_ids:
        return {}
    k = KINDS[kind]
    owner = getattr(k.model, k.owner)
    rows = await session.execute(
        select(owner, Tax)
        .join(k.model, k.model.tax_id == Tax.id)
        .where(owner.in_(owner_ids))
        .order_by(owner, k.model.position, k.model.id)
    )
    grouped: dict[str, list[Tax]] = defaultdict(list)
    for owner_id, tax in rows.all():
        grouped[owner_id].append(tax)
    return {key: tuple(value) for key, value in grouped.items()}


async def _charge_taxes(
    session: AsyncSession, plan_ids: set[str]
) -> dict[str, tuple[tuple[str, tuple[Tax, ...]], ...]]:
    if not plan_ids:
        return {}
    rows = await session.execute(
        select(Charge.plan_id, ChargeTax.charge_id, Tax)
        .join(ChargeTax, ChargeTax.tax_id == Tax.id)
        .join(Charge, Charge.id == ChargeTax.charge_id)
        .where(Charge.plan_id.in_(plan_ids))
        .order_by(Charge.plan_id, Charge.created_at, Charge.id, ChargeTax.position, ChargeTax.id)
    )
    grouped: dict[str, dict[str, list[Tax]]] = defaultdict(dict)
    for plan_id, charge_id, tax in rows.all():
        grouped[plan_id].setdefault(charge_id, []).append(tax)
    return {
        plan_id: tuple((charge_id, tuple(taxes)) for charge_id, taxes in charges.items())
        for plan_id, charges in grouped.items()
    }


async def tax_sets(
    session: AsyncSession,
    *,
    plan_ids: Iterable[str | None] = (),
    customer_ids: Iterable[str] = (),
) -> TaxSets:
    """Every tax the given plans (and their charges) and customers may be taxed with:
    four queries, whatever the batch size."""
    plans_wanted = {p for p in plan_ids if p}
    defaults = await session.scalars(
        select(Tax).where(Tax.applied_by_default.is_(True)).order_by(Tax.created_at, Tax.id)
    )
    return TaxSets(
        defaults=tuple(defaults.all()),
        by_plan=await _grouped(session, "plan", plans_wanted),
        by_customer=await _grouped(session, "customer", set(customer_ids)),
        charges_by_plan=await _charge_taxes(session, plans_wanted),
    )
