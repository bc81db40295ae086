"""The customer portal (contract portal.md): one end-customer's view, named by its
``externalId``, and the customer-scoped portal tokens of its Improve note.

Reads join customers, plans, subscriptions, invoices and payments; the checkout is the
invoices checkout (``payments.charge.checkout``) after the portal's own checks, in the
contract's order. Money in portal projections is a JSON number; plan prices stay strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import structlog
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from novabilling.customers import service as customers_service
from novabilling.customers.models import Customer
from novabilling.errors import BusinessRule, Invalid, NotFound
from novabilling.invoices import service as invoices_service
from novabilling.invoices.models import CANCELED, PAID, PENDING, STATUSES, Invoice
from novabilling.kit import money
from novabilling.kit.clock import Clock
from novabilling.kit.pagination import newest_first, paginate
from novabilling.kit.timestamps import to_wire
from novabilling.kit.tokens import PortalClaims, TokenSigner
from novabilling.payments import charge
from novabilling.payments.credentials import ProviderFactory
from novabilling.payments.models import Payment
from novabilling.plans import service as plans_service
from novabilling.plans.models import Plan
from novabilling.plans.schemas import price_out
from novabilling.subscriptions.models import Subscription
from novabilling.subscriptions.schemas import with_plan
from novabilling.subscriptions.transitions import Status
from novabilling.tenancy.principal import Principal

log = structlog.get_logger(__name__)

RECENT = 20
LISTED_STATUSES = (Status.ACTIVE.value, Status.TRIALING.value, Status.PAUSED.value)
MAX_TOKEN_MINUTES = 1440
Maker = async_sessionmaker[AsyncSession]


def _ts(value: datetime | None) -> str | None:
    return to_wire(value) if value is not None else None


# --- tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalToken:
    token: str
    expires_at: datetime
    customer: Customer


def token_minutes(body: dict[str, Any], default: int) -> int:
    """``expiresInMinutes`` of the request body (1-1440), else the configured default."""
    value = body.get("expiresInMinutes")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("expiresInMinutes", "must be an integer")
    if not 1 <= value <= MAX_TOKEN_MINUTES:
        raise Invalid("expiresInMinutes", f"must be between 1 and {MAX_TOKEN_MINUTES}")
    return value


def issue_token(
    *,
    tenant_id: str,
    customer: Customer,
    minutes: int,
    signer: TokenSigner,
    clock: Clock,
) -> PortalToken:
    """A signed token good for this customer of this tenant for ``minutes``."""
    now = clock.now()
    expires = now + timedelta(minutes=minutes)
    claims = PortalClaims(tenant_id, customer.id, customer.external_id)
    token = signer.portal_token(claims, now=now, expires=expires)
    log.info("portal.token_issued", customer_id=customer.id, minutes=minutes)
    return PortalToken(token, expires, customer)


def token_out(issued: PortalToken) -> dict[str, Any]:
    return {
        "token": issued.token,
        "expiresAt": to_wire(issued.expires_at),
        "customerId": issued.customer.id,
        "externalId": issued.customer.external_id,
    }


# --- the customer behind a portal request ---------------------------------------------------


async def portal_customer(
    session: AsyncSession, principal: Principal, external_id: str
) -> Customer:
    """The customer a portal route names. A portal token reaches only its own customer
    (same id, so a customer deleted and re-created under the externalId is not reached):
    any other is ``Customer not found``, like an unknown one."""
    if principal.kind == "portal" and principal.external_id != external_id:
        raise NotFound("Customer not found")
    customer = await customers_service.get_by_external_id(session, external_id)
    if principal.kind == "portal" and principal.customer_id != customer.id:
        raise NotFound("Customer not found")
    return customer


# --- projections ------------------------------------------------------------------------


def invoice_projection(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "invoiceNumber": invoice.invoice_number,
        "amount": money.to_number(invoice.total_minor, invoice.currency),
        "currency": invoice.currency,
        "status": invoice.status,
        "dueDate": to_wire(invoice.due_date),
        "paidAt": _ts(invoice.paid_at),
        "pdfUrl": invoice.pdf_url,
        "createdAt": to_wire(invoice.created_at),
    }


def payment_projection(
    payment: Payment, invoice_number: str, *, with_invoice: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": payment.id,
        "amount": money.to_number(payment.amount_minor, payment.currency),
        "currency": payment.currency,
        "status": payment.status,
        "provider": payment.provider,
    }
    if with_invoice:
        out["invoiceId"] = payment.invoice_id
    out["invoiceNumber"] = invoice_number
    out["createdAt"] = to_wire(payment.created_at)
    return out


def _customer_summary(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "externalId": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "currency": customer.currency,
        "country": customer.country,
    }


def _subscription_summary(sub: Subscription, plan: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": sub.id,
        "status": sub.status,
        "plan": plan,
        "currency": sub.currency,
        "currentPeriodStart": to_wire(sub.current_period_start),
        "currentPeriodEnd": to_wire(sub.current_period_end),
        "trialStart": _ts(sub.trial_start),
        "trialEnd": _ts(sub.trial_end),
        "cancelAt": _ts(sub.cancel_at),
        "createdAt": to_wire(sub.created_at),
    }


# --- queries ------------------------------------------------------------------------------


async def _subscriptions(
    session: AsyncSession, customer_id: str, statuses: tuple[str, ...] | None = None
) -> tuple[list[Subscription], dict[str, Plan], dict[str, list[Any]]]:
    stmt = select(Subscription).where(Subscription.customer_id == customer_id)
    if statuses is not None:
        stmt = stmt.where(Subscription.status.in_(statuses))
    subs = list(await session.scalars(stmt.order_by(*newest_first(Subscription))))
    plan_ids = list({s.plan_id for s in subs})
    plans = {p.id: p for p in await session.scalars(select(Plan).where(Plan.id.in_(plan_ids)))}
    prices = await plans_service.prices_of(session, plan_ids) if plan_ids else {}
    return subs, plans, prices


def _payments_of(customer_id: str) -> Select[Payment, str]:
    return (
        select(Payment, Invoice.invoice_number)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Invoice.customer_id == customer_id)
    )


async def billing(session: AsyncSession, customer: Customer) -> dict[str, Any]:
    """GET …/billing: the customer, live subscriptions, 20 newest invoices and payments,
    and a summary. ``pendingInvoices`` counts every PENDING invoice (the original counted
    only those among the 20 listed; portal.md Improve)."""
    subs, plans, prices = await _subscriptions(session, customer.id, LISTED_STATUSES)
    invoices = list(
        await session.scalars(
            select(Invoice)
            .where(Invoice.customer_id == customer.id)
            .order_by(*newest_first(Invoice))
            .limit(RECENT)
        )
    )
    payments = (
        await session.execute(
            _payments_of(customer.id).order_by(*newest_first(Payment)).limit(RECENT)
        )
    ).all()
    pending = await session.scalar(
        select(func.count())
        .select_from(Invoice)
        .where(Invoice.customer_id == customer.id, Invoice.status == PENDING)
    )
    spent = (await invoices_service.paid_totals_by_customer(session, [customer.id])).get(
        customer.id, Decimal(0)
    )
    return {
        "customer": _customer_summary(customer),
        "subscriptions": [
            _subscription_summary(
                s,
                {
                    "id": plans[s.plan_id].id,
                    "name": plans[s.plan_id].name,
                    "billingInterval": plans[s.plan_id].billing_interval,
                    "prices": [price_out(p) for p in prices.get(s.plan_id, [])],
                },
            )
            for s in subs
        ],
        "invoices": [invoice_projection(i) for i in invoices],
        "payments": [payment_projection(p, n, with_invoice=False) for p, n in payments],
        "summary": {
            "activeSubscriptions": sum(1 for s in subs if s.status == Status.ACTIVE.value),
            "totalSpent": int(spent) if spent == spent.to_integral_value() else float(spent),
            "currency": customer.currency,
            "pendingInvoices": int(pending or 0),
        },
    }


async def subscriptions(session: AsyncSession, customer: Customer) -> list[dict[str, Any]]:
    """GET …/subscriptions: every subscription, newest first, with its plan and prices."""
    subs, plans, prices = await _subscriptions(session, customer.id)
    return [with_plan(s, plans[s.plan_id], prices.get(s.plan_id, [])) for s in subs]


def invoice_status(value: str | None) -> str | None:
    """The ``status`` filter: one of the invoice statuses (the original's 500 -> 400)."""
    if value is None or value == "":
        return None
    if value not in STATUSES:
        raise Invalid("status", f"must be one of {', '.join(STATUSES)}")
    return value


async def invoices(
    session: AsyncSession, customer: Customer, *, status: str | None, page: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    stmt = select(Invoice).where(Invoice.customer_id == customer.id)
    if status is not None:
        stmt = stmt.where(Invoice.status == status)
    rows, total = await paginate(session, stmt, page, limit)
    return [invoice_projection(i) for i in rows], total


async def payments(
    session: AsyncSession, customer: Customer, *, page: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    rows, total = await paginate(
        session, cast(Select[Any], _payments_of(customer.id)), page, limit, *newest_first(Payment)
    )
    return [payment_projection(p, n, with_invoice=True) for p, n in rows], total


# --- checkout -----------------------------------------------------------------------------


async def checkout(
    maker: Maker,
    *,
    principal: Principal,
    external_id: str,
    invoice_id: str,
    callback_url: str | None,
    factory: ProviderFactory,
    clock: Clock,
) -> dict[str, Any]:
    """POST …/invoices/{invoiceId}/checkout: the portal's checks in the contract's order
    (customer, the customer's invoice, paid, voided), then the invoices checkout (which
    answers ``No active payment provider configured`` when there is none)."""
    async with maker() as session:
        customer = await portal_customer(session, principal, external_id)
        invoice = await session.get(Invoice, invoice_id)
        if invoice is None or invoice.customer_id != customer.id:
            raise NotFound("Invoice not found")
        if invoice.status == PAID:
            raise BusinessRule("Invoice is already paid")
        if invoice.status == CANCELED:
            raise BusinessRule("Invoice has been voided")
        number, amount_minor, currency = (
            invoice.invoice_number,
            invoice.total_minor,
            invoice.currency,
        )
    payment = await charge.checkout(
        maker,
        tenant_id=principal.tenant_id,
        invoice_id=invoice_id,
        callback_url=callback_url,
        factory=factory,
        clock=clock,
    )
    return {
        "checkoutUrl": payment.checkout_url,
        "paymentId": payment.id,
        "provider": payment.provider,
        "invoiceNumber": number,
        "amount": money.to_number(amount_minor, currency),
        "currency": currency,
    }
