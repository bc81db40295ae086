"""Collecting an invoice through the tenant's provider: hosted checkout (``POST
/api/invoices/{id}/checkout``), automatic charge of a saved authorization (the
``payments.charge`` job, run by the billing engine), and ``confirm`` - asking the provider
what happened to one of our payments.

No provider call is made while a transaction or row lock is held. Each collection runs in
three steps: (1) in one short transaction, lock the invoice, check it still needs money,
record the attempt as a PROCESSING payment (with its first reconcile check scheduled) and
commit; (2) call the provider; (3) in a new transaction, record the answer. A crash
between (1) and (3) leaves a PROCESSING payment that the reconcile job resolves by asking
the provider with the same reference.

Provider choice for a checkout: an explicitly named active provider, else the active
configurations that support the invoice currency, lowest ``priority`` first. Automatic
charges start in ``payments.failover`` (which provider, with which saved method, and the
next one when it declines or does not answer) and are sent by ``send_charge``. Every
provider call uses our payment reference (idempotency key / tx_ref): a retried job never
charges twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.customers.models import Customer
from novabilling.errors import BusinessRule
from novabilling.invoices import service as invoice_service
from novabilling.invoices.models import CANCELED, PAID, Invoice
from novabilling.kit.clock import Clock
from novabilling.kit.crypto import Encryptor
from novabilling.kit.ids import new_id
from novabilling.payments import provider_order, provider_policy, service
from novabilling.payments.credentials import ProviderFactory, ProviderHandle
from novabilling.payments.inbound import payment_reference
from novabilling.payments.models import (
    FAILED,
    KIND_CHECKOUT,
    PROCESSING,
    Payment,
    PaymentProviderConfig,
)
from novabilling.payments.providers import paystack, registry
from novabilling.payments.providers.base import (
    ChargeRequest,
    CheckoutRequest,
    ExpiresCheckouts,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    Transaction,
)

log = structlog.get_logger(__name__)

CHECKOUT_TTL = timedelta(minutes=30)
SUPERSEDED = "Superseded by a newer checkout"
Maker = async_sessionmaker[AsyncSession]


class ProviderRefused(BusinessRule):
    """The provider said no (400 with its message); the payment row stays FAILED."""


def phone_of(customer: Customer | None) -> str | None:
    """The customer's phone (column, else ``metadata.phone``) for M-Pesa STK pushes."""
    if customer is None:
        return None
    meta = customer.metadata_ or {}
    value = customer.phone or meta.get("phone")
    return str(value) if value else None


def supports(name: str, currency: str) -> bool:
    code = currency.upper()
    if name == "mpesa":
        return code == "KES"
    if name == "paystack":
        return code in paystack.SUPPORTED_CURRENCIES
    return name not in registry.SPECS or registry.supports_currency(name, code)


async def choose_provider(
    session: AsyncSession,
    *,
    tenant_id: str,
    currency: str,
    factory: ProviderFactory,
    name: str | None = None,
) -> ProviderHandle:
    """``name`` when given (active, else 400), else the preferred active provider that
    supports ``currency``: the tenant's ``providerOrder`` for that currency first, then
    by ``priority``."""
    stmt = select(PaymentProviderConfig).where(PaymentProviderConfig.is_active.is_(True))
    if name is not None:
        stmt = stmt.where(PaymentProviderConfig.provider_name == name.lower())
    rows = await session.scalars(
        stmt.order_by(PaymentProviderConfig.priority, PaymentProviderConfig.created_at)
    )
    configured = list(rows)
    if name is None:
        order = await provider_order.for_tenant(factory, tenant_id)
        preferred = order.get(currency.upper(), [])
        configured.sort(key=lambda r: provider_order.rank(preferred, r.provider_name))
    if not configured:
        if name is not None:
            raise BusinessRule(f"Payment provider {name} is not configured or not active")
        raise BusinessRule("No active payment provider configured")
    for row in configured:
        if supports(row.provider_name, currency):
            handle = factory.handle_for(tenant_id, row)
            if handle is not None:
                return handle
    for row in configured:
        if row.provider_name in registry.SPECS and not registry.is_supported(row.provider_name):
            raise BusinessRule(f"Payment provider {row.provider_name} is not yet supported")
    raise BusinessRule(f"No active payment provider supports {currency.upper()}")


def new_payment(
    invoice: Invoice, handle: ProviderHandle, kind: str, now: datetime, payment_id: str
) -> Payment:
    payment = Payment(
        id=payment_id,
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        provider=handle.name,
        kind=kind,
        amount_minor=invoice.total_minor,
        currency=invoice.currency.upper(),
        status=PROCESSING,
        refunded_minor=0,
        check_attempts=0,
        created_at=now,
        updated_at=now,
    )
    payment.reference = payment_reference(payment.id, handle.tenant_id)
    service.schedule_check(payment, now)  # a crash before the answer: reconcile finds it
    return payment


async def _locked_open_invoice(session: AsyncSession, invoice_id: str) -> Invoice:
    invoice = await invoice_service.get_invoice(session, invoice_id, lock=True)
    if invoice.status == PAID:
        raise BusinessRule("Invoice is already paid")
    if invoice.status == CANCELED:
        raise BusinessRule("Cannot checkout a canceled invoice")
    return invoice


# --- hosted checkout ----------------------------------------------------------------------


@dataclass(frozen=True)
class _CheckoutPlan:
    payment_id: str
    handle: ProviderHandle
    request: CheckoutRequest
    superseded: tuple[tuple[str, str], ...]  # (provider, its page id) of replaced checkouts


async def _plan_checkout(
    maker: Maker,
    *,
    tenant_id: str,
    invoice_id: str,
    callback_url: str | None,
    provider: str | None,
    factory: ProviderFactory,
    clock: Clock,
) -> Payment | _CheckoutPlan:
    """Step 1: an open page to reuse, or a new PROCESSING payment (committed). A new
    checkout supersedes the invoice's other open ones (one payable page at a time)."""
    async with maker() as session:
        invoice = await _locked_open_invoice(session, invoice_id)
        handle = await choose_provider(
            session,
            tenant_id=tenant_id,
            currency=invoice.currency,
            factory=factory,
            name=provider,
        )
        now = clock.now()
        open_ones = list(
            await session.scalars(
                select(Payment).where(
                    Payment.invoice_id == invoice.id,
                    Payment.kind == KIND_CHECKOUT,
                    Payment.status == PROCESSING,
                )
            )
        )
        for payment in open_ones:
            if (
                payment.provider == handle.name
                and payment.amount_minor == invoice.total_minor
                and payment.expires_at is not None
                and payment.expires_at > now
                and payment.checkout_url is not None
                and (callback_url is None or callback_url == payment.callback_url)
            ):
                return payment  # closing the session releases the lock, keeps the values
        if open_ones:
            await session.execute(
                update(Payment)
                .where(Payment.id.in_([p.id for p in open_ones]))
                .values(
                    status=FAILED, failure_reason=SUPERSEDED, next_check_at=None, updated_at=now
                )
                .execution_options(synchronize_session=False)
            )
            log.info("payment.checkout_superseded", invoice_id=invoice.id, count=len(open_ones))
        customer = await session.get(Customer, invoice.customer_id)
        payment = new_payment(invoice, handle, KIND_CHECKOUT, now, new_id())
        payment.callback_url = callback_url
        session.add(payment)
        request = CheckoutRequest(
            reference=payment.reference or payment.id,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            email=customer.email if customer else "",
            callback_url=callback_url,
            phone=phone_of(customer),
            description=f"Invoice {invoice.invoice_number}",
            metadata={"invoiceId": invoice.id, "paymentId": payment.id},
        )
        await session.commit()
    superseded = tuple(
        (p.provider, p.provider_transaction_id) for p in open_ones if p.provider_transaction_id
    )
    return _CheckoutPlan(payment.id, handle, request, superseded)


async def checkout(
    maker: Maker,
    *,
    tenant_id: str,
    invoice_id: str,
    callback_url: str | None,
    factory: ProviderFactory,
    clock: Clock,
    provider: str | None = None,
) -> Payment:
    """A hosted payment page for the invoice's full amount; reuses the open one."""
    plan = await _plan_checkout(
        maker,
        tenant_id=tenant_id,
        invoice_id=invoice_id,
        callback_url=callback_url,
        provider=provider,
        factory=factory,
        clock=clock,
    )
    if isinstance(plan, Payment):
        return plan
    error: ProviderError | None = None
    try:
        result = await plan.handle.adapter.create_checkout(plan.request)  # step 2
    except ProviderError as exc:
        error = exc
    async with maker() as session:  # step 3
        payment = await service.get_payment(session, payment_id=plan.payment_id, lock=True)
        now = clock.now()
        if error is not None:
            payment.status = FAILED
            payment.failure_reason = provider_policy.public_message(
                plan.handle.name, error, settings=factory.runtime.settings
            )
            payment.next_check_at = None
        else:
            payment.checkout_url = result.url
            payment.provider_transaction_id = result.provider_reference
            payment.expires_at = now + CHECKOUT_TTL
        payment.updated_at = now
        await session.commit()
    await _expire_superseded(plan, tenant_id=tenant_id, factory=factory)
    if error is not None:
        log.warning("payment.checkout_failed", payment_id=payment.id, error=error.message)
        raise ProviderRefused(payment.failure_reason or error.message) from error
    log.info("payment.checkout_created", payment_id=payment.id, provider=plan.handle.name)
    return payment


async def _expire_superseded(
    plan: _CheckoutPlan, *, tenant_id: str, factory: ProviderFactory
) -> None:
    """Close the replaced pages at providers that allow it (best effort: a page paid after
    all is an overpayment, refunded - see ``service.record_outcome``)."""
    for provider, page_id in plan.superseded:
        handle = await factory.get(tenant_id, provider)
        if handle is None or not isinstance(handle.adapter, ExpiresCheckouts):
            continue
        try:
            await handle.adapter.expire_checkout(page_id)
        except ProviderError as exc:
            log.info("payment.checkout_not_expired", provider=provider, error=exc.message)


# --- confirmation -------------------------------------------------------------------------


async def confirm(handle: ProviderHandle, payment: Payment) -> Transaction:
    """Ask the provider about ``payment`` (its verify / STK query API)."""
    if handle.name == "mpesa":
        if not payment.provider_transaction_id:
            return Transaction(reference=payment.id, outcome=Outcome.UNKNOWN)
        txn = await handle.adapter.verify_transaction(payment.provider_transaction_id)
        if txn.outcome is Outcome.SUCCEEDED and txn.amount_minor is None:
            # STK query does not echo the amount; it is the one we pushed for this id.
            txn = replace(txn, amount_minor=payment.amount_minor, currency="KES")
        return txn
    key = payment.reference or payment.id
    if registry.spec(handle.name).confirm_by == "provider_reference":  # Pesapal: its own id
        key = payment.provider_transaction_id or key
    if handle.name == "stripe" and (payment.provider_transaction_id or "").startswith("pi_"):
        key = str(payment.provider_transaction_id)
    return await handle.adapter.verify_transaction(key)


async def record(
    session: AsyncSession,
    *,
    tenant_id: str,
    payment_id: str,
    txn: Transaction,
    encryptor: Encryptor,
    clock: Clock,
) -> service.Recorded | None:
    """Step 3 of a collection: the provider's answer applied to our payment (locked)."""
    payment = await service.get_payment(session, payment_id=payment_id, lock=True)
    if (
        txn.provider_reference
        and payment.provider == "mpesa"
        and not payment.provider_transaction_id
    ):
        payment.provider_transaction_id = txn.provider_reference
    return await service.record_outcome(
        session, tenant_id=tenant_id, payment=payment, txn=txn, encryptor=encryptor, clock=clock
    )


# --- automatic charge ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeAttempt:
    """A PROCESSING charge recorded (and committed) and what to send to the provider;
    ``request`` None when there is nothing to charge with (no saved method)."""

    payment_id: str
    handle: ProviderHandle
    request: ChargeRequest | None


async def send_charge(attempt: ChargeAttempt) -> Transaction:
    """Step 2: the provider call (no transaction open). Unreachable is UNKNOWN, not FAILED:
    the reconcile job asks again."""
    if attempt.request is None:
        return Transaction(
            reference=attempt.payment_id,
            outcome=Outcome.FAILED,
            message="No saved payment method for this customer",
        )
    try:
        return await attempt.handle.adapter.charge(attempt.request)
    except ProviderUnavailable as exc:
        return Transaction(
            reference=attempt.payment_id, outcome=Outcome.UNKNOWN, message=exc.message
        )
    except ProviderError as exc:
        return Transaction(
            reference=attempt.payment_id, outcome=Outcome.FAILED, message=exc.message
        )
