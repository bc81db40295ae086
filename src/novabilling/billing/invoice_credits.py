"""What a subscription invoice takes from the credits domains, loaded into the builder's
``Inputs`` and written back in the transaction that issues the invoice (contract
invoice-composition.md: steps 1-10 in one database transaction).

- coupons (period invoices only): the customer's applied coupons for this subscription or
  any, locked until the commit (``coupons.discounts``); each one that gave a discount line
  loses a use.
- add-ons (period invoices only): the customer's pending applied add-ons in the invoice
  currency, locked until the commit (``add_ons.charges``); billed ones get ``invoiceId``.
- wallets: the customer's usable wallets in the invoice currency, locked until the commit
  (``wallets.consumption``); the draft's deductions become INVOICED transactions.

Interim invoices (``Inputs.interim``: usage inside the period) take wallet credits only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.add_ons import charges as add_on_charges
from novabilling.coupons import discounts
from novabilling.invoices import builder
from novabilling.wallets import consumption as wallets

__all__ = ["customers_with_credits", "load", "record"]


async def load(session: AsyncSession, inputs: builder.Inputs) -> builder.Inputs:
    """``inputs`` with the customer's credits for this subscription invoice."""
    if not inputs.interim and inputs.subscription_id is not None:
        inputs = replace(
            inputs,
            discounts=await discounts.for_invoice(
                session,
                customer_id=inputs.customer_id,
                subscription_id=inputs.subscription_id,
                currency=inputs.currency,
                now=inputs.now,
            ),
            add_ons=await add_on_charges.for_invoice(
                session,
                customer_id=inputs.customer_id,
                subscription_id=inputs.subscription_id,
                currency=inputs.currency,
            ),
        )
    return replace(
        inputs,
        wallets=await wallets.balances(session, inputs.customer_id, inputs.currency, inputs.now),
    )


async def record(session: AsyncSession, draft: builder.Draft, invoice_id: str) -> None:
    """Write back what the issued ``draft`` consumed."""
    inputs = draft.inputs
    await discounts.consume(session, draft.discounts_used)
    await add_on_charges.mark(session, (a.applied_id for a in inputs.add_ons), invoice_id)
    await wallets.record(
        session,
        draft.wallet_deductions,
        invoice_id=invoice_id,
        currency=inputs.currency,
        now=inputs.now,
    )


async def customers_with_credits(
    session: AsyncSession, customer_ids: Iterable[str], now: datetime
) -> set[str]:
    """Those of ``customer_ids`` whose invoices would take credits (the bulk renewal
    leaves them to the per-subscription path, which loads and locks them)."""
    ids = set(customer_ids)
    return (
        await wallets.customers_with_wallets(session, ids, now)
        | await discounts.customers_with_coupons(session, ids)
        | await add_on_charges.customers_with_add_ons(session, ids)
    )
