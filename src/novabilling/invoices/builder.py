"""The one invoice builder: inputs in, a draft out. Pure - no database, no clock, no I/O.

Every invoice is drafted here (contract invoice-composition.md): period invoices of the
billing engine (first period, renewals one by one and in bulk, the last period of an
ending subscription) and manual invoices (``POST /api/invoices``). The caller loads what
the invoice is made of into ``Inputs``; ``build`` runs the composition ``STEPS`` in the
contract's order over a ``Composition`` and returns a ``Draft``, which
``invoices.lifecycle.issue`` inserts.

Steps (each a small function; one with no input adds nothing):

1. ``plan_fee``            the subscription price for ``fee_period`` (line ``plan``)
2. ``manual_items``        the caller's items of a manual invoice (no ``type``)
3. ``pending_items``       lines waiting for this subscription's next invoice: proration
                           credits and charges, credit carried forward
4. ``usage``               computed usage charges of the period (line ``usage``)
5. ``minimum_commitment``  true-up to the plan's minimum commitment
6. ``coupons``             discounts, all on the same base (plan fee + usage + true-up)
7. ``add_ons``             one-off add-on charges in the invoice currency
8. ``taxes``               one line per tax on max(total, 0), no tax on tax
9. ``clamp``               a negative total bills 0; the credit is carried forward
10. ``wallet_credits``     prepaid credits, oldest wallet first, never below zero

Money is integer minor units of the invoice currency; every line is rounded once,
half-up (``kit.money.round_half_up``), and nothing here uses floats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from novabilling.invoices.lines import Line, item_out, period_description
from novabilling.invoices.models import DRAFT, PAID, PENDING
from novabilling.kit.money import round_half_up, to_number
from novabilling.kit.timestamps import to_wire

__all__ = [
    "STEPS",
    "AddOnCharge",
    "ChargeTaxes",
    "Commitment",
    "Composition",
    "Discount",
    "Draft",
    "Inputs",
    "ManualItem",
    "PendingLine",
    "Plan",
    "TaxRate",
    "Terms",
    "UsageCharge",
    "WalletBalance",
    "build",
]


@dataclass(frozen=True, slots=True)
class Plan:
    """The subscription's plan as billed: name, interval, timing and price snapshot."""

    name: str
    billing_interval: str
    billing_timing: str
    amount_minor: int
    custom_pricing: bool = False


@dataclass(frozen=True, slots=True)
class Terms:
    """Net payment days and grace days (customer -> plan -> tenant -> defaults)."""

    net_days: int
    grace_days: int = 0


@dataclass(frozen=True, slots=True)
class ManualItem:
    description: str
    quantity: int
    unit_amount_minor: int


@dataclass(frozen=True, slots=True)
class PendingLine:
    """A line recorded for the subscription's next invoice (a proration, a carried credit)."""

    id: str
    kind: str
    description: str
    amount_minor: int
    period_start: datetime | None = None
    period_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class UsageCharge:
    """One charge's usage of the period (one bucket of it), already priced: the amount
    this invoice bills (minor units; negative corrects an earlier over-billing)."""

    charge_id: str
    description: str
    units: Decimal | int
    amount_minor: int
    window: tuple[datetime, datetime]
    bucket: str = ""


@dataclass(frozen=True, slots=True)
class Commitment:
    """Minimum commitment C of the period and what already counts towards it from other
    invoices (e.g. an IN_ADVANCE fee for the period, interim usage invoices).
    ``fee_included``: this invoice's plan line is the fee of the committed period (False
    for an IN_ADVANCE renewal, whose plan line is the next period's)."""

    minimum_minor: int
    counted_minor: int = 0
    fee_included: bool = True


@dataclass(frozen=True, slots=True)
class Discount:
    """An applied coupon: PERCENTAGE (``value`` percent) or FIXED_AMOUNT (``value`` minor
    units of the invoice currency). ``applied_id`` names the applied coupon whose use a
    discount line consumes (``Draft.discounts_used``)."""

    code: str
    kind: str
    value: Decimal
    applied_id: str = ""


@dataclass(frozen=True, slots=True)
class AddOnCharge:
    """A pending applied add-on; ``description`` (the add-on's invoiceDisplayName or
    name) replaces the original ``Add-on charge (<addOnId>)`` when set."""

    add_on_id: str
    amount_minor: int
    applied_id: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class TaxRate:
    name: str
    rate: Decimal  # percent: Decimal("7.5") is 7.5 %
    id: str = ""  # one line per distinct tax (charge groups may share one)


@dataclass(frozen=True, slots=True)
class ChargeTaxes:
    """A charge with its own taxes: its usage lines form a group taxed with exactly
    these (contract taxes.md, "Improve: charge taxes used")."""

    charge_id: str
    taxes: tuple[TaxRate, ...]


@dataclass(frozen=True, slots=True)
class WalletBalance:
    wallet_id: str
    balance_minor: int


@dataclass(frozen=True)
class Inputs:
    """Everything an invoice is made of, loaded by the caller."""

    customer_id: str
    currency: str
    now: datetime
    terms: Terms
    subscription_id: str | None = None
    plan: Plan | None = None
    period: tuple[datetime, datetime] | None = None  # metadata period (the unique key)
    fee_period: tuple[datetime, datetime] | None = None  # plan fee billed for this span
    items: tuple[ManualItem, ...] = ()
    pending: tuple[PendingLine, ...] = ()
    usage: tuple[UsageCharge, ...] = ()
    commitment: Commitment | None = None
    interim: bool = False  # usage-only invoice inside the period (not under the period key)
    discounts: tuple[Discount, ...] = ()
    add_ons: tuple[AddOnCharge, ...] = ()
    taxes: tuple[TaxRate, ...] = ()  # the general set (plan -> customer -> default)
    charge_taxes: tuple[ChargeTaxes, ...] = ()
    wallets: tuple[WalletBalance, ...] = ()
    # manual invoices (import helpers): explicit number, status and dates win
    invoice_number: str | None = None
    status: str | None = None
    due_date: datetime | None = None
    paid_at: datetime | None = None
    created_at: datetime | None = None


@dataclass
class Composition:
    """The invoice being composed: lines so far and what the steps decided."""

    inputs: Inputs
    lines: list[Line] = field(default_factory=list)
    consumed: list[str] = field(default_factory=list)
    carry_minor: int = 0
    tax_minor: int = 0
    wallet_deductions: list[tuple[str, int]] = field(default_factory=list)
    discounts_used: list[str] = field(default_factory=list)

    @property
    def total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

    def add(self, line: Line) -> None:
        self.lines.append(line)

    def sum_of(self, *types: str) -> int:
        return sum(line.amount_minor for line in self.lines if line.type in types)


@dataclass(frozen=True)
class Draft:
    """An invoice ready to insert (``invoices.lifecycle.issue``)."""

    inputs: Inputs
    lines: tuple[Line, ...]
    subtotal_minor: int
    tax_minor: int
    total_minor: int
    status: str
    due_date: datetime
    grace_ends_at: datetime | None
    metadata: dict[str, Any]
    consumed: tuple[str, ...]  # pending lines this invoice bills
    carry_minor: int  # credit (negative) carried to the subscription's next invoice
    wallet_deductions: tuple[tuple[str, int], ...]
    discounts_used: tuple[str, ...] = ()  # applied coupons that gave a discount line


# --- the steps --------------------------------------------------------------------------


def plan_fee(c: Composition) -> None:
    plan, span = c.inputs.plan, c.inputs.fee_period
    if plan is None or span is None:
        return
    description = period_description(
        plan.name, plan.billing_interval, span, custom=plan.custom_pricing
    )
    c.add(Line.single("plan", description, plan.amount_minor, span))


def manual_items(c: Composition) -> None:
    for item in c.inputs.items:
        c.add(
            Line(
                type=None,
                description=item.description,
                quantity=item.quantity,
                unit_amount_minor=item.unit_amount_minor,
                amount_minor=item.quantity * item.unit_amount_minor,
            )
        )


def pending_items(c: Composition) -> None:
    for item in c.inputs.pending:
        span = (
            (item.period_start, item.period_end)
            if item.period_start is not None and item.period_end is not None
            else None
        )
        c.add(Line.single(item.kind, item.description, item.amount_minor, span))
        c.consumed.append(item.id)


def usage(c: Composition) -> None:
    for charge in c.inputs.usage:
        c.add(
            Line(
                type="usage",
                description=charge.description,
                quantity=charge.units,
                unit_amount_minor=charge.amount_minor,
                amount_minor=charge.amount_minor,
                period_start=charge.window[0],
                period_end=charge.window[1],
                charge_id=charge.charge_id,
                bucket=charge.bucket,
            )
        )


def minimum_commitment(c: Composition) -> None:
    commitment = c.inputs.commitment
    if commitment is None or commitment.minimum_minor <= 0:
        return
    fee = c.sum_of("plan") if commitment.fee_included else 0
    counted = commitment.counted_minor + fee + c.sum_of("usage")
    if counted < commitment.minimum_minor:
        shortfall = commitment.minimum_minor - counted
        c.add(Line.single("minimum_commitment", "Minimum commitment true-up", shortfall))


def coupons(c: Composition) -> None:
    base = c.sum_of("plan", "usage", "minimum_commitment")
    for discount in c.inputs.discounts:
        if discount.kind == "PERCENTAGE":
            amount = round_half_up(Decimal(base) * discount.value / 100)
            label = f"Coupon: {discount.code} ({discount.value.normalize():f}%)"
        else:
            amount = round_half_up(discount.value)
            label = f"Coupon: {discount.code} (-{to_number(amount, c.inputs.currency)})"
        if amount <= 0:  # no line, no use consumed
            continue
        c.add(Line.single("coupon", label, -amount))
        c.discounts_used.append(discount.applied_id)


def add_ons(c: Composition) -> None:
    for add_on in c.inputs.add_ons:
        description = add_on.description or f"Add-on charge ({add_on.add_on_id})"
        c.add(Line.single("add_on", description, add_on.amount_minor))


def _tax_groups(c: Composition) -> list[tuple[int, tuple[TaxRate, ...]]]:
    """(base, taxes) per group: each charge with its own taxes and its usage lines, then
    the general group (everything else). Coupon discounts are spread over the groups in
    proportion to their share of the coupon base, half-up, the remainder to the general
    group; a group's base is max(net, 0)."""
    total = c.total_minor
    groups: list[tuple[int, tuple[TaxRate, ...]]] = []
    coupon_base = c.sum_of("plan", "usage", "minimum_commitment")
    discount = -c.sum_of("coupon")
    taken_gross = taken_discount = 0
    for own in c.inputs.charge_taxes:
        gross = sum(
            line.amount_minor
            for line in c.lines
            if line.type == "usage" and line.charge_id == own.charge_id
        )
        share = (
            round_half_up(Decimal(discount) * gross / coupon_base)
            if coupon_base > 0 and discount
            else 0
        )
        taken_gross += gross
        taken_discount += share
        groups.append((max(gross - share, 0), own.taxes))
    general = total - (taken_gross - taken_discount)
    groups.insert(0, (max(general, 0), c.inputs.taxes))
    return groups


def taxes(c: Composition) -> None:
    """One ``tax`` line per distinct tax: round(sum of the bases of the groups it taxes x
    rate / 100). Without charge taxes: every tax on max(total, 0), as the original."""
    bases: dict[str, int] = {}
    rates: dict[str, TaxRate] = {}
    for base, group_taxes in _tax_groups(c):
        for tax in group_taxes:
            key = tax.id or f"{tax.name}:{tax.rate}"
            rates.setdefault(key, tax)
            bases[key] = bases.get(key, 0) + base
    for key, tax in rates.items():
        amount = round_half_up(Decimal(bases[key]) * tax.rate / 100)
        c.add(Line.single("tax", f"Tax: {tax.name} ({tax.rate.normalize():f}%)", amount))
        c.tax_minor += amount


def clamp(c: Composition) -> None:
    total = c.total_minor
    if total < 0:  # more credit than charge: bill zero, the rest waits for the next invoice
        c.carry_minor = total
        c.add(Line.single("credit_carried", "Credit carried forward", -total))


def wallet_credits(c: Composition) -> None:
    remaining = c.total_minor
    deducted = 0
    for wallet in c.inputs.wallets:
        if remaining <= 0:
            break
        take = min(remaining, max(wallet.balance_minor, 0))
        if take > 0:
            c.wallet_deductions.append((wallet.wallet_id, take))
            remaining -= take
            deducted += take
    if deducted:
        c.add(Line.single("wallet_credit", "Prepaid credits applied", -deducted))


Step = Callable[[Composition], None]
STEPS: tuple[Step, ...] = (
    plan_fee,
    manual_items,
    pending_items,
    usage,
    minimum_commitment,
    coupons,
    add_ons,
    taxes,
    clamp,
    wallet_credits,
)


# --- the draft --------------------------------------------------------------------------


def _status(inputs: Inputs, total: int) -> str:
    if inputs.status is not None:
        return inputs.status
    if inputs.subscription_id is None:
        return DRAFT  # manual invoices start as drafts
    if total == 0:
        return PAID
    return DRAFT if inputs.terms.grace_days > 0 else PENDING


def _metadata(c: Composition, status: str, grace_ends: datetime | None) -> dict[str, Any]:
    inputs = c.inputs
    currency = inputs.currency
    if inputs.plan is None:  # manual: the items as sent (no type, no amount)
        return {"items": [line.manual_out(currency) for line in c.lines]}
    plan = inputs.plan
    metadata: dict[str, Any] = {
        "planName": plan.name,
        "billingInterval": plan.billing_interval,
        "billingTiming": plan.billing_timing,
        "items": [item_out(line, currency) for line in c.lines],
        "taxAmount": to_number(c.tax_minor, currency),
    }
    if inputs.interim:
        metadata["progressive"] = True
    if inputs.period is not None:
        metadata["periodStart"] = to_wire(inputs.period[0])
        metadata["periodEnd"] = to_wire(inputs.period[1])
    if grace_ends is not None:
        metadata["gracePeriodEndsAt"] = to_wire(grace_ends)
    deducted = sum(amount for _, amount in c.wallet_deductions)
    if deducted:
        metadata["prepaidCreditAmount"] = to_number(deducted, currency)
    return metadata


def build(inputs: Inputs) -> Draft:
    """Compose the invoice described by ``inputs``."""
    c = Composition(inputs)
    for step in STEPS:
        step(c)
    total = c.total_minor
    status = _status(inputs, total)
    grace_ends = (
        inputs.now + timedelta(days=inputs.terms.grace_days)
        if status == DRAFT and inputs.subscription_id is not None and inputs.status is None
        else None
    )
    due = inputs.due_date or inputs.now + timedelta(days=inputs.terms.net_days)
    return Draft(
        inputs=inputs,
        lines=tuple(c.lines),
        subtotal_minor=total - c.tax_minor,
        tax_minor=c.tax_minor,
        total_minor=total,
        status=status,
        due_date=due,
        grace_ends_at=grace_ends,
        metadata=_metadata(c, status, grace_ends),
        consumed=tuple(c.consumed),
        carry_minor=c.carry_minor,
        wallet_deductions=tuple(c.wallet_deductions),
        discounts_used=tuple(c.discounts_used),
    )
