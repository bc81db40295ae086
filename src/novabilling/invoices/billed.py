"""What earlier invoices already billed for a subscription's period (contract charges.md,
"Which usage an invoice bills"): the plan fee for the period and each usage charge's
amount per bucket, on invoices that are not CANCELED. The period invoice and interim
invoices bill only the difference, so nothing is billed twice.

One statement for many (subscription, period start) keys: a renewal chunk asks once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.invoices.models import CANCELED, Invoice, InvoiceLine

__all__ = ["Billed", "billed_for_periods"]

_INVOICES = cast(Table, Invoice.__table__)
_LINES = cast(Table, InvoiceLine.__table__)


@dataclass
class Billed:
    """Minor units already billed for one (subscription, period start)."""

    fee_minor: int = 0
    usage: dict[tuple[str, str], int] = field(default_factory=dict)  # (charge, bucket)

    @property
    def usage_minor(self) -> int:
        return sum(self.usage.values())

    def charge_minor(self, charge_id: str) -> int:
        return sum(v for (c, _), v in self.usage.items() if c == charge_id)


async def billed_for_periods(
    session: AsyncSession, keys: Iterable[tuple[str, datetime]]
) -> dict[tuple[str, datetime], Billed]:
    """Per (subscription id, period start): fee and usage on its non-CANCELED invoices
    (every key present)."""
    wanted = set(keys)
    out = {key: Billed() for key in wanted}
    if not wanted:
        return out
    inv, line = _INVOICES.c, _LINES.c
    stmt = (
        select(
            inv.subscription_id,
            line.period_start,
            line.type,
            line.charge_id,
            line.charge_bucket,
            func.sum(line.amount_minor),
        )
        .select_from(_LINES.join(_INVOICES, inv.id == line.invoice_id))
        .where(
            inv.subscription_id.in_(sorted({sid for sid, _ in wanted})),
            inv.status != CANCELED,
            line.type.in_(("plan", "usage")),
            line.period_start.in_(sorted({start for _, start in wanted})),
        )
        .group_by(
            inv.subscription_id, line.period_start, line.type, line.charge_id, line.charge_bucket
        )
    )
    for sid, start, kind, charge_id, bucket, amount in await session.execute(stmt):
        found = out.get((str(sid), start))
        if found is None:
            continue
        if kind == "plan":
            found.fee_minor += int(amount)
        elif charge_id is not None:
            key = (str(charge_id), bucket or "")
            found.usage[key] = found.usage.get(key, 0) + int(amount)
    return out
