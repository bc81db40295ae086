"""The renewal fast path: plain renewals of many subscriptions in one transaction with
bulk statements (the per-subscription path in ``renewals.py`` handles everything else).

"Plain" = ACTIVE or PAST_DUE, period ended, no cancellation due or scheduled, no plan
change scheduled, no pending proration lines, first period already invoiced, and the
period end on the anchor's schedule. For those, ``lifecycle.advance_period`` amounts to
moving ``[current_period_start, current_period_end)`` one period forward and logging a
``renewed`` event; this module does exactly that for the whole batch, plus the invoices,
their lines and a block of invoice numbers reserved with one counter update - all in ONE
transaction, so a crash leaves nothing half done and the batch is simply redone.

Anything unexpected (a unique-period conflict with another worker, a row that stopped
being plain) rolls the batch back and hands its subscriptions to the per-subscription path.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.billing.periods import next_period
from novabilling.billing.renewals import IN_ADVANCE, TickContext, _describe, _grace_days
from novabilling.customers.models import Customer
from novabilling.invoices import numbering
from novabilling.invoices.models import DRAFT, PAID, PENDING, Invoice, InvoiceCounter, InvoiceLine
from novabilling.invoices.service import net_terms_days
from novabilling.kit.money import to_number
from novabilling.kit.timestamps import to_wire
from novabilling.subscriptions.models import PendingInvoiceItem, Subscription, SubscriptionEvent

_SUB = cast(Table, Subscription.__table__)
_INVOICES = cast(Table, Invoice.__table__)
_LINES = cast(Table, InvoiceLine.__table__)
_EVENTS = cast(Table, SubscriptionEvent.__table__)


_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_TAIL = 36**15


def _base36(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id() -> str:
    """Same shape as ``kit.ids.new_id`` (``c`` + 9 time + 15 random base-36 chars) from one
    ``os.urandom`` call instead of 15 ``secrets.choice`` calls (hot loop)."""
    tail = int.from_bytes(os.urandom(10)) % _TAIL
    return "c" + _base36(time.time_ns() // 1_000_000, 9) + _base36(tail, 15)


@dataclass(frozen=True)
class Issued:
    invoice_id: str
    subscription_id: str
    status: str
    charge: bool


async def _plain(session: AsyncSession, ids: list[str], now: datetime) -> list[Any]:
    stmt = select(_SUB).where(
        _SUB.c.id.in_(ids),
        _SUB.c.status.in_(("ACTIVE", "PAST_DUE")),
        _SUB.c.current_period_end <= now,
        _SUB.c.cancel_at.is_(None),
        _SUB.c.cancel_at_period_end.is_(False),
        _SUB.c.scheduled_plan_id.is_(None),
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list((await session.execute(stmt)).all())
    if not rows:
        return rows
    with_items = set(
        (
            await session.scalars(
                select(PendingInvoiceItem.subscription_id).where(
                    PendingInvoiceItem.subscription_id.in_([r.id for r in rows]),
                    PendingInvoiceItem.invoice_id.is_(None),
                )
            )
        ).all()
    )
    return [
        r
        for r in rows
        if r.id not in with_items
        and not (
            r.billing_timing == IN_ADVANCE
            and r.trial_end is None
            and r.current_period_start == r.started_at
        )
    ]


async def renew_batch(
    maker: async_sessionmaker[AsyncSession], ctx: TickContext, ids: list[str]
) -> tuple[list[Issued], set[str]]:
    """Renew the plain subscriptions among ``ids`` in one transaction. Returns the issued
    invoices and the ids this path did not renew (for the per-subscription path)."""
    now = ctx.now
    async with maker() as session:
        rows = await _plain(session, ids, now)
        if not rows:
            await session.rollback()
            return [], set(ids)
        customers = {
            c.id: c
            for c in (
                await session.scalars(
                    select(Customer).where(Customer.id.in_({r.customer_id for r in rows}))
                )
            ).all()
        }
        renewed: list[tuple[Any, datetime, datetime]] = []
        for row in rows:
            try:
                start, end = next_period(
                    row.billing_anchor, row.billing_interval, row.current_period_end
                )
            except ValueError:
                continue
            renewed.append((row, start, end))
        if not renewed:
            await session.rollback()
            return [], set(ids)
        top = (
            await session.execute(
                update(InvoiceCounter)
                .where(InvoiceCounter.name == numbering.COUNTER)
                .values(value=InvoiceCounter.value + len(renewed))
                .returning(InvoiceCounter.value)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one()
        first_number = int(top) - len(renewed) + 1
        invoices: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        issued: list[Issued] = []
        for n, (row, start, end) in enumerate(renewed):
            plan = await ctx.plan(session, row.plan_id)
            if row.billing_timing == IN_ADVANCE:
                period = (start, end)
            else:
                period = (row.current_period_start, row.current_period_end)
            amount = row.amount_minor
            plan_name = plan.name if plan is not None else "Subscription"
            grace = _grace_days(plan, ctx.tenant)
            status = PAID if amount == 0 else (DRAFT if grace > 0 else PENDING)
            currency = row.currency.upper()
            customer = customers.get(row.customer_id) or Customer(net_payment_terms=None)
            terms = net_terms_days(customer, plan.net_payment_terms if plan else None, ctx.tenant)
            description = _describe(plan_name, row.billing_interval, *period)
            metadata: dict[str, Any] = {
                "planName": plan_name,
                "billingInterval": row.billing_interval,
                "billingTiming": row.billing_timing,
                "periodStart": to_wire(period[0]),
                "periodEnd": to_wire(period[1]),
                "items": [
                    {
                        "description": description,
                        "quantity": 1,
                        "unitAmount": to_number(amount, currency),
                        "type": "plan",
                    }
                ],
                "taxAmount": 0,
            }
            grace_ends = now + timedelta(days=grace) if status == DRAFT else None
            if grace_ends is not None:
                metadata["gracePeriodEndsAt"] = to_wire(grace_ends)
            invoice_id = new_id()
            invoices.append(
                {
                    "id": invoice_id,
                    "customer_id": row.customer_id,
                    "subscription_id": row.id,
                    "invoice_number": numbering.format_number(first_number + n),
                    "status": status,
                    "currency": currency,
                    "subtotal_minor": amount,
                    "tax_minor": 0,
                    "total_minor": amount,
                    "due_date": now + timedelta(days=terms),
                    "paid_at": now if status == PAID else None,
                    "finalized_at": None if status == DRAFT else now,
                    "voided_at": None,
                    "period_start": period[0],
                    "period_end": period[1],
                    "pdf_url": None,
                    "collection_attempts": 0,
                    "next_retry_at": None,
                    "grace_ends_at": grace_ends,
                    "metadata": metadata,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            lines.append(
                {
                    "id": new_id(),
                    "invoice_id": invoice_id,
                    "position": 0,
                    "type": "plan",
                    "description": description,
                    "quantity": 1,
                    "unit_amount_minor": amount,
                    "amount_minor": amount,
                    "period_start": period[0],
                    "period_end": period[1],
                }
            )
            moves.append({"b_id": row.id, "b_start": start, "b_end": end})
            events.append(
                {
                    "id": new_id(),
                    "subscription_id": row.id,
                    "from_status": row.status,
                    "to_status": row.status,
                    "reason": "renewed",
                    "at": now,
                    "data": {
                        "previousPeriod": [
                            to_wire(row.current_period_start),
                            to_wire(row.current_period_end),
                        ],
                        "period": [to_wire(start), to_wire(end)],
                    },
                }
            )
            issued.append(
                Issued(
                    invoice_id,
                    row.id,
                    status,
                    charge=ctx.can_charge and bool(row.payment_method_id),
                )
            )
        try:
            await session.execute(_INVOICES.insert(), invoices)
            await session.execute(_LINES.insert(), lines)
            await session.execute(_EVENTS.insert(), events)
            await session.execute(
                _SUB.update()
                .where(_SUB.c.id == bindparam("b_id"))
                .values(
                    current_period_start=bindparam("b_start"),
                    current_period_end=bindparam("b_end"),
                    updated_at=now,
                ),
                moves,
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return [], set(ids)
    done = {i.subscription_id for i in issued}
    return issued, set(ids) - done
