"""Add-ons on subscription invoices (contract add-ons.md "Billing rule",
invoice-composition.md steps 5 and 10).

``for_invoice`` loads the builder's ``Inputs.add_ons``: the customer's pending applied
add-ons in the invoice currency, for this subscription or for none (Improve: one bound to
another subscription waits for that one), oldest first, described by the add-on's
``invoiceDisplayName``, else its name, else ``Add-on charge (<addOnId>)``; the rows stay
locked (PostgreSQL). ``mark`` sets their ``invoiceId`` in the invoice's transaction,
only while still pending, so racing invoices never bill one twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.add_ons.models import AddOn, AppliedAddOn
from novabilling.errors import Conflict
from novabilling.invoices import builder

__all__ = ["customers_with_add_ons", "for_invoice", "mark"]


async def for_invoice(
    session: AsyncSession, *, customer_id: str, subscription_id: str, currency: str
) -> tuple[builder.AddOnCharge, ...]:
    pending = (
        select(AppliedAddOn)
        .where(
            AppliedAddOn.customer_id == customer_id,
            AppliedAddOn.invoice_id.is_(None),
            AppliedAddOn.currency == currency,
            or_(
                AppliedAddOn.subscription_id.is_(None),
                AppliedAddOn.subscription_id == subscription_id,
            ),
        )
        .order_by(AppliedAddOn.created_at, AppliedAddOn.id)
        .with_for_update()
    )
    rows = list(await session.scalars(pending))
    if not rows:
        return ()
    names = {
        a.id: a.invoice_display_name or a.name
        for a in await session.scalars(
            select(AddOn).where(AddOn.id.in_({r.add_on_id for r in rows}))
        )
    }
    return tuple(
        builder.AddOnCharge(
            add_on_id=r.add_on_id,
            amount_minor=r.amount_minor,
            applied_id=r.id,
            description=names.get(r.add_on_id) or "",
        )
        for r in rows
    )


async def mark(session: AsyncSession, applied_ids: Iterable[str], invoice_id: str) -> None:
    ids = [i for i in applied_ids if i]
    if not ids:
        return
    result = await session.execute(
        update(AppliedAddOn)
        .where(AppliedAddOn.id.in_(ids), AppliedAddOn.invoice_id.is_(None))
        .values(invoice_id=invoice_id)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != len(ids):
        raise Conflict("An add-on was billed by another invoice meanwhile")


async def customers_with_add_ons(session: AsyncSession, customer_ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(customer_ids))
    if not wanted:
        return set()
    rows = await session.scalars(
        select(AppliedAddOn.customer_id)
        .where(AppliedAddOn.customer_id.in_(wanted), AppliedAddOn.invoice_id.is_(None))
        .distinct()
    )
    return set(rows)
