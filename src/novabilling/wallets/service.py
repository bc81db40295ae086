"""Wallets (contract wallets.md): create, read, update, terminate, top up / void, and
the transactions list.

Every balance change takes the wallet row lock (``FOR UPDATE`` on PostgreSQL) and is a
conditional UPDATE (``credits_balance_e4 >= x`` for outbound credits), in the request's
one transaction, next to the transaction row it records.

Purchased credits (``paidCredits``) are invoiced: a PENDING invoice for credits × rate in
the wallet's currency is issued (e-mailed, ``invoice.finalized``) and the PURCHASED
transaction names it in ``invoiceId``; the credits are usable at once (an account top-up
billed to the customer). ``invoicePaidCredits: false`` grants them without an invoice,
as the original did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers import service as customers
from novabilling.customers.models import Customer
from novabilling.errors import BusinessRule, Invalid, NotFound
from novabilling.invoices import builder, lifecycle
from novabilling.invoices import service as invoices
from novabilling.invoices.models import PENDING as INVOICE_PENDING
from novabilling.kit import money
from novabilling.kit.clock import Clock
from novabilling.kit.ids import new_id
from novabilling.kit.pagination import newest_first, paginate
from novabilling.payments import providers_service
from novabilling.tenancy.profiles import TenantProfile
from novabilling.wallets.amounts import (
    E4,
    MAX_BALANCE_E4,
    amount_e4,
    e4_in,
    e4_wire,
)
from novabilling.wallets.models import (
    ACTIVE,
    GRANTED,
    INBOUND,
    OUTBOUND,
    PURCHASED,
    SETTLED,
    TERMINATED,
    VOIDED,
    Wallet,
    WalletTransaction,
)
from novabilling.wallets.schemas import TopUp, WalletCreate, WalletPatch
from novabilling.webhooks import outbound

__all__ = [
    "Move",
    "check_currency",
    "create_wallet",
    "end",
    "get_wallet",
    "list_transactions",
    "list_wallets",
    "lock",
    "move",
    "terminate",
    "top_up",
    "update_wallet",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Move:
    """One balance change: ``credits_e4`` in (INBOUND) or out (OUTBOUND) as ``kind``."""

    direction: str
    kind: str
    credits_e4: int
    metadata: dict[str, Any] | None = None
    invoice_id: str | None = None
    consumed: bool = False  # counted in consumedCredits / consumedAmount


async def check_currency(session: AsyncSession, value: str, *, field: str = "currency") -> str:
    """Upper-cased supported currency that the tenant's payment providers can charge
    (400 naming ``field`` otherwise; a tenant with no active provider is not refused)."""
    code = money.normalize_code(value, field=field)
    money.exponent(code, field=field)
    if await providers_service.can_charge(session, code) is False:
        raise Invalid(field, f"{field} {code} cannot be charged by any active payment provider")
    return code


async def lock(session: AsyncSession, wallet_id: str) -> Wallet:
    """The wallet, row-locked on PostgreSQL, or ``NotFound("Wallet not found")``."""
    wallet = await session.scalar(
        select(Wallet)
        .where(Wallet.id == wallet_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if wallet is None:
        raise NotFound("Wallet not found")
    return wallet


async def move(
    session: AsyncSession, wallet: Wallet, change: Move, *, now: datetime
) -> WalletTransaction:
    """Apply ``change`` to the (locked) wallet and record its transaction. Outbound
    credits never take the balance below zero: the UPDATE only matches while the
    balance covers them (``BusinessRule`` otherwise)."""
    credits = change.credits_e4
    money_e4 = amount_e4(credits, wallet.rate_amount_e4)
    values: dict[str, Any] = {"updated_at": now}
    stmt = update(Wallet).where(Wallet.id == wallet.id)
    if change.direction == INBOUND:
        stmt = stmt.where(
            Wallet.status == ACTIVE, Wallet.credits_balance_e4 + credits < MAX_BALANCE_E4
        )
        values["credits_balance_e4"] = Wallet.credits_balance_e4 + credits
    else:
        stmt = stmt.where(Wallet.credits_balance_e4 >= credits)
        values["credits_balance_e4"] = Wallet.credits_balance_e4 - credits
        if change.consumed:
            values["consumed_credits_e4"] = Wallet.consumed_credits_e4 + credits
            values["consumed_amount_e4"] = Wallet.consumed_amount_e4 + money_e4
    result = await session.execute(
        stmt.values(**values).execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        await session.refresh(wallet)
        if change.direction == INBOUND:
            raise BusinessRule("Wallet balance would be too large")
        raise BusinessRule("Voided credits exceed the wallet balance")
    tx = WalletTransaction(
        id=new_id(),
        wallet_id=wallet.id,
        transaction_type=change.direction,
        status=SETTLED,
        transaction_status=change.kind,
        credit_amount_e4=credits,
        amount_e4=money_e4,
        invoice_id=change.invoice_id,
        settled_at=now,
        metadata_=change.metadata,
        created_at=now,
    )
    session.add(tx)
    await session.flush()
    await session.refresh(wallet)
    return tx


def _event(wallet: Wallet, *, currency: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"walletId": wallet.id, "customerId": wallet.customer_id}
    if currency:
        data["currency"] = wallet.currency
    return data


def _credits(value: Decimal | None, field: str) -> int:
    return 0 if value is None else e4_in(value, field=field)


async def _purchase_invoice(
    session: AsyncSession,
    wallet: Wallet,
    customer: Customer,
    credits_e4: int,
    *,
    tenant: TenantProfile,
    clock: Clock,
) -> str | None:
    """Issue the PENDING invoice for purchased credits (None when they are worth less
    than half a minor unit; the amount is rounded half-up like every invoice line)."""
    scale = Decimal(10 ** money.decimals_of(wallet.currency)) / (E4 * E4)
    minor = money.round_half_up(Decimal(credits_e4 * wallet.rate_amount_e4) * scale)
    if minor <= 0:
        return None
    now = clock.now()
    item = builder.ManualItem(
        description=(
            f"Prepaid credits: {e4_wire(credits_e4)} at {e4_wire(wallet.rate_amount_e4)} "
            f"{wallet.currency} ({wallet.name or wallet.id})"
        ),
        quantity=1,
        unit_amount_minor=minor,
    )
    draft = builder.build(
        builder.Inputs(
            customer_id=customer.id,
            currency=wallet.currency,
            now=now,
            terms=builder.Terms(
                net_days=invoices.net_terms_days(customer.net_payment_terms, None, tenant)
            ),
            items=(item,),
            status=INVOICE_PENDING,
        )
    )
    [issued] = await lifecycle.issue(session, [draft], tenant_id=tenant.id, clock=clock)
    invoice = await invoices.get_invoice(session, issued.id)
    lifecycle.announce(tenant.id, invoice, clock=clock, charge=False)
    return issued.id


async def _inbound(
    session: AsyncSession,
    wallet: Wallet,
    customer: Customer,
    *,
    granted_e4: int,
    paid_e4: int,
    invoice_paid: bool,
    metadata: dict[str, Any] | None,
    tenant: TenantProfile,
    clock: Clock,
) -> list[WalletTransaction]:
    now = clock.now()
    out = []
    if granted_e4 > 0:
        change = Move(INBOUND, GRANTED, granted_e4, metadata)
        out.append(await move(session, wallet, change, now=now))
    if paid_e4 > 0:
        invoice_id = (
            await _purchase_invoice(session, wallet, customer, paid_e4, tenant=tenant, clock=clock)
            if invoice_paid
            else None
        )
        change = Move(INBOUND, PURCHASED, paid_e4, metadata, invoice_id=invoice_id)
        out.append(await move(session, wallet, change, now=now))
    return out


async def create_wallet(
    session: AsyncSession, *, body: WalletCreate, tenant: TenantProfile, clock: Clock
) -> tuple[Wallet, Customer]:
    """Validation (400) -> customer (404) -> currency the providers can charge (400);
    seeds GRANTED then PURCHASED credits. Outbound ``wallet.created``."""
    rate = (
        10_000
        if body.rate_amount is None
        else e4_in(body.rate_amount, field="rateAmount", minimum_e4=1, rate=True)
    )
    granted = _credits(body.granted_credits, "grantedCredits")
    paid = _credits(body.paid_credits, "paidCredits")
    customer = await customers.get_customer(session, body.customer_id)
    currency = await check_currency(session, body.currency)
    now = clock.now()
    wallet = Wallet(
        id=new_id(),
        customer_id=customer.id,
        name=body.name,
        currency=currency,
        rate_amount_e4=rate,
        credits_balance_e4=0,
        consumed_credits_e4=0,
        consumed_amount_e4=0,
        status=ACTIVE,
        expiration_at=body.expiration_at,
        terminated_at=None,
        metadata_=body.metadata,
        created_at=body.created_at or now,
        updated_at=now,
    )
    session.add(wallet)
    await session.flush()
    await _inbound(
        session,
        wallet,
        customer,
        granted_e4=granted,
        paid_e4=paid,
        invoice_paid=body.invoice_paid_credits,
        metadata=body.metadata,
        tenant=tenant,
        clock=clock,
    )
    outbound.emit(
        tenant.id, "wallet.created", _event(wallet, currency=True), clock=clock, key=wallet.id
    )
    log.info("wallet.created", wallet_id=wallet.id, customer_id=customer.id)
    return wallet, customer


async def get_wallet(session: AsyncSession, wallet_id: str) -> tuple[Wallet, Customer]:
    wallet = await session.get(Wallet, wallet_id)
    if wallet is None:
        raise NotFound("Wallet not found")
    return wallet, await customers.get_customer(session, wallet.customer_id)


async def list_wallets(
    session: AsyncSession,
    *,
    page: int,
    limit: int,
    customer_id: str | None = None,
    status: str | None = None,
) -> tuple[list[tuple[Wallet, Customer]], int]:
    stmt: Select[Any] = select(Wallet)
    if customer_id is not None:
        stmt = stmt.where(Wallet.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(Wallet.status == status.upper())
    rows, total = await paginate(session, stmt, page, limit, *newest_first(Wallet))
    ids = {w.customer_id for w in rows}
    by_id: dict[str, Customer] = {}
    if ids:
        found = await session.scalars(select(Customer).where(Customer.id.in_(ids)))
        by_id = {c.id: c for c in found}
    return [(w, by_id[w.customer_id]) for w in rows], total


async def update_wallet(
    session: AsyncSession, wallet_id: str, *, body: WalletPatch, tenant_id: str, clock: Clock
) -> tuple[Wallet, Customer]:
    """``name``, ``expirationAt`` (null clears) and ``metadata``; 400 when TERMINATED.
    Outbound ``wallet.updated``."""
    if "name" in body.model_fields_set and body.name is None:
        raise Invalid("name", "name should not be null")
    wallet = await lock(session, wallet_id)
    if wallet.status == TERMINATED:
        raise BusinessRule("Cannot update a terminated wallet")
    changes = body.model_fields_set
    if "name" in changes:
        wallet.name = body.name
    if "expiration_at" in changes:
        wallet.expiration_at = body.expiration_at
    if "metadata" in changes:
        wallet.metadata_ = body.metadata
    wallet.updated_at = clock.now()
    await session.flush()
    outbound.emit(
        tenant_id,
        "wallet.updated",
        _event(wallet),
        clock=clock,
        key=f"{wallet.id}:{wallet.updated_at.isoformat()}",
    )
    log.info("wallet.updated", wallet_id=wallet.id)
    return wallet, await customers.get_customer(session, wallet.customer_id)


async def end(
    session: AsyncSession,
    wallet: Wallet,
    *,
    reason: str,
    tenant_id: str,
    clock: Clock,
    now: datetime | None = None,
) -> None:
    """Void what is left (``reason`` in the transaction metadata; expiry counts as
    consumed, termination does not), then TERMINATED. Outbound ``wallet.terminated``."""
    now = now or clock.now()
    if wallet.credits_balance_e4 > 0:
        change = Move(
            OUTBOUND,
            VOIDED,
            wallet.credits_balance_e4,
            {"reason": reason},
            consumed=reason == "expired",
        )
        await move(session, wallet, change, now=now)
    wallet.status = TERMINATED
    wallet.terminated_at = now
    wallet.updated_at = now
    await session.flush()
    outbound.emit(tenant_id, "wallet.terminated", _event(wallet), clock=clock, key=wallet.id)
    log.info("wallet.terminated", wallet_id=wallet.id, reason=reason)


async def terminate(
    session: AsyncSession, wallet_id: str, *, tenant_id: str, clock: Clock
) -> tuple[Wallet, Customer]:
    wallet = await lock(session, wallet_id)
    if wallet.status == TERMINATED:
        raise BusinessRule("Wallet is already terminated")
    await end(session, wallet, reason="wallet_terminated", tenant_id=tenant_id, clock=clock)
    return wallet, await customers.get_customer(session, wallet.customer_id)


async def top_up(
    session: AsyncSession, *, body: TopUp, tenant: TenantProfile, clock: Clock
) -> tuple[list[WalletTransaction], Wallet, Customer]:
    """Void -> grant -> purchase, one transaction each, under one wallet lock."""
    paid = _credits(body.paid_credits, "paidCredits")
    granted = _credits(body.granted_credits, "grantedCredits")
    voided = _credits(body.voided_credits, "voidedCredits")
    wallet = await lock(session, body.wallet_id)
    if paid == granted == voided == 0:
        raise BusinessRule("At least one of paidCredits, grantedCredits or voidedCredits > 0")
    if wallet.status == TERMINATED:
        raise BusinessRule("Wallet is terminated")
    if voided > wallet.credits_balance_e4:
        raise Invalid(
            "voidedCredits",
            f"voidedCredits must not exceed the credits balance "
            f"({e4_wire(wallet.credits_balance_e4)})",
        )
    customer = await customers.get_customer(session, wallet.customer_id)
    out: list[WalletTransaction] = []
    if voided > 0:
        change = Move(OUTBOUND, VOIDED, voided, body.metadata, consumed=True)
        out.append(await move(session, wallet, change, now=clock.now()))
    out += await _inbound(
        session,
        wallet,
        customer,
        granted_e4=granted,
        paid_e4=paid,
        invoice_paid=body.invoice_paid_credits,
        metadata=body.metadata,
        tenant=tenant,
        clock=clock,
    )
    log.info("wallet.topped_up", wallet_id=wallet.id, transactions=len(out))
    return out, wallet, customer


async def list_transactions(
    session: AsyncSession,
    wallet_id: str,
    *,
    page: int,
    limit: int,
    status: str | None = None,
    transaction_status: str | None = None,
    transaction_type: str | None = None,
) -> tuple[list[WalletTransaction], int]:
    if await session.scalar(select(func.count()).where(Wallet.id == wallet_id)) == 0:
        raise NotFound("Wallet not found")
    stmt: Select[Any] = select(WalletTransaction).where(WalletTransaction.wallet_id == wallet_id)
    for column, value in (
        (WalletTransaction.status, status),
        (WalletTransaction.transaction_status, transaction_status),
        (WalletTransaction.transaction_type, transaction_type),
    ):
        if value is not None:
            stmt = stmt.where(column == value.upper())
    return await paginate(session, stmt, page, limit, *newest_first(WalletTransaction))
