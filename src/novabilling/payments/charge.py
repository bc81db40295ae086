"""Collecting an invoice through the tenant's provider: hosted checkout (``POST
/api/invoices/{id}/checkout``), automatic charge of a saved authorization (``payments.charge``
job), and ``confirm`` - asking the provider what happened to one of our payments.

Provider choice: active configurations that support the invoice currency, lowest
``priority`` first (so "the default provider for a currency" is the preferred one that
handles it). Every provider call uses our payment reference (idempotency key / tx_ref):
a retried job never charges twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.errors import BusinessRule
from novabilling.invoices import service as invoice_service
from novabilling.invoices.models import CANCELED, PAID, Invoice
from novabilling.kit.ids import derived_id, new_id
from novabilling.payments import provider_policy, service
from novabilling.payments.credentials import ProviderFactory, ProviderHandle
from novabilling.payments.models import (
    FAILED,
    KIND_CHARGE,
    KIND_CHECKOUT,
    PROCESSING,
    Payment,
    PaymentMethod,
    PaymentProviderConfig,
)
from novabilling.payments.providers import paystack, registry
from novabilling.payments.providers.base import (
    ChargeRequest,
    CheckoutRequest,
    Outcome,
    ProviderError,
    ProviderUnavailable,
    Transaction,
)
from novabilling.webhooks.inbound import payment_reference

if TYPE_CHECKING:
    from novabilling.runtime import Runtime

log = structlog.get_logger(__name__)

CHECKOUT_TTL = timedelta(minutes=30)


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
    session: AsyncSession, *, tenant_id: str, currency: str, factory: ProviderFactory
) -> ProviderHandle:
    rows = await session.scalars(
        select(PaymentProviderConfig)
        .where(PaymentProviderConfig.is_active.is_(True))
        .order_by(PaymentProviderConfig.priority, PaymentProviderConfig.created_at)
    )
    configured = list(rows)
    if not configured:
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


def charge_payment_id(invoice_id: str, number: int) -> str:
    """Id (and so provider reference) of the invoice's ``number``-th automatic charge
    (0-based). Derived, not random: a charge job redone after dying between the provider
    call and our commit (nothing of the first run saved) sends the same reference again,
    and the provider answers with the first charge instead of charging twice."""
    return derived_id(f"{invoice_id}:charge:{number}")


def _new_payment(
    invoice: Invoice, handle: ProviderHandle, kind: str, now: Any, *, payment_id: str | None = None
) -> Payment:
    payment = Payment(
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        provider=handle.name,
        kind=kind,
        amount_minor=invoice.total_minor,
        currency=invoice.currency.upper(),
        status=PROCESSING,
        created_at=now,
        updated_at=now,
    )
    payment.id = payment_id or new_id()
    payment.reference = payment_reference(payment.id, handle.tenant_id)
    return payment


async def checkout(
    session: AsyncSession,
    *,
    tenant_id: str,
    invoice_id: str,
    callback_url: str | None,
    factory: ProviderFactory,
) -> tuple[Payment, Any]:
    """A hosted payment page for the invoice's full amount; reuses an open one."""
    clock = factory.runtime.clock
    invoice = await invoice_service.get_invoice(session, invoice_id, lock=True)
    if invoice.status == PAID:
        raise BusinessRule("Invoice is already paid")
    if invoice.status == CANCELED:
        raise BusinessRule("Cannot checkout a canceled invoice")
    handle = await choose_provider(
        session, tenant_id=tenant_id, currency=invoice.currency, factory=factory
    )
    now = clock.now()
    reusable = await session.scalar(
        select(Payment).where(
            Payment.invoice_id == invoice.id,
            Payment.provider == handle.name,
            Payment.kind == KIND_CHECKOUT,
            Payment.status == PROCESSING,
            Payment.amount_minor == invoice.total_minor,
            Payment.expires_at > now,
            Payment.checkout_url.is_not(None),
        )
    )
    if reusable is not None:
        return reusable, reusable.expires_at
    customer = await session.get(Customer, invoice.customer_id)
    payment = _new_payment(invoice, handle, KIND_CHECKOUT, now)
    session.add(payment)
    await session.flush()
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
    try:
        result = await handle.adapter.create_checkout(request)
    except ProviderError as exc:
        message = provider_policy.public_message(
            handle.name, exc, settings=factory.runtime.settings
        )
        payment.status = FAILED
        payment.failure_reason = message
        await session.flush()
        log.warning("payment.checkout_failed", payment_id=payment.id, error=exc.message)
        raise ProviderRefused(message) from exc
    payment.checkout_url = result.url
    payment.provider_transaction_id = result.provider_reference
    payment.expires_at = now + CHECKOUT_TTL
    service.schedule_check(payment, now)
    await session.flush()
    log.info("payment.checkout_created", payment_id=payment.id, provider=handle.name)
    return payment, payment.expires_at


class ProviderRefused(BusinessRule):
    """The provider said no (400 with its message); the payment row stays FAILED."""


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


async def charge_invoice(
    session: AsyncSession,
    *,
    runtime: Runtime,
    tenant_id: str,
    invoice_id: str,
    factory: ProviderFactory,
    attempt: int | None = None,
) -> Payment | None:
    """``payments.charge``: charge the customer's saved authorization for the invoice.

    Safe to run twice (or to be queued twice by the billing tick): an invoice that is paid,
    has a charge in flight, or - with ``attempt`` (the job's ``collection_attempts`` when
    queued) - has failed since the job was queued is skipped; the charge reference is
    derived from (invoice, charge number), so a run redone after a crash reuses it."""
    invoice = await invoice_service.get_invoice(session, invoice_id, lock=True)
    if invoice.status in (PAID, CANCELED) or invoice.total_minor <= 0:
        return None
    if attempt is not None and attempt != invoice.collection_attempts:
        log.info("payment.charge_stale", invoice_id=invoice.id, attempt=attempt)
        return None  # dunning moved on since this job was queued: its retry is due later
    in_flight = await session.scalar(
        select(Payment).where(
            Payment.invoice_id == invoice.id,
            Payment.kind == KIND_CHARGE,
            Payment.status == PROCESSING,
        )
    )
    if in_flight is not None:
        return in_flight
    handle = await choose_provider(
        session, tenant_id=tenant_id, currency=invoice.currency, factory=factory
    )
    customer = await session.get(Customer, invoice.customer_id)
    method = await session.scalar(
        select(PaymentMethod)
        .where(
            PaymentMethod.customer_id == invoice.customer_id, PaymentMethod.provider == handle.name
        )
        .order_by(PaymentMethod.is_default.desc(), PaymentMethod.created_at.desc())
    )
    now = runtime.clock.now()
    charges = await session.scalar(
        select(func.count())
        .select_from(Payment)
        .where(Payment.invoice_id == invoice.id, Payment.kind == KIND_CHARGE)
    )
    payment_id = charge_payment_id(invoice.id, int(charges or 0))
    payment = _new_payment(invoice, handle, KIND_CHARGE, now, payment_id=payment_id)
    session.add(payment)
    await session.flush()
    token = (
        runtime.encryptor.decrypt(method.token_encrypted, aad=tenant_id.encode())
        if method is not None
        else None
    )
    if token is None and handle.name != "mpesa":
        txn = Transaction(
            reference=payment.id,
            outcome=Outcome.FAILED,
            message="No saved payment method for this customer",
        )
    else:
        txn = await _charge(handle, payment, invoice, customer, token, method)
    await service.record_outcome(
        session,
        tenant_id=tenant_id,
        payment=payment,
        txn=txn,
        encryptor=runtime.encryptor,
        clock=runtime.clock,
    )
    return payment


async def _charge(
    handle: ProviderHandle,
    payment: Payment,
    invoice: Invoice,
    customer: Customer | None,
    token: str | None,
    method: PaymentMethod | None,
) -> Transaction:
    request = ChargeRequest(
        reference=payment.reference or payment.id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        email=(method.email if method and method.email else None)
        or (customer.email if customer else ""),
        authorization=token,
        phone=phone_of(customer),
        description=f"Invoice {invoice.invoice_number}"[: 13 if handle.name == "mpesa" else 200],
    )
    try:
        txn = await handle.adapter.charge(request)
    except ProviderUnavailable as exc:
        return Transaction(reference=payment.id, outcome=Outcome.UNKNOWN, message=exc.message)
    except ProviderError as exc:
        return Transaction(reference=payment.id, outcome=Outcome.FAILED, message=exc.message)
    if handle.name == "mpesa" and txn.provider_reference:
        payment.provider_transaction_id = txn.provider_reference
    return txn
