"""Wallet credits on subscription invoices (contract invoice-composition.md step 9) and
wallet expiry.

``balances`` loads the customer's usable wallets for ``invoices.builder`` (ACTIVE,
unexpired, same currency, credits left, oldest first) and locks them (PostgreSQL) until
the invoice's transaction commits; ``record`` writes the draft's deductions back as
INVOICED transactions in that same transaction. The conditional UPDATE of
``service.move`` refuses a deduction the balance no longer covers, so two invoices never
overdraw a wallet even where there are no row locks (SQLite).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import structlog
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.errors import Conflict
from novabilling.invoices import builder
from novabilling.kit.clock import Clock
from novabilling.wallets import service
from novabilling.wallets.amounts import balance_minor, credits_for_minor
from novabilling.wallets.models import ACTIVE, INVOICED, OUTBOUND, Wallet

__all__ = ["WalletRaced", "balances", "customers_with_wallets", "expire_due", "record"]

log = structlog.get_logger(__name__)

EXPIRY_BATCH = 500


class WalletRaced(Conflict):
    """A deduction found less balance than when the invoice was drafted (the run is
    rolled back and retried)."""


def _usable(now: datetime) -> list[ColumnElement[bool]]:
    return [
        Wallet.status == ACTIVE,
        Wallet.credits_balance_e4 > 0,
        or_(Wallet.expiration_at.is_(None), Wallet.expiration_at > now),
    ]


async def balances(
    session: AsyncSession, customer_id: str, currency: str, now: datetime
) -> tuple[builder.WalletBalance, ...]:
    """The builder's ``Inputs.wallets``: what each usable wallet is worth in minor units
    of ``currency`` (truncated), oldest wallet first; the rows stay locked."""
    rows = await session.scalars(
        select(Wallet)
        .where(Wallet.customer_id == customer_id, Wallet.currency == currency, *_usable(now))
        .order_by(Wallet.created_at, Wallet.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    out = []
    for wallet in rows:
        minor = balance_minor(wallet.credits_balance_e4, wallet.rate_amount_e4, currency)
        if minor > 0:
            out.append(builder.WalletBalance(wallet_id=wallet.id, balance_minor=minor))
    return tuple(out)


async def customers_with_wallets(
    session: AsyncSession, customer_ids: Iterable[str], now: datetime
) -> set[str]:
    """Those of ``customer_ids`` with a usable wallet (any currency)."""
    wanted = sorted(set(customer_ids))
    if not wanted:
        return set()
    rows = await session.scalars(
        select(Wallet.customer_id).where(Wallet.customer_id.in_(wanted), *_usable(now)).distinct()
    )
    return set(rows)


async def record(
    session: AsyncSession,
    deductions: Iterable[tuple[str, int]],
    *,
    invoice_id: str,
    currency: str,
    now: datetime,
) -> None:
    """Write an issued invoice's wallet deductions (wallet id, minor units) as INVOICED
    transactions. ``WalletRaced`` when a wallet no longer covers its deduction."""
    for wallet_id, minor in deductions:
        wallet = await service.lock(session, wallet_id)
        credits = credits_for_minor(
            minor, wallet.rate_amount_e4, currency, cap_e4=wallet.credits_balance_e4
        )
        if (
            wallet.status != ACTIVE
            or balance_minor(wallet.credits_balance_e4, wallet.rate_amount_e4, currency) < minor
        ):
            raise WalletRaced("Wallet balance changed while the invoice was drafted")
        change = service.Move(OUTBOUND, INVOICED, credits, invoice_id=invoice_id, consumed=True)
        await service.move(session, wallet, change, now=now)
        log.info("wallet.invoiced", wallet_id=wallet_id, invoice_id=invoice_id, minor=minor)


async def expire_due(session: AsyncSession, *, tenant_id: str, clock: Clock, now: datetime) -> int:
    """ACTIVE wallets past ``expirationAt`` at ``now``: credits voided (``reason:
    "expired"``), TERMINATED, ``wallet.terminated``. Returns how many (at most
    ``EXPIRY_BATCH``)."""
    ids = list(
        await session.scalars(
            select(Wallet.id)
            .where(Wallet.status == ACTIVE, Wallet.expiration_at <= now)
            .order_by(Wallet.expiration_at, Wallet.id)
            .limit(EXPIRY_BATCH)
        )
    )
    done = 0
    for wallet_id in ids:
        wallet = await service.lock(session, wallet_id)
        if wallet.status != ACTIVE or wallet.expiration_at is None or wallet.expiration_at > now:
            continue
        await service.end(
            session, wallet, reason="expired", tenant_id=tenant_id, clock=clock, now=now
        )
        done += 1
    return done
