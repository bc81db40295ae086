"""Payments: list/get, manual recording, and ``record_outcome`` - the one place a provider's
answer (webhook confirmed by verify, charge result, reconcile poll) changes our state.

``record_outcome`` is idempotent (a SUCCEEDED/REFUNDED payment is final) and marks the
invoice PAID only when the confirmed amount and currency match the payment and the invoice
(STYLE §3.10: no phantom payments).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.errors import Invalid, NotFound
from novabilling.invoices import service as invoice_service
from novabilling.invoices.models import CANCELED, PAID, Invoice
from novabilling.invoices.schemas import invoice_out
from novabilling.kit import money
from novabilling.kit.clock import Clock
from novabilling.kit.crypto import Encryptor, sha256_hex
from novabilling.kit.pagination import paginate
from novabilling.payments import schemas
from novabilling.payments.models import (
    FAILED,
    KIND_CHARGE,
    KIND_MANUAL,
    PROCESSING,
    REFUNDED,
    SUCCEEDED,
    Payment,
    PaymentMethod,
    Refund,
)
from novabilling.payments.providers.base import Outcome, Transaction
from novabilling.webhooks import outbound

log = structlog.get_logger(__name__)

RECONCILE_DELAYS = (60, 300, 900, 3600, 6 * 3600, 24 * 3600)  # seconds, then give up


# -- reads --------------------------------------------------------------------------------


async def get_payment(session: AsyncSession, *, payment_id: str, lock: bool = False) -> Payment:
    stmt = select(Payment).where(Payment.id == payment_id)
    if lock:
        stmt = stmt.with_for_update()
    payment = await session.scalar(stmt)
    if payment is None:
        raise NotFound("Payment not found")
    return payment


async def render(session: AsyncSession, payments: Sequence[Payment]) -> list[dict[str, Any]]:
    """Payment objects with the embedded ``invoice`` (+ ``customer``), two queries."""
    invoice_ids = {p.invoice_id for p in payments}
    invoices = (
        {i.id: i for i in await session.scalars(select(Invoice).where(Invoice.id.in_(invoice_ids)))}
        if invoice_ids
        else {}
    )
    customer_ids = {i.customer_id for i in invoices.values()}
    customers = (
        {
            c.id: c
            for c in await session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
        }
        if customer_ids
        else {}
    )
    out = []
    for p in payments:
        invoice = invoices.get(p.invoice_id)
        embedded = invoice_out(invoice, customers.get(invoice.customer_id)) if invoice else None
        out.append(schemas.payment_out(p, embedded))
    return out


async def list_payments(
    session: AsyncSession,
    *,
    page: int,
    limit: int,
    status: str | None = None,
    provider: str | None = None,
    invoice_id: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> tuple[list[Payment], int]:
    stmt = select(Payment)
    if status is not None:
        stmt = stmt.where(Payment.status == status)
    if provider is not None:
        stmt = stmt.where(Payment.provider == provider)
    if invoice_id is not None:
        stmt = stmt.where(Payment.invoice_id == invoice_id)
    if date_from is not None:
        stmt = stmt.where(Payment.created_at >= date_from)
    if date_to is not None:
        stmt = stmt.where(Payment.created_at <= date_to)
    return await paginate(session, stmt, page, limit)


async def list_for_customer(session: AsyncSession, customer_id: str) -> list[dict[str, Any]]:
    """The customer's payments (``customers.relations``), newest invoice first."""
    rows = await session.execute(
        select(Payment)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.customer_id == customer_id)
        .order_by(Invoice.created_at.desc(), Invoice.id.desc(), Payment.created_at.desc())
    )
    return await render(session, list(rows.scalars().all()))


async def delete_for_customer(session: AsyncSession, customer_id: str) -> None:
    """Customer deletion (customers.md: cascades to payments and payment methods): the
    customer's payments - by ``customer_id`` or through the customer's invoices, so call
    this before the invoices go - with their refunds, and the saved payment methods."""
    theirs = or_(
        Payment.customer_id == customer_id,
        Payment.invoice_id.in_(select(Invoice.id).where(Invoice.customer_id == customer_id)),
    )
    await session.execute(
        delete(Refund).where(Refund.payment_id.in_(select(Payment.id).where(theirs)))
    )
    await session.execute(delete(Payment).where(theirs))
    await session.execute(delete(PaymentMethod).where(PaymentMethod.customer_id == customer_id))
    log.info("payment.deleted_for_customer", customer_id=customer_id)


# -- manual recording ---------------------------------------------------------------------


async def create_manual(
    session: AsyncSession,
    *,
    tenant_id: str,
    body: schemas.PaymentCreate,
    clock: Clock,
) -> Payment:
    invoice = await invoice_service.get_invoice(session, body.invoice_id, lock=True)
    currency = money.normalize_code(body.currency.upper())
    if currency != invoice.currency.upper():
        raise Invalid("currency", f"currency must match the invoice currency {invoice.currency}")
    amount_minor = money.to_minor(body.amount, currency, field="amount")
    now = clock.now()
    created_at = body.created_at or now
    payment = Payment(
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        provider=body.provider,
        kind=KIND_MANUAL,
        provider_transaction_id=body.provider_transaction_id,
        amount_minor=amount_minor,
        currency=currency,
        status=body.status,
        failure_reason=body.failure_reason,
        paid_at=created_at if body.status == SUCCEEDED else None,
        created_at=created_at,
        updated_at=now,
    )
    session.add(payment)
    await session.flush()
    if body.status == SUCCEEDED and invoice.status not in (PAID,):
        await _settle_invoice(
            session, tenant_id=tenant_id, invoice=invoice, payment=payment, clock=clock
        )
    outbound.emit(
        tenant_id,
        "payment.created",
        {
            "paymentId": payment.id,
            "invoiceId": invoice.id,
            "amount": money.to_number(amount_minor, currency),
            "currency": currency,
            "status": payment.status,
            "provider": payment.provider,
        },
        clock=clock,
        key=payment.id,
    )
    log.info("payment.recorded", payment_id=payment.id, status=payment.status)
    return payment


# -- provider outcomes --------------------------------------------------------------------


async def _settle_invoice(
    session: AsyncSession, *, tenant_id: str, invoice: Invoice, payment: Payment, clock: Clock
) -> None:
    """Invoice PAID, PAST_DUE subscription reactivated, receipt queued (the billing
    engineer's ``billing.dunning.settle_paid``), then outbound ``invoice.paid``."""
    from novabilling.billing import dunning

    await dunning.settle_paid(
        session,
        tenant_id=tenant_id,
        invoice=invoice,
        clock=clock,
        provider=payment.provider,
        reference=payment.provider_transaction_id,
    )
    outbound.emit(
        tenant_id,
        "invoice.paid",
        {
            "invoiceId": invoice.id,
            "invoiceNumber": invoice.invoice_number,
            "customerId": invoice.customer_id,
            "amount": money.to_number(invoice.total_minor, invoice.currency),
            "currency": invoice.currency,
        },
        clock=clock,
        key=invoice.id,
    )


def _event_data(payment: Payment, **extra: Any) -> dict[str, Any]:
    return {
        "paymentId": payment.id,
        "invoiceId": payment.invoice_id,
        "amount": money.to_number(payment.amount_minor, payment.currency),
        "currency": payment.currency,
        "provider": payment.provider,
        "transactionId": payment.provider_transaction_id,
        **extra,
    }


def _matches(payment: Payment, invoice: Invoice, txn: Transaction) -> str | None:
    """Why the confirmed transaction cannot settle the invoice, or None when it can."""
    if txn.currency and txn.currency.upper() != payment.currency:
        return f"paid currency {txn.currency} differs from {payment.currency}"
    if txn.amount_minor is None:
        return "the provider did not confirm the paid amount"
    if txn.amount_minor != payment.amount_minor:
        return f"paid {txn.amount_minor} minor units, expected {payment.amount_minor}"
    if payment.currency != invoice.currency.upper():
        return "payment currency differs from the invoice"
    return None


async def record_outcome(
    session: AsyncSession,
    *,
    tenant_id: str,
    payment: Payment,
    txn: Transaction,
    encryptor: Encryptor,
    clock: Clock,
) -> None:
    """Apply one confirmed provider answer to ``payment`` (idempotent)."""
    if payment.status in (SUCCEEDED, REFUNDED, FAILED) and txn.outcome is not Outcome.SUCCEEDED:
        return
    if payment.status in (SUCCEEDED, REFUNDED):
        return
    now = clock.now()
    if txn.provider_reference and (
        txn.outcome is Outcome.SUCCEEDED or not payment.provider_transaction_id
    ):
        # The provider's own transaction id (replaces a checkout session / access code).
        payment.provider_transaction_id = txn.provider_reference
    if txn.outcome is Outcome.SUCCEEDED:
        await _succeeded(
            session, tenant_id=tenant_id, payment=payment, txn=txn, encryptor=encryptor, clock=clock
        )
    elif txn.outcome is Outcome.FAILED:
        await _failed(
            session,
            tenant_id=tenant_id,
            payment=payment,
            reason=txn.message or "Payment failed",
            clock=clock,
        )
    else:
        schedule_check(payment, now)
    payment.updated_at = now
    await session.flush()


def schedule_check(payment: Payment, now: datetime) -> None:
    """Unknown is not failed: ask the provider again later (reconcile job / tick)."""
    if payment.check_attempts >= len(RECONCILE_DELAYS):
        payment.next_check_at = None
        return
    payment.next_check_at = now + timedelta(seconds=RECONCILE_DELAYS[payment.check_attempts])
    payment.check_attempts += 1


async def _succeeded(
    session: AsyncSession,
    *,
    tenant_id: str,
    payment: Payment,
    txn: Transaction,
    encryptor: Encryptor,
    clock: Clock,
) -> None:
    invoice = await invoice_service.get_invoice(session, payment.invoice_id, lock=True)
    problem = _matches(payment, invoice, txn)
    if problem is not None:
        log.error("payment.amount_mismatch", payment_id=payment.id, problem=problem)
        payment.failure_reason = f"Not applied: {problem}"
        payment.next_check_at = None
        return
    now = clock.now()
    payment.status = SUCCEEDED
    payment.failure_reason = None
    payment.paid_at = now
    payment.next_check_at = None
    if invoice.status == CANCELED:
        log.warning("payment.canceled_invoice_paid", payment_id=payment.id, invoice_id=invoice.id)
    elif invoice.status != PAID:
        await _settle_invoice(
            session, tenant_id=tenant_id, invoice=invoice, payment=payment, clock=clock
        )
    if txn.authorization and payment.customer_id:
        await save_method(
            session,
            customer_id=payment.customer_id,
            provider=payment.provider,
            token=txn.authorization,
            raw=txn.raw,
            encryptor=encryptor,
            tenant_id=tenant_id,
            clock=clock,
        )
    outbound.emit(tenant_id, "payment.succeeded", _event_data(payment), clock=clock, key=payment.id)
    log.info("payment.succeeded", payment_id=payment.id, invoice_id=invoice.id)


async def _failed(
    session: AsyncSession, *, tenant_id: str, payment: Payment, reason: str, clock: Clock
) -> None:
    payment.status = FAILED
    payment.failure_reason = reason
    payment.next_check_at = None
    invoice = await invoice_service.get_invoice(session, payment.invoice_id, lock=True)
    data = _event_data(payment, error=reason)
    if payment.kind == KIND_CHARGE and invoice.status not in (PAID, CANCELED):
        from novabilling.billing import dunning

        await dunning.record_failure(
            session, tenant_id=tenant_id, invoice_id=invoice.id, reason=reason, clock=clock
        )
    else:
        from novabilling.billing import emails

        emails.queue(
            tenant_id,
            emails.PAYMENT_FAILED,
            {"invoice_id": invoice.id, "reason": reason},
            key=payment.id,
        )
    outbound.emit(tenant_id, "payment.failed", data, clock=clock, key=payment.id)
    log.info("payment.failed", payment_id=payment.id, reason=reason)


async def save_method(
    session: AsyncSession,
    *,
    tenant_id: str,
    customer_id: str,
    provider: str,
    token: str,
    raw: Any,
    encryptor: Encryptor,
    clock: Clock,
) -> PaymentMethod:
    """Save a reusable authorization (sealed); default when the customer has none."""
    digest = sha256_hex(f"{provider}:{token}")
    existing = await session.scalar(select(PaymentMethod).where(PaymentMethod.token_hash == digest))
    if existing is not None:
        return existing
    has_default = await session.scalar(
        select(PaymentMethod.id).where(
            PaymentMethod.customer_id == customer_id, PaymentMethod.is_default.is_(True)
        )
    )
    auth = raw.get("authorization") if isinstance(raw, dict) else None
    auth = auth if isinstance(auth, dict) else {}
    customer = raw.get("customer") if isinstance(raw, dict) else None  # Stripe: an id string
    now = clock.now()
    method = PaymentMethod(
        customer_id=customer_id,
        provider=provider,
        token_encrypted=encryptor.encrypt(token, aad=tenant_id.encode()),
        token_hash=digest,
        brand=str(auth.get("brand") or "")[:50] or None,
        last4=str(auth.get("last4") or "")[:4] or None,
        email=customer.get("email") if isinstance(customer, dict) else None,
        is_default=not has_default,
        created_at=now,
        updated_at=now,
    )
    session.add(method)
    await session.flush()
    log.info("payment_method.saved", customer_id=customer_id, provider=provider)
    return method


def open_processing(payment: Payment) -> bool:
    return payment.status == PROCESSING
