"""Invoice use cases (contract invoices.md): manual invoices, lists, finalize, void, PDFs,
e-mails, and the reads other domains make. Every draft comes from ``invoices.builder``;
every status change goes through ``invoices.lifecycle``. Services flush, never commit.
Marking paid and checkout are payments' use cases (``payments.service.mark_paid``,
``payments.charge.checkout``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.errors import BusinessRule, Invalid, NotFound
from novabilling.invoices import builder, lifecycle, repository, schemas
from novabilling.invoices.documents import remove_pdfs_after_commit, render_and_store
from novabilling.invoices.models import DRAFT, STATUSES, Invoice
from novabilling.kit import money
from novabilling.kit.clock import Clock
from novabilling.kit.pagination import PageParams
from novabilling.kit.timestamps import query_instant
from novabilling.kit.wire import is_email
from novabilling.notifications import jobs as emails
from novabilling.plans.models import Plan
from novabilling.tenancy.profiles import TenantProfile

log = structlog.get_logger(__name__)

DEFAULT_NET_TERMS_DAYS = 30


get_customer = repository.get_customer


async def get_invoice(session: AsyncSession, invoice_id: str, *, lock: bool = False) -> Invoice:
    return await repository.get(session, invoice_id, lock=lock)


async def with_customer(session: AsyncSession, invoice: Invoice) -> tuple[Invoice, Customer]:
    return invoice, await get_customer(session, invoice.customer_id)


def _status(value: str | None, *, field: str = "status") -> str | None:
    if value is None:
        return None
    if value not in STATUSES:
        raise Invalid(field, f"{field} must be one of the following values: {', '.join(STATUSES)}")
    return value


async def create_invoice(
    session: AsyncSession,
    *,
    tenant_id: str,
    body: schemas.InvoiceCreate,
    clock: Clock,
) -> tuple[Invoice, Customer]:
    """POST /api/invoices: a manual invoice (DRAFT unless ``status`` says otherwise)."""
    customer = await get_customer(session, body.customer_id)
    status = _status(body.status) or DRAFT
    currency = money.normalize_code(body.currency or customer.currency)
    money.exponent(currency)
    if body.subscription_id is not None and not await repository.subscription_exists(
        session, body.subscription_id
    ):
        raise NotFound("Subscription not found")
    items = tuple(
        builder.ManualItem(
            description=item.description,
            quantity=item.quantity,
            unit_amount_minor=money.to_minor(
                item.unit_amount, currency, field=f"items.{i}.unitAmount"
            ),
        )
        for i, item in enumerate(body.items)
    )
    if sum(item.quantity * item.unit_amount_minor for item in items) >= money.MAX_MINOR:
        raise Invalid("items", "items total is too large")
    now = clock.now()
    draft = builder.build(
        builder.Inputs(
            customer_id=customer.id,
            currency=currency,
            now=now,
            terms=builder.Terms(net_days=DEFAULT_NET_TERMS_DAYS),
            subscription_id=body.subscription_id,
            items=items,
            invoice_number=body.invoice_number,
            status=status,
            due_date=body.due_date,
            paid_at=body.paid_at,
            created_at=body.created_at,
        )
    )
    issued = await lifecycle.issue(session, [draft], tenant_id=tenant_id, clock=clock)
    invoice = await get_invoice(session, issued[0].id)
    log.info("invoice.created", invoice_id=invoice.id, number=invoice.invoice_number)
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
    bounds: dict[str, datetime] = {}
    for name, raw in (("dateFrom", date_from), ("dateTo", date_to)):
        instant = query_instant(name, raw)
        if raw is None or instant is None:
            continue
        if name == "dateFrom":
            bounds["created_from"] = instant
        elif len(raw.strip()) == 10:  # a whole day: inclusive to its end
            bounds["created_before"] = instant + timedelta(days=1)
        else:
            bounds["created_until"] = instant
    return await repository.page(
        session,
        page=params.page,
        limit=params.limit,
        status=_status(status),
        customer_id=customer_id,
        subscription_id=subscription_id,
        **bounds,
    )


def net_terms_days(
    customer_terms: int | None, plan_terms: int | None, tenant: TenantProfile
) -> int:
    """customer -> plan -> tenant ``settings.netPaymentTerms`` -> 30 days."""
    for value in (customer_terms, plan_terms, tenant.setting_int("netPaymentTerms")):
        if value is not None and value >= 0:
            return value
    return DEFAULT_NET_TERMS_DAYS


def grace_days(plan: Plan | None, tenant: TenantProfile) -> int:
    """plan ``invoiceGracePeriodDays`` -> tenant setting -> 0 (contract: a plan's 0 is
    "not set", so the tenant setting applies)."""
    if plan is not None and plan.invoice_grace_period_days:
        return plan.invoice_grace_period_days
    return max(0, tenant.setting_int("invoiceGracePeriodDays") or 0)


async def finalize(
    session: AsyncSession, *, tenant: TenantProfile, invoice_id: str, clock: Clock
) -> tuple[Invoice, Customer]:
    """DRAFT -> PENDING (``POST /api/invoices/{id}/finalize`` and the end of a grace
    period): e-mail, ``invoice.finalized``, and the automatic charge when the
    subscription has a saved payment method. The due date stays the one set when the
    invoice was issued (contract invoice-composition.md step 8)."""
    invoice = await get_invoice(session, invoice_id, lock=True)
    await lifecycle.finalize(session, invoice, tenant_id=tenant.id, clock=clock)
    return await with_customer(session, invoice)


async def finalize_if_draft(
    session: AsyncSession, *, tenant: TenantProfile, invoice_id: str, clock: Clock
) -> bool:
    """``finalize`` for the billing tick: False when the invoice left DRAFT meanwhile."""
    try:
        invoice = await repository.get(session, invoice_id, lock=True)
    except NotFound:
        return False
    if invoice.status != DRAFT:
        return False
    await finalize(session, tenant=tenant, invoice_id=invoice_id, clock=clock)
    return True


async def void(
    session: AsyncSession, *, tenant_id: str, invoice_id: str, clock: Clock
) -> tuple[Invoice, Customer]:
    """Anything but PAID -> CANCELED (again on CANCELED); stops dunning."""
    invoice = await get_invoice(session, invoice_id, lock=True)
    await lifecycle.void(session, invoice, tenant_id=tenant_id, clock=clock)
    return await with_customer(session, invoice)


async def send_email(
    session: AsyncSession, *, tenant_id: str, invoice_id: str, email: object
) -> str:
    """Queue the invoice e-mail to ``email`` (the body's value as sent; empty or absent:
    the customer's address). A value that is not an e-mail address is a 400 now rather
    than a message the mail server refuses after every retry."""
    invoice = await get_invoice(session, invoice_id)
    customer = await get_customer(session, invoice.customer_id)
    if email is not None and not isinstance(email, str):
        raise Invalid("email", "email must be an email address, e.g. ada@example.com")
    recipient = (email or "").strip() or (customer.email or "").strip()
    if not recipient:
        raise BusinessRule("No email address to send the invoice to")
    if not is_email(recipient):
        raise Invalid("email", "email must be an email address, e.g. ada@example.com")
    emails.queue_invoice_email(tenant_id, invoice.id, to=recipient, resend=True)
    return recipient


async def pdf(
    session: AsyncSession, *, tenant: TenantProfile, invoice_id: str, data_dir: Path
) -> bytes:
    """Render on demand, store, set ``pdfUrl``."""
    invoice = await get_invoice(session, invoice_id)
    data = await render_and_store(session, invoice, tenant, data_dir)
    await session.flush()
    return data


async def recent_for_subscription(
    session: AsyncSession, *, subscription_id: str, limit: int
) -> list[dict[str, Any]]:
    """The newest invoices of a subscription as wire objects (subscription detail)."""
    rows = await repository.newest(session, subscription_id=subscription_id, limit=limit)
    return [schemas.invoice_out(invoice) for invoice in rows]


# --- reads of the domains above (billing.accounts, billing.views) ------------------------


async def list_for_customer(
    session: AsyncSession, customer_id: str, *, limit: int | None = None
) -> list[dict[str, Any]]:
    """A customer's invoices as wire objects (no embeds), newest first."""
    rows = await repository.newest(session, customer_id=customer_id, limit=limit)
    return [schemas.invoice_out(invoice) for invoice in rows]


paid_minor_of = repository.paid_minor_of


def _major(minor: int, currency: str) -> Decimal:
    return Decimal(money.to_wire(minor, currency))


def paid_total(text: str | None) -> Decimal:
    """A ``paid_minor_of`` value as the sum of its currencies' amounts in major units,
    currencies mixed (customers.md ``totalSpent``), as ``paid_totals_by_customer``."""
    return sum(
        (_major(minor, currency) for currency, minor in repository.parse_paid_minor(text)),
        Decimal(0),
    )


async def paid_totals_by_customer(
    session: AsyncSession, customer_ids: list[str]
) -> dict[str, Decimal]:
    """Sum of PAID invoice amounts per customer in major units, currencies mixed
    (customers.md ``totalSpent``). Missing ids: 0."""
    out: dict[str, Decimal] = {}
    for customer_id, currency, minor in await repository.paid_minor_by_customer(
        session, customer_ids
    ):
        out[customer_id] = out.get(customer_id, Decimal(0)) + _major(minor, currency)
    return out


lock_for_customer = repository.lock_for_customer


async def delete_for_customer(
    session: AsyncSession, customer_id: str, *, data_dir: Path | None = None
) -> None:
    """Delete a customer's invoices and their lines (the number counter is not rolled
    back). Their stored PDFs (served without auth) are removed after the commit."""
    ids = await repository.delete_for_customer(session, customer_id)
    if not ids:
        return
    if data_dir is not None:
        remove_pdfs_after_commit(session, data_dir, ids)
    log.info("invoice.deleted_for_customer", customer_id=customer_id, invoices=len(ids))
