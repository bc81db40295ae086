"""Payment reminders (the original's reminder series): e-mails about an unpaid invoice
(PENDING or FAILED, above zero) around its due date, each stage sent once per invoice.

Stages by calendar days (UTC) from today to the due date: ``upcoming`` 3 to 1 days
before, ``due_today`` on the day, ``overdue_3`` 3 to 6 days after, ``overdue_7`` 7 to 13
days after, ``overdue_14`` (final notice) 14 or 15 days after. A stage whose days have
passed is not sent late; none is sent within a day of the invoice itself. The billing
tick calls ``queue_due``; the ``payment_reminders`` row (unique per invoice and stage) is
written in the same transaction as the queued e-mail (outbox), so each is sent once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.invoices.models import FAILED, PENDING, Invoice
from novabilling.kit.db import TenantBase, id_column, plan_for_current_size
from novabilling.kit.ids import new_id
from novabilling.kit.timestamps import to_wire
from novabilling.notifications import jobs as emails

__all__ = ["STAGES", "PaymentReminder", "Stage", "queue_due", "stage_named"]

BATCH = 500
QUIET_AFTER_ISSUE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    first_day: int  # days from today to the due date (negative: overdue), inclusive
    last_day: int


STAGES: tuple[Stage, ...] = (
    Stage("upcoming", 1, 3),
    Stage("due_today", 0, 0),
    Stage("overdue_3", -6, -3),
    Stage("overdue_7", -13, -7),
    Stage("overdue_14", -15, -14),
)


def stage_named(name: str) -> Stage | None:
    return next((s for s in STAGES if s.name == name), None)


class PaymentReminder(TenantBase):
    __tablename__ = "payment_reminders"
    __table_args__ = (UniqueConstraint("invoice_id", "stage"),)

    id: Mapped[str] = id_column()
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime]


# the reminder query: unpaid invoices by due date
Index("ix_invoices_status_due_date", Invoice.status, Invoice.due_date)


def _window(stage: Stage, now: datetime) -> tuple[datetime, datetime]:
    """Due dates whose UTC calendar day is ``first_day``..``last_day`` days from today."""
    midnight = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    return midnight + timedelta(days=stage.first_day), midnight + timedelta(days=stage.last_day + 1)


Scope = Callable[[Any], Any]  # narrows a select of invoices (e.g. to a test clock's customers)


async def queue_due(
    session: AsyncSession, *, tenant_id: str, now: datetime, scope: Scope | None = None
) -> int:
    """Record and queue every reminder due at ``now`` (at most ``BATCH`` per stage) among
    the invoices ``scope`` leaves; returns how many. The caller commits (and rolls back on
    a unique-key race: the next tick finds what is still due)."""
    await plan_for_current_size(session)
    count = 0
    for stage in STAGES:
        low, high = _window(stage, now)
        sent = exists().where(
            PaymentReminder.invoice_id == Invoice.id, PaymentReminder.stage == stage.name
        )
        stmt = (
            select(Invoice.id)
            .where(
                Invoice.status.in_((PENDING, FAILED)),
                Invoice.due_date >= low,
                Invoice.due_date < high,
                Invoice.total_minor > 0,
                Invoice.finalized_at <= now - QUIET_AFTER_ISSUE,
                ~sent,
            )
            .order_by(Invoice.due_date, Invoice.id)
            .limit(BATCH)
        )
        if scope is not None:
            stmt = scope(stmt)
        for invoice_id in (await session.scalars(stmt)).all():
            session.add(
                PaymentReminder(id=new_id(), invoice_id=invoice_id, stage=stage.name, sent_at=now)
            )
            emails.queue(
                tenant_id,
                emails.PAYMENT_REMINDER,
                {"invoice_id": invoice_id, "stage": stage.name, "at": to_wire(now)},
                key=f"{invoice_id}:{stage.name}",
            )
            count += 1
    await session.flush()
    return count
