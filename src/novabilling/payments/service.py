"""Payments: list/get, manual recording (``POST /api/payments``, mark-paid), and
``record_outcome`` - the one place a provider's answer (webhook confirmed by verify,
charge result, reconcile poll) changes our state.

``record_outcome`` is idempotent (a SUCCEEDED/REFUNDED payment is final), settles the
invoice through ``invoices.lifecycle.settle`` only when the confirmed amount and currency
match the payment and the invoice (STYLE §3.10: no phantom payments), and returns what
changed as a ``Recorded``: the caller (the billing engine) decides dunning from a failed
automatic charge - payments never reach up into billing.

A payment that succeeds on an invoice already PAID (two checkouts, a late webhook) is an
overpayment: recorded SUCCEEDED with ``metadata.overpaid: true``, outbound
``payment.overpaid``, and refunded automatically (``REFUND_OVERPAYMENT_JOB``) when the
provider offers refunds; otherwise ``metadata.needsAttention: true`` flags it for the
tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.errors import BusinessRule, Invalid
from novabilling.invoices import lifecycle as invoice_lifecycle
from novabilling.invoices import service as invoice_service
from novabilling.invoices.models import CANCELED, PAID, Invoice
from novabilling.invoices.schemas import invoice_out
from novabilling.kit import money
from novabilling.kit.clock import Clock
from novabilling.kit.crypto import Encryptor, sha256_hex
from novabilling.kit.jobs import QUEUE_PAYMENTS, enqueue_after_commit
from novabilling.notifications import jobs as emails
from novabilling.payments import repository, schemas
from novabilling.payments.method_schemas import mask
from novabilling.payments.models import (
    FAILED,
    KIND_CHARGE,
    KIND_MANUAL,
    PROCESSING,
    REFUNDED,
    SUCCEEDED,
    Payment,
    PaymentMethod,
)
from novabilling.payments.providers.base import Outcome, Transaction
from novabilling.webhooks import outbound

log = structlog.get_logger(__name__)

RECONCILE_DELAYS = (60, 300, 900, 3600, 6 * 3600, 24 * 3600)  # seconds, then give up
UNCONFIRMED = "unconfirmed"  # failure reason once the provider never gave an answer
REFUND_OVERPAYMENT_JOB = "payments.refund_overpayment"  # {tenant_id, payment_id}


@dataclass(frozen=True)
class Recorded:
    """What one provider answer changed: the payment's new status (SUCCEEDED, FAILED) for
    the invoice it pays. ``charge_failed`` is the billing engine's cue for dunning."""

    payment_id: str
    invoice_id: str
    kind: str
    status: str
    reason: str | None = None

    @property
    def charge_failed(self) -> bool:
        return self.kind == KIND_CHARGE and self.status == FAILED


# -- reads --------------------------------------------------------------------------------


async def get_payment(session: AsyncSession, *, payment_id: str, lock: bool = False) -> Payment:
    return await repository.get(session, payment_id, lock=lock)


async def render(session: AsyncSession, payments: Sequence[Payment]) -> list[dict[str, Any]]:
    """Payment objects with the embedded ``invoice`` (+ ``customer``), two queries."""
    invoices, customers = await repository.invoices_with_customers(
        session, {p.invoice_id for p in payments}
    )
    out = []
    for p in payments:
        invoice = invoices.get(p.invoice_id)
        embedded = invoice_out(invoice, customers.get(invoice.customer_id)) if invoice else None
        out.append(schemas.payment_out(p, embedded))
    return out


list_payments = repository.page
find_for_event = repository.find_for_event


async def list_for_invoice(session: AsyncSession, invoice_id: str) -> list[dict[str, Any]]:
    """The invoice's payments, oldest first, as Payment objects without embeds."""
    return [
        schemas.payment_out(p, embed=False)
        for p in await repository.of_invoice(session, invoice_id)
    ]


async def refundable_payment(
    session: AsyncSession, invoice_id: str, amount_minor: int
) -> Payment | None:
    """The invoice's newest collected payment with at least ``amount_minor`` not yet
    refunded (credit notes refund through it)."""
    for payment in reversed(list(await repository.of_invoice(session, invoice_id))):
        if payment.status in (SUCCEEDED, REFUNDED) and (
            payment.amount_minor - payment.refunded_minor >= amount_minor
        ):
            return payment
    return None


async def list_for_customer(session: AsyncSession, customer_id: str) -> list[dict[str, Any]]:
    """The customer's payments (``billing.accounts``), newest invoice first."""
    return await render(session, list(await repository.of_customer(session, customer_id)))


async def delete_for_customer(session: AsyncSession, customer_id: str) -> None:
    """Customer deletion (customers.md: cascades to payments and payment methods)."""
    await repository.delete_for_customer(session, customer_id)
    log.info("payment.deleted_for_customer", customer_id=customer_id)


async def flag_for_attention(
    maker: async_sessionmaker[AsyncSession], *, payment_id: str, reason: str
) -> None:
    """Mark a payment the tenant must look at (``metadata.needsAttention``)."""
    async with maker() as session:
        payment = await repository.get(session, payment_id, lock=True)
        payment.metadata_ = {
            **(payment.metadata_ or {}),
            "needsAttention": True,
            "attentionReason": reason[:500],
        }
        await session.commit()


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
    if body.status == SUCCEEDED and invoice.status not in (PAID, CANCELED):
        await invoice_lifecycle.settle(
            session,
            invoice,
            tenant_id=tenant_id,
            clock=clock,
            method=payment.provider,
            reference=payment.provider_transaction_id,
            paid_at=created_at,
            payment_id=payment.id,
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


async def mark_paid(
    session: AsyncSession, *, tenant_id: str, invoice_id: str, method: str, clock: Clock
) -> Invoice:
    """``POST /api/invoices/{id}/mark-paid``: a SUCCEEDED manual payment for the invoice
    amount and the invoice settled (PAID and CANCELED invoices are refused)."""
    invoice = await invoice_service.get_invoice(session, invoice_id, lock=True)
    if invoice.status == PAID:
        raise BusinessRule("Invoice is already paid")
    if invoice.status == CANCELED:
        raise BusinessRule("Cannot mark a canceled invoice as paid")
    now = clock.now()
    payment = Payment(
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        provider=method,
        kind=KIND_MANUAL,
        amount_minor=invoice.total_minor,
        currency=invoice.currency,
        status=SUCCEEDED,
        paid_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    await session.flush()
    await invoice_lifecycle.settle(
        session, invoice, tenant_id=tenant_id, clock=clock, method=method, payment_id=payment.id
    )
    return invoice


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
) -> Recorded | None:
    """Apply one confirmed provider answer to ``payment`` (idempotent): what changed, or
    None when nothing did (a pending answer, a final payment, a repeat)."""
    if payment.status in (SUCCEEDED, REFUNDED):
        return None
    if payment.status == FAILED and txn.outcome is not Outcome.SUCCEEDED:
        return None
    now = clock.now()
    if txn.provider_reference and (
        txn.outcome is Outcome.SUCCEEDED or not payment.provider_transaction_id
    ):
        # The provider's own transaction id (replaces a checkout session / access code).
        payment.provider_transaction_id = txn.provider_reference
    recorded: Recorded | None = None
    if txn.outcome is Outcome.SUCCEEDED:
        recorded = await _succeeded(
            session, tenant_id=tenant_id, payment=payment, txn=txn, encryptor=encryptor, clock=clock
        )
    elif txn.outcome is Outcome.FAILED:
        recorded = await fail_payment(
            session,
            tenant_id=tenant_id,
            payment=payment,
            reason=txn.message or "Payment failed",
            clock=clock,
        )
    elif not schedule_check(payment, now):
        recorded = await fail_payment(
            session, tenant_id=tenant_id, payment=payment, reason=UNCONFIRMED, clock=clock
        )
        log.warning("payment.unconfirmed", payment_id=payment.id, checks=payment.check_attempts)
    payment.updated_at = now
    await session.flush()
    return recorded


def schedule_check(payment: Payment, now: datetime) -> bool:
    """Unknown is not failed: ask the provider again later (reconcile job / tick). False
    when every check is used up (the caller gives the payment its terminal outcome)."""
    if payment.check_attempts >= len(RECONCILE_DELAYS):
        payment.next_check_at = None
        return False
    payment.next_check_at = now + timedelta(seconds=RECONCILE_DELAYS[payment.check_attempts])
    payment.check_attempts += 1
    return True


async def _succeeded(
    session: AsyncSession,
    *,
    tenant_id: str,
    payment: Payment,
    txn: Transaction,
    encryptor: Encryptor,
    clock: Clock,
) -> Recorded | None:
    invoice = await invoice_service.get_invoice(session, payment.invoice_id, lock=True)
    problem = _matches(payment, invoice, txn)
    if problem is not None:
        log.error("payment.amount_mismatch", payment_id=payment.id, problem=problem)
        payment.failure_reason = f"Not applied: {problem}"
        payment.next_check_at = None
        return None
    now = clock.now()
    if not await _claim(
        session, payment, SUCCEEDED, failure_reason=None, paid_at=now, next_check_at=None
    ):
        return None  # another worker recorded this answer first
    if invoice.status in (PAID, CANCELED):
        _overpaid(tenant_id, payment, invoice, clock=clock)
    else:
        await invoice_lifecycle.settle(
            session,
            invoice,
            tenant_id=tenant_id,
            clock=clock,
            method=payment.provider,
            reference=payment.provider_transaction_id,
            payment_id=payment.id,
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
    return Recorded(payment.id, invoice.id, payment.kind, SUCCEEDED)


def _overpaid(tenant_id: str, payment: Payment, invoice: Invoice, *, clock: Clock) -> None:
    """Money arrived for an invoice that no longer wants it (already PAID, or voided):
    record it, tell the tenant, give it back where the provider can."""
    refundable = payment.kind != KIND_MANUAL
    payment.metadata_ = {
        **(payment.metadata_ or {}),
        "overpaid": True,
        "invoiceStatus": invoice.status,
        "needsAttention": not refundable,
    }
    outbound.emit(
        tenant_id,
        "payment.overpaid",
        _event_data(payment, invoiceStatus=invoice.status, autoRefund=refundable),
        clock=clock,
        key=payment.id,
    )
    if refundable:
        enqueue_after_commit(
            QUEUE_PAYMENTS,
            REFUND_OVERPAYMENT_JOB,
            {"tenant_id": tenant_id, "payment_id": payment.id},
            job_id=f"{tenant_id}:overpaid:{payment.id}",
            attempts=5,
        )
    log.warning(
        "payment.overpaid", payment_id=payment.id, invoice_id=invoice.id, status=invoice.status
    )


async def _claim(session: AsyncSession, payment: Payment, status: str, **values: Any) -> bool:
    """Move the payment to ``status`` only from the one this worker read it in."""
    sources = (PROCESSING, FAILED) if status == SUCCEEDED else (PROCESSING,)
    return await repository.claim(session, payment, sources, status=status, **values)


async def fail_payment(
    session: AsyncSession, *, tenant_id: str, payment: Payment, reason: str, clock: Clock
) -> Recorded | None:
    """The payment FAILED. A failed checkout tells the customer here; a failed automatic
    charge is reported to the caller, whose dunning tells them with the retry date."""
    if not await _claim(session, payment, FAILED, failure_reason=reason, next_check_at=None):
        return None  # another worker recorded an answer first
    if payment.kind != KIND_CHARGE:
        emails.queue(
            tenant_id,
            emails.PAYMENT_FAILED,
            {"invoice_id": payment.invoice_id, "reason": reason},
            key=payment.id,
        )
    outbound.emit(
        tenant_id, "payment.failed", _event_data(payment, error=reason), clock=clock, key=payment.id
    )
    log.info("payment.failed", payment_id=payment.id, reason=reason)
    return Recorded(payment.id, payment.invoice_id, payment.kind, FAILED, reason)


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
    existing = await repository.method_by_token_hash(session, digest)
    if existing is not None:
        return existing
    has_default = await repository.has_default_method(session, customer_id)
    auth = raw.get("authorization") if isinstance(raw, dict) else None
    auth = auth if isinstance(auth, dict) else {}
    now = clock.now()
    method = PaymentMethod(
        customer_id=customer_id,
        provider=provider,
        token_encrypted=encryptor.encrypt(token, aad=tenant_id.encode()),
        token_hash=digest,
        token_hint=mask(token),
        brand=str(auth.get("brand") or "")[:50] or None,
        last4=str(auth.get("last4") or "")[:4] or None,
        exp_month=_int(auth.get("exp_month")),
        exp_year=_int(auth.get("exp_year")),
        email=_payer_email(raw),
        # Stripe: the PaymentIntent's customer, needed to charge the method off-session
        provider_customer_ref=(
            str(raw["customer"])[:255]
            if isinstance(raw, dict) and isinstance(raw.get("customer"), str)
            else None
        ),
        is_default=not has_default,
        created_at=now,
        updated_at=now,
    )
    session.add(method)
    await session.flush()
    log.info("payment_method.saved", customer_id=customer_id, provider=provider)
    return method


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _payer_email(raw: Any) -> str | None:
    """The payer's e-mail from a provider's transaction, where it has one: Paystack and
    Flutterwave embed a customer object; a Stripe PaymentIntent names its customer by id
    (a string) and keeps the address in ``receipt_email``."""
    if not isinstance(raw, dict):
        return None
    customer = raw.get("customer")
    if isinstance(customer, dict) and isinstance(customer.get("email"), str):
        return str(customer["email"])[:320]
    receipt = raw.get("receipt_email")
    return str(receipt)[:320] if isinstance(receipt, str) else None
