"""GET /api/tenants/me/usage: counts over the tenant's own database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.kit.money import exponent


def _canonical(value: Decimal) -> str:
    text_value = format(value.normalize(), "f")
    return text_value if text_value != "-0" else "0"


async def tenant_usage(session: AsyncSession) -> dict[str, Any]:
    customers = await session.scalar(text("SELECT count(*) FROM customers"))
    active = await session.scalar(
        text("SELECT count(*) FROM subscriptions WHERE status = 'ACTIVE'")
    )
    invoices = await session.scalar(text("SELECT count(*) FROM invoices"))
    paid = await session.execute(
        text(
            "SELECT currency, sum(total_minor) FROM invoices WHERE status = 'PAID' "
            "GROUP BY currency"
        )
    )
    revenue = Decimal(0)
    for currency, total in paid.all():
        revenue += Decimal(int(total or 0)).scaleb(-exponent(currency))
    return {
        "customers": int(customers or 0),
        "activeSubscriptions": int(active or 0),
        "totalInvoices": int(invoices or 0),
        "totalRevenue": _canonical(revenue),
    }
