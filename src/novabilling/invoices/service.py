"""Invoice use cases (contract invoices.md). Services flush, never commit; time comes from
the clock; side effects (emails, PDFs) are jobs queued after commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import structlog
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.billing import emails
from novabilling.customers.models import Customer
from novabilling.errors import BusinessRule, Conflict, Invalid, NotFound
from novabilling.invoices import numbering, schemas
from novabilling.invoices.documents import TenantProfile, invoice_event, remove_pdfs_after_commit
from novabilling.invoices.models import (
    CANCELED,
    DRAFT,
    FAILED,
    PAID,
    PENDING,
    STATUSES,
    Invoice,
    InvoiceLine,
)
from novabilling.kit import money
from novabilling.kit.clock import Clock
from novabilling.kit.pagination import PageParams, paginate
from novabilling.kit.timestamps import parse_instant
from novabilling.webhooks import outbound

log = structlog.get_logger(__name__)

DEFAULT_NET_TERMS_DAYS = 30
_DELETE_CHUNK = 500  # ids per IN (...) list when deleting a customer's invoices


@dataclass(frozen=True)
class LineIn:
    description: str
    quantity: int
    unit_amount_minor: int
    type: str = "manual"
    period_start: datetime | None = None
    period_end: datetime | None = None

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.unit_amount_minor


async def get_customer(session: AsyncSession, customer_id: str) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("Customer not found")
    return customer


async def get_invoice(session: AsyncSession, invoice_id: str, *, lock: bool = False) -> Invoice:
    stmt = select(Invoice).where(Invoice.id == invoice_id)
    if lock:
        stmt = stmt.with_for_update()
    invoice = await session.scalar(stmt)
    if invoice is None:
        raise NotFound("Invoice not found")
    return invoice


async def with_customer(session: AsyncSession, invoice: Invoice) -> tuple[Invoice, Customer]:
    return invoice, await get_customer(session, invoice.customer_id)


async def _claim(
    session: AsyncSession, invoice: Invoice, allowed: tuple[str, ...], **values: Any
) -> bool:
    """Compare-and-set the status in the database (SQLite has no ``FOR UPDATE``: two
    requests may both have read the old status; only one UPDATE matches)."""
    result = await session.execute(
        update(Invoice)
        .where(Invoice.id == invoice.id, Invoice.status.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    await session.refresh(invoice)
    return True


def _status(value: str | None, *, field: str = "status") -> str | None:
    if value is None:
        return None
    if value not in STATUSES:
        raise Invalid(field, f"{field} must be one of the following values: {', '.join(STATUSES)}")
    return value


def add_lines(session: AsyncSession, invoice: Invoice, lines: list[LineIn]) -> None:
    for position, line in enumerate(lines):
        session.add(
            InvoiceLine(
                invoice_id=invoice.id,
                position=position,
                type=line.type,
                description=line.description,
                quantity=line.quantity,
                unit_amount_minor=line.unit_amount_minor,
                amount_minor=line.amount_minor,
                period_start=line.period_start,
                period_end=line.period_end,
            )
        )


async def _subscription_exists(session: AsyncSession, subscription_id: str) -> bool:
    from novabilling.subscriptions.models import Subscription

    found = await session.scalar(select(Subscription.id).where(Subscription.id == subscription_id))
    return found is not None


async def create_invoice(
    session: AsyncSession, *, tenant_id: str, body: schemas.InvoiceCreate, clock: Clock
) -> tuple[Invoice, Customer]:
    """POST /api/invoices: a manual invoice (DRAFT unless ``status`` says otherwise)."""
    customer = await get_customer(session, body.customer_id)
    status = _status(body.status) or DRAFT
    currency = money.normalize_code(body.currency or customer.currency)
    money.exponent(currency)
    if body.subscription_id is not None and not await _subscription_exists(
        session, body.subscription_id
    ):
        raise NotFound("Subscription not found")
    lines = [
        LineIn(
            description=item.description,
            quantity=item.quantity,
            unit_amount_minor=money.to_minor(
                item.unit_amount, currency, field=f"items.{i}.unitAmount"
            ),
        )
        for i, item in enumerate(body.items)
    ]
    total = sum(line.amount_minor for line in lines)
    if total >= money.MAX_MINOR:
        raise Invalid("items", "items total is too large")
    now = clock.now()
    if body.invoice_number is not None:
        number = body.invoice_number
        taken = await session.scalar(select(Invoice.id).where(Invoice.invoice_number == number))
        if taken is not None:
            raise Conflict(f"Invoice number {number} already exists")
        await numbering.note_supplied(session, number)
    else:
        number = await numbering.next_number(session)
    invoice = Invoice(
        customer_id=customer.id,
        subscription_id=body.subscription_id,
        invoice_number=number,
        status=status,
        currency=currency,
        subtotal_minor=total,
        tax_minor=0,
        total_minor=total,
        due_date=body.due_date,
        paid_at=body.paid_at or (now if status == PAID else None),
        finalized_at=now if status != DRAFT else None,
        metadata_={
            "items": [
                schemas.item_out(ln.description, ln.quantity, ln.unit_amount_minor, currency)
                for ln in lines
            ]
        },
        created_at=body.created_at or now,
        updated_at=now,
    )
    session.add(invoice)
    try:
        await session.flush()
        add_lines(session, invoice, lines)
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Invoice number {number} already exists") from exc
    emails.queue_render_pdf(tenant_id, invoice.id)
    log.info("invoice.created", invoice_id=invoice.id, number=number, total_minor=total)
    return invoice, customer


async def list_invoices(
    session: AsyncSession,
    *,
    params: PageParams,
    status: str | None = None,
    customer_id: str | None = None,
    subscription_id: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> tuple[list[tuple[Invoice, Customer]], int]:
    stmt = cast(
        "Select[Any]",
        select(Invoice, Customer).join(Customer, Customer.id == Invoice.customer_id),
    )
    if (checked := _status(status)) is not None:
        stmt = stmt.where(Invoice.status == checked)
    if customer_id is not None:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    if subscription_id is not None:
        stmt = stmt.where(Invoice.subscription_id == subscription_id)
    for name, raw in (("dateFrom", date_from), ("dateTo", date_to)):
        if raw is None:
            continue
        try:
            instant = parse_instant(raw)
        except ValueError:
            raise Invalid(name, f"{name} must be a valid ISO 8601 date string") from None
        if name == "dateFrom":
            stmt = stmt.where(Invoice.created_at >= instant)
        elif len(raw.strip()) == 10:  # a whole day: inclusive to its end
            stmt = stmt.where(Invoice.created_at < instant + timedelta(days=1))
        else:
            stmt = stmt.where(Invoice.created_at <= instant)
    rows, total = await paginate(
        session, stmt, params.page, params.limit, Invoice.created_at.desc(), Invoice.id.desc()
    )
    return [(row[0], row[1]) for row in rows], total


def net_terms_days(customer: Customer, plan_terms: int | None, tenant: TenantProfile) -> int:
    """customer -> plan -> tenant ``settings.netPaymentTerms`` -> 30 days."""
    for value in (customer.net_payment_terms, plan_terms, tenant.setting_int("netPaymentTerms")):
        if value is not None and value >= 0:
            return value
    return DEFAULT_NET_TERMS_DAYS


async def _plan_terms(session: AsyncSession, invoice: Invoice) -> int | None:
    if invoice.subscription_id is None:
        return None
    from novabilling.plans.models import Plan
    from novabilling.subscriptions.models import Subscription

    return await session.scalar(
        select(Plan.net_payment_terms)
        .join(Subscription, Subscription.plan_id == Plan.id)
        .where(Subscription.id == invoice.subscription_id)
    )


async def finalize(
    session: AsyncSession, *, tenant: TenantProfile, invoice_id: str, clock: Clock
) -> tuple[Invoice, Customer]:
    """DRAFT -> PENDING. Subscription invoices fall due after the net payment terms; a
    manual invoice keeps the due date it was created with."""
    invoice = await get_invoice(session, invoice_id, lock=True)
    if invoice.status != DRAFT:
        raise BusinessRule(f"Only DRAFT invoices can be finalized (status is {invoice.status})")
    customer = await get_customer(session, invoice.customer_id)
    now = clock.now()
    due = invoice.due_date
    if invoice.period_start is not None:
        terms = net_terms_days(customer, await _plan_terms(session, invoice), tenant)
        due = now + timedelta(days=terms)
    if not await _claim(
        session,
        invoice,
        (DRAFT,),
        status=PENDING,
        finalized_at=now,
        updated_at=now,
        due_date=due,
        grace_ends_at=None,
    ):
        raise BusinessRule("Only DRAFT invoices can be finalized (status changed meanwhile)")
    emails.queue_invoice_email(tenant.id, invoice.id)
    outbound.emit(
        tenant.id, "invoice.finalized", invoice_event(invoice), clock=clock, key=invoice.id
    )
    log.info("invoice.finalized", invoice_id=invoice.id, number=invoice.invoice_number)
    return invoice, customer


async def void(
    session: AsyncSession, *, tenant_id: str, invoice_id: str, clock: Clock
) -> tuple[Invoice, Customer]:
    """Anything but PAID -> CANCELED (again on CANCELED); stops dunning."""
    invoice = await get_invoice(session, invoice_id, lock=True)
    if invoice.status == PAID:
        raise BusinessRule("Cannot void a paid invoice; refund it instead")
    now = clock.now()
    first = invoice.status != CANCELED
    if not await _claim(
        session,
        invoice,
        tuple(s for s in STATUSES if s != PAID),
        status=CANCELED,
        voided_at=invoice.voided_at or now,
        next_retry_at=None,
        updated_at=now,
    ):
        raise BusinessRule("Cannot void a paid invoice; refund it instead")
    if first:
        emails.queue(tenant_id, emails.INVOICE_VOIDED, {"invoice_id": invoice.id}, key=invoice.id)
        outbound.emit(
            tenant_id,
            "invoice.voided",
            invoice_event(invoice, with_amount=False),
            clock=clock,
            key=invoice.id,
        )
    log.info("invoice.voided", invoice_id=invoice.id)
    return await with_customer(session, invoice)


async def mark_paid(
    session: AsyncSession,
    *,
    tenant_id: str,
    invoice_id: str,
    payment_method: str,
    clock: Clock,
) -> tuple[Invoice, Customer]:
    """Record a manual payment; PAID/CANCELED invoices are refused (400)."""
    invoice = await get_invoice(session, invoice_id, lock=True)
    if invoice.status == PAID:
        raise BusinessRule("Invoice is already paid")
    if invoice.status == CANCELED:
        raise BusinessRule("Cannot mark a canceled invoice as paid")
    from novabilling.billing import dunning

    if not await _claim(
        session,
        invoice,
        (DRAFT, PENDING, FAILED),
        status=PAID,
        paid_at=clock.now(),
        updated_at=clock.now(),
    ):
        raise BusinessRule("Invoice is already paid")
    await dunning.settle_paid(
        session,
        tenant_id=tenant_id,
        invoice=invoice,
        clock=clock,
        provider=payment_method,
        record_payment=True,
    )
    outbound.emit(tenant_id, "invoice.paid", invoice_event(invoice), clock=clock, key=invoice.id)
    log.info("invoice.marked_paid", invoice_id=invoice.id, method=payment_method)
    return await with_customer(session, invoice)


async def send_email(
    session: AsyncSession, *, tenant_id: str, invoice_id: str, email: str | None
) -> str:
    invoice = await get_invoice(session, invoice_id)
    customer = await get_customer(session, invoice.customer_id)
    recipient = (email or customer.email or "").strip()
    if not recipient:
        raise BusinessRule("No email address to send the invoice to")
    emails.queue_invoice_email(tenant_id, invoice.id, to=recipient, resend=True)
    return recipient


@dataclass(frozen=True)
class InvoiceDetail:
    invoice: Invoice
    customer: Customer
    subscription: dict[str, Any] | None
    payments: list[dict[str, Any]]


async def invoice_detail(session: AsyncSession, *, invoice_id: str) -> InvoiceDetail:
    """Invoice + customer + subscription (object or null) + payments (oldest first)."""
    from novabilling.payments.models import Payment
    from novabilling.payments.schemas import payment_out
    from novabilling.subscriptions.models import Subscription
    from novabilling.subscriptions.schemas import subscription_out

    invoice, customer = await with_customer(session, await get_invoice(session, invoice_id))
    subscription = None
    if invoice.subscription_id is not None:
        sub = await session.get(Subscription, invoice.subscription_id)
        subscription = subscription_out(sub) if sub is not None else None
    payments = (
        await session.scalars(
            select(Payment)
            .where(Payment.invoice_id == invoice.id)
            .order_by(Payment.created_at, Payment.id)
        )
    ).all()
    return InvoiceDetail(
        invoice=invoice,
        customer=customer,
        subscription=subscription,
        payments=[payment_out(p, embed=False) for p in payments],
    )


async def checkout(
    session: AsyncSession,
    *,
    runtime: Any,
    tenant_id: str,
    invoice_id: str,
    callback_url: str | None,
) -> dict[str, Any]:
    """Hosted checkout through the tenant's provider (payments domain does the work)."""
    from novabilling.payments import charge
    from novabilling.payments.credentials import provider_factory
    from novabilling.payments.schemas import checkout_out

    payment, expires_at = await charge.checkout(
        session,
        tenant_id=tenant_id,
        invoice_id=invoice_id,
        callback_url=callback_url,
        factory=provider_factory(runtime),
    )
    return checkout_out(payment, expires_at)


async def pdf(
    session: AsyncSession, *, tenant: TenantProfile, invoice_id: str, data_dir: Any
) -> bytes:
    """Render on demand, store, set ``pdfUrl``."""
    from novabilling.invoices.documents import render_and_store

    invoice = await get_invoice(session, invoice_id)
    data = await render_and_store(session, invoice, tenant, data_dir)
    await session.flush()
    return data


async def recent_for_subscription(
    session: AsyncSession, *, subscription_id: str, limit: int
) -> list[dict[str, Any]]:
    """The newest invoices of a subscription as wire objects (subscription detail)."""
    rows = await session.scalars(
        select(Invoice)
        .where(Invoice.subscription_id == subscription_id)
        .order_by(Invoice.created_at.desc(), Invoice.id.desc())
        .limit(limit)
    )
    return [schemas.invoice_out(invoice) for invoice in rows.all()]


# --- called by the customers domain (customers/relations.py) -----------------------------


async def list_for_customer(
    session: AsyncSession, customer_id: str, *, limit: int | None = None
) -> list[dict[str, Any]]:
    """A customer's invoices as wire objects (no embeds), newest first."""
    stmt = (
        select(Invoice)
        .where(Invoice.customer_id == customer_id)
        .order_by(Invoice.created_at.desc(), Invoice.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [schemas.invoice_out(invoice) for invoice in (await session.scalars(stmt)).all()]


async def paid_totals_by_customer(
    session: AsyncSession, customer_ids: list[str]
) -> dict[str, Decimal]:
    """Sum of PAID invoice amounts per customer in major units, currencies mixed
    (customers.md ``totalSpent``). Missing ids: 0."""
    if not customer_ids:
        return {}
    rows = await session.execute(
        select(Invoice.customer_id, Invoice.currency, func.sum(Invoice.total_minor))
        .where(Invoice.customer_id.in_(customer_ids), Invoice.status == PAID)
        .group_by(Invoice.customer_id, Invoice.currency)
    )
    out: dict[str, Decimal] = {}
    for customer_id, currency, minor in rows.tuples():
        total = Decimal(money.to_wire(int(minor or 0), currency))
        out[customer_id] = out.get(customer_id, Decimal(0)) + total
    return out


async def lock_for_customer(session: AsyncSession, customer_id: str) -> None:
    """Row-lock a customer's invoices on PostgreSQL before deleting the customer: invoices
    first, then subscriptions, the order the charge job and the dunning hook lock in."""
    await session.execute(
        select(Invoice.id)
        .where(Invoice.customer_id == customer_id)
        .order_by(Invoice.id)
        .with_for_update()
    )


async def delete_for_customer(
    session: AsyncSession, customer_id: str, *, data_dir: Path | None = None
) -> None:
    """Delete a customer's invoices and their lines (the number counter is not rolled
    back). Their stored PDFs (served without auth) are removed after the commit."""
    ids = list(
        (await session.scalars(select(Invoice.id).where(Invoice.customer_id == customer_id))).all()
    )
    if not ids:
        return
    for offset in range(0, len(ids), _DELETE_CHUNK):
        chunk = ids[offset : offset + _DELETE_CHUNK]
        await session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id.in_(chunk)))
        await session.execute(delete(Invoice).where(Invoice.id.in_(chunk)))
    if data_dir is not None:
        remove_pdfs_after_commit(session, data_dir, ids)
    log.info("invoice.deleted_for_customer", customer_id=customer_id, invoices=len(ids))
