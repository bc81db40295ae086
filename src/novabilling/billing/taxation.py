"""Taxes of subscription invoices (contract taxes.md): the general set (plan -> customer
-> default taxes) and each charge's own taxes, loaded for a batch of subscriptions and
turned into the invoice builder's inputs. A failure here fails the run (it is retried),
never an invoice silently without tax."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.invoices import builder
from novabilling.taxes import service as taxes
from novabilling.taxes.models import Tax

__all__ = ["NO_TAX", "TaxInputs", "load"]


@dataclass(frozen=True)
class TaxInputs:
    taxes: tuple[builder.TaxRate, ...] = ()
    charge_taxes: tuple[builder.ChargeTaxes, ...] = ()


NO_TAX = TaxInputs()


def _rates(rows: Iterable[Tax]) -> tuple[builder.TaxRate, ...]:
    return tuple(builder.TaxRate(name=t.name, rate=t.rate, id=t.id) for t in rows)


@dataclass(frozen=True)
class Loaded:
    sets: taxes.TaxSets

    def of(self, plan_id: str | None, customer_id: str) -> TaxInputs:
        return TaxInputs(
            taxes=_rates(self.sets.general(plan_id, customer_id)),
            charge_taxes=tuple(
                builder.ChargeTaxes(charge_id=charge_id, taxes=_rates(rows))
                for charge_id, rows in self.sets.charges(plan_id)
            ),
        )


async def load(session: AsyncSession, pairs: Iterable[tuple[str | None, str]]) -> Loaded:
    """The taxes of the (plan id, customer id) pairs of the invoices about to be drafted."""
    listed = list(pairs)
    sets = await taxes.tax_sets(
        session, plan_ids=[p for p, _ in listed], customer_ids=[c for _, c in listed]
    )
    return Loaded(sets)
