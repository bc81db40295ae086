"""Provider failover for automatic charges (issue 16).

One *collection attempt* of an invoice (its ``collection_attempts`` value while dunning
has not moved on) may charge several providers, one after the other, each at most once:

- **Order.** The subscription's own saved method first (payment-methods.md: the
  subscription is charged with that method), then the tenant's order for the invoice
  currency (setting ``providerOrder``, e.g. ``{"NGN": ["flutterwave", "paystack"]}``),
  then the remaining active providers that support the currency by ``priority``.
  A provider is *eligible* when its configuration is active and usable and the customer
  has a saved method for it (M-Pesa: a phone number, it pushes an STK prompt).
- **When to move on.** A decline (``FAILED``) or no answer at all (the provider is
  unreachable or timed out: ``UNKNOWN``). A ``PENDING`` answer (M-Pesa prompt, 3-D Secure)
  is a charge in progress: nothing else is tried while it lasts.
- **Once per provider per attempt.** The payment id - and so the reference the provider
  sees as idempotency key / tx_ref - is derived from (invoice, attempt, provider)
  (``attempt_payment_id``): the primary key makes a second charge of one provider in one
  attempt impossible, and a redone job sends the same reference again.
- **Never two charges at once.** ``begin_next`` runs under the invoice row lock and starts
  nothing while another charge of the invoice is PROCESSING, except the ones the calling
  worker itself saw go unanswered (``passed``). A duplicate job therefore waits for the
  answer instead of charging the next provider.
- **Dunning once, at the end.** ``after_failure`` (under the invoice lock, in the
  transaction recording a failed charge) says whether another provider is left
  (``CONTINUE``), whether an unanswered charge of this attempt may still succeed
  (``WAIT``: its answer decides), or whether every eligible provider failed
  (``EXHAUSTED``: the billing engine applies dunning, which ends the attempt).
- **A late success.** A provider that did not answer may still have taken the money (its
  answer was lost, or it is slow). If the next provider paid the invoice meanwhile, the
  late success is recorded as an overpayment and refunded automatically through that
  provider (``service.record_outcome``): the invoice is paid once, the customer charged
  once net. Where the provider cannot refund, the payment is flagged ``needsAttention``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.errors import Invalid
from novabilling.invoices import service as invoice_service
from novabilling.invoices.models import CANCELED, PAID, Invoice
from novabilling.kit import money
from novabilling.kit.clock import Clock
from novabilling.kit.crypto import Encryptor
from novabilling.kit.ids import derived_id
from novabilling.payments import charge, provider_order
from novabilling.payments.credentials import ProviderFactory, ProviderHandle
from novabilling.payments.models import (
    KIND_CHARGE,
    PROCESSING,
    Payment,
    PaymentMethod,
    PaymentProviderConfig,
)
from novabilling.payments.providers import registry
from novabilling.payments.providers.base import ChargeRequest
from novabilling.subscriptions.models import Subscription

log = structlog.get_logger(__name__)

ORDER_FIELD = f"settings.{provider_order.SETTING}"
MAX_ORDER_CURRENCIES = 50

Order = provider_order.Order

# --- the providerOrder setting ------------------------------------------------------------


def check_order_setting(value: object, *, field: str = ORDER_FIELD) -> dict[str, list[str]] | None:
    """The ``providerOrder`` setting as stored (codes upper-cased, names canonical), None to
    clear it, or ``Invalid`` naming the broken entry (``settings.providerOrder.NGN``)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(field, f"{field} must be an object of currency code -> provider names")
    if len(value) > MAX_ORDER_CURRENCIES:
        raise Invalid(field, f"{field} must have at most {MAX_ORDER_CURRENCIES} currencies")
    out: dict[str, list[str]] = {}
    for code, names in value.items():
        entry = f"{field}.{code}"
        currency = money.get_currency(str(code), field=entry).code
        if not isinstance(names, list) or not names:
            raise Invalid(entry, f"{entry} must be a non-empty array of provider names")
        ordered: list[str] = []
        for name in names:
            if not isinstance(name, str):
                raise Invalid(entry, f"{entry} must contain provider names (strings)")
            try:
                canonical = registry.normalize_name(name)
            except registry.UnknownProvider as exc:
                raise Invalid(entry, f"{entry}: {exc}") from None
            if canonical in ordered:
                raise Invalid(entry, f"{entry} names {canonical} twice")
            if not charge.supports(canonical, currency):
                raise Invalid(entry, f"{entry}: {canonical} does not support {currency}")
            ordered.append(canonical)
        out[currency] = ordered
    return out


def sequence(
    configured: Sequence[PaymentProviderConfig], currency: str, preferred: Sequence[str] = ()
) -> list[PaymentProviderConfig]:
    """The configurations that support ``currency``: those named in ``preferred`` in that
    order, then the others in the order given (priority, then age)."""
    usable = [c for c in configured if charge.supports(c.provider_name, currency)]
    return sorted(usable, key=lambda c: provider_order.rank(preferred, c.provider_name))


# --- one charge of the chain --------------------------------------------------------------


def attempt_payment_id(invoice_id: str, attempt: int, provider: str) -> str:
    """Id (and so provider reference) of the charge of ``invoice_id`` through ``provider``
    in collection attempt ``attempt``."""
    return derived_id(f"{invoice_id}:charge:{attempt}:{provider}")


@dataclass(frozen=True)
class Candidate:
    handle: ProviderHandle
    method: PaymentMethod | None  # None: M-Pesa (an STK push to the customer's phone)


@dataclass(frozen=True)
class Started:
    """A PROCESSING charge committed, to send (``charge.send_charge``)."""

    charge: charge.ChargeAttempt
    attempt: int  # the invoice's collection attempt it belongs to


async def _subscription_method(session: AsyncSession, invoice: Invoice) -> PaymentMethod | None:
    if invoice.subscription_id is None:
        return None
    return await session.scalar(
        select(PaymentMethod)
        .join(Subscription, Subscription.payment_method_id == PaymentMethod.id)
        .where(
            Subscription.id == invoice.subscription_id,
            PaymentMethod.customer_id == invoice.customer_id,
        )
    )


async def _method_for(
    session: AsyncSession, customer_id: str, provider: str
) -> PaymentMethod | None:
    return await session.scalar(
        select(PaymentMethod)
        .where(
            PaymentMethod.customer_id == customer_id,
            func.lower(PaymentMethod.provider) == provider,
        )
        .order_by(PaymentMethod.is_default.desc(), PaymentMethod.created_at.desc())
        .limit(1)
    )


async def candidates(
    session: AsyncSession,
    *,
    tenant_id: str,
    invoice: Invoice,
    factory: ProviderFactory,
    order: Order,
) -> tuple[list[Candidate], ProviderHandle | None]:
    """The eligible providers in the order they are tried, and the first usable provider
    for the currency (what a charge with no eligible provider is recorded against)."""
    rows = await session.scalars(
        select(PaymentProviderConfig)
        .where(PaymentProviderConfig.is_active.is_(True))
        .order_by(PaymentProviderConfig.priority, PaymentProviderConfig.created_at)
    )
    currency = invoice.currency.upper()
    own = await _subscription_method(session, invoice)
    preferred = list(order.get(currency, ()))
    own_provider = own.provider.lower() if own is not None else None
    if own_provider is not None:
        preferred = [own_provider, *[n for n in preferred if n != own_provider]]
    customer = await session.get(Customer, invoice.customer_id)
    phone = charge.phone_of(customer)
    found: list[Candidate] = []
    first: ProviderHandle | None = None
    for row in sequence(list(rows), currency, preferred):
        handle = factory.handle_for(tenant_id, row)
        if handle is None:
            continue
        first = first or handle
        if own is not None and own_provider == row.provider_name:
            method: PaymentMethod | None = own
        else:
            method = await _method_for(session, invoice.customer_id, row.provider_name)
        if method is not None or (row.provider_name == "mpesa" and phone):
            found.append(Candidate(handle, method))
    return found, first


def legacy_payment_id(invoice_id: str, attempt: int) -> str:
    """Id of the one charge of collection attempt ``attempt`` made before failover (one
    provider per attempt, numbered like the attempts): still answered by reconcile after
    an upgrade."""
    return derived_id(f"{invoice_id}:charge:{attempt}")


async def _tried(
    session: AsyncSession, invoice_id: str, attempt: int, names: Sequence[str]
) -> set[str]:
    """The providers already charged in ``attempt`` (among ``names``, and the provider of
    a charge of the earlier scheme)."""
    ids = {attempt_payment_id(invoice_id, attempt, name): name for name in names}
    legacy = legacy_payment_id(invoice_id, attempt)
    rows = await session.execute(
        select(Payment.id, Payment.provider).where(Payment.id.in_([*ids, legacy]))
    )
    return {ids.get(pid, provider) for pid, provider in rows}


async def _in_flight(session: AsyncSession, invoice_id: str, passed: frozenset[str]) -> bool:
    pending = await session.scalars(
        select(Payment.id).where(
            Payment.invoice_id == invoice_id,
            Payment.kind == KIND_CHARGE,
            Payment.status == PROCESSING,
        )
    )
    return any(pid not in passed for pid in pending)


async def begin_next(
    maker: charge.Maker,
    *,
    tenant_id: str,
    invoice_id: str,
    factory: ProviderFactory,
    encryptor: Encryptor,
    clock: Clock,
    order: Order,
    attempt: int | None = None,
    passed: frozenset[str] = frozenset(),
) -> Started | None:
    """Step 1 of the next charge of the chain (committed), or None when there is nothing
    to do: the invoice is paid, voided or zero; dunning moved on since ``attempt`` was
    queued; a charge is in flight (other than ``passed``: this worker's own unanswered
    ones); or every eligible provider was tried in this attempt."""
    async with maker() as session:
        invoice = await invoice_service.get_invoice(session, invoice_id, lock=True)
        if invoice.status in (PAID, CANCELED) or invoice.total_minor <= 0:
            return None
        if attempt is not None and attempt != invoice.collection_attempts:
            log.info("payment.charge_stale", invoice_id=invoice.id, attempt=attempt)
            return None
        number = invoice.collection_attempts
        if await _in_flight(session, invoice.id, passed):
            return None
        found, first = await candidates(
            session, tenant_id=tenant_id, invoice=invoice, factory=factory, order=order
        )
        names = [c.handle.name for c in found] or ([first.name] if first else [])
        tried = await _tried(session, invoice.id, number, names)
        nxt = next((c for c in found if c.handle.name not in tried), None)
        usable = nxt is not None
        if nxt is None:
            if found or first is None or first.name in tried:
                if first is None:
                    log.warning("payment.charge_no_provider", invoice_id=invoice.id)
                return None
            nxt = Candidate(first, None)  # no eligible provider: recorded as failing
        customer = await session.get(Customer, invoice.customer_id)
        handle, method = nxt.handle, nxt.method
        payment_id = attempt_payment_id(invoice.id, number, handle.name)
        payment = charge.new_payment(invoice, handle, KIND_CHARGE, clock.now(), payment_id)
        session.add(payment)
        request = None
        if usable:
            token = (
                encryptor.decrypt(method.token_encrypted, aad=tenant_id.encode())
                if method is not None
                else None
            )
            request = ChargeRequest(
                reference=payment.reference or payment.id,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                email=(method.email if method and method.email else None)
                or (customer.email if customer else ""),
                authorization=token,
                customer_ref=method.provider_customer_ref if method is not None else None,
                phone=charge.phone_of(customer),
                description=f"Invoice {invoice.invoice_number}"[
                    : 13 if handle.name == "mpesa" else 200
                ],
            )
        await session.commit()
    log.info(
        "payment.charge_started",
        invoice_id=invoice_id,
        provider=handle.name,
        attempt=number,
        failover=bool(tried),
    )
    return Started(charge.ChargeAttempt(payment_id, handle, request), number)


# --- after a failed charge ----------------------------------------------------------------


class Next(StrEnum):
    CONTINUE = "CONTINUE"  # another eligible provider is left in this attempt
    WAIT = "WAIT"  # a charge of this invoice is still unanswered: its answer decides
    EXHAUSTED = "EXHAUSTED"  # every eligible provider failed: dunning
    DONE = "DONE"  # nothing to decide: the invoice is settled, or the attempt is over


def _attempt_of(payment: Payment, invoice: Invoice) -> int | None:
    """The collection attempt ``payment`` was made in (None: not a charge id we derive)."""
    for number in range(invoice.collection_attempts, -1, -1):
        if payment.id in (
            attempt_payment_id(invoice.id, number, payment.provider),
            legacy_payment_id(invoice.id, number),
        ):
            return number
    return None


async def after_failure(
    session: AsyncSession,
    *,
    tenant_id: str,
    payment: Payment,
    factory: ProviderFactory,
    order: Order,
) -> tuple[Next, Invoice | None]:
    """What follows the failed automatic charge ``payment`` (in the transaction that
    recorded the failure; locks the invoice so two failures recorded at once decide
    once)."""
    invoice = await invoice_service.get_invoice(session, payment.invoice_id, lock=True)
    if invoice.status in (PAID, CANCELED):
        return Next.DONE, invoice
    number = _attempt_of(payment, invoice)
    if number is not None and number != invoice.collection_attempts:
        return Next.DONE, invoice  # a late answer from an attempt dunning already closed
    found, _ = await candidates(
        session, tenant_id=tenant_id, invoice=invoice, factory=factory, order=order
    )
    tried = await _tried(
        session, invoice.id, invoice.collection_attempts, [c.handle.name for c in found]
    )
    tried.add(payment.provider)  # (a charge id we do not derive included)
    if any(c.handle.name not in tried for c in found):
        return Next.CONTINUE, invoice
    if await _in_flight(session, invoice.id, frozenset({payment.id})):
        return Next.WAIT, invoice
    return Next.EXHAUSTED, invoice
