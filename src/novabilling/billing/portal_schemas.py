"""Answer bodies of the customer portal (contract portal.md), for the OpenAPI document:
the routes return the dicts ``billing.portal`` builds."""

from __future__ import annotations

from pydantic import Field

from novabilling.kit.wire import Timestamp, WireOut
from novabilling.plans.schemas import PriceOut

Number = float


class PortalTokenOut(WireOut):
    token: str
    expires_at: Timestamp
    customer_id: str
    external_id: str


class PortalCustomerOut(WireOut):
    id: str
    external_id: str
    name: str | None
    email: str
    currency: str
    country: str | None


class PortalPlanOut(WireOut):
    id: str
    name: str
    billing_interval: str
    prices: list[PriceOut]


class PortalSubscriptionOut(WireOut):
    id: str
    status: str
    plan: PortalPlanOut
    currency: str
    current_period_start: Timestamp
    current_period_end: Timestamp
    trial_start: Timestamp | None
    trial_end: Timestamp | None
    cancel_at: Timestamp | None
    created_at: Timestamp


class PortalInvoiceOut(WireOut):
    id: str
    invoice_number: str | None
    amount: Number
    currency: str
    status: str
    due_date: Timestamp
    paid_at: Timestamp | None
    pdf_url: str | None
    created_at: Timestamp


class PortalPaymentOut(WireOut):
    """``invoiceId`` is given in the payments list, not in the billing overview."""

    id: str
    amount: Number
    currency: str
    status: str
    provider: str
    invoice_id: str | None = None
    invoice_number: str | None
    created_at: Timestamp


class PortalSummaryOut(WireOut):
    active_subscriptions: int
    total_spent: Number
    currency: str
    pending_invoices: int


class PortalBillingOut(WireOut):
    customer: PortalCustomerOut
    subscriptions: list[PortalSubscriptionOut]
    invoices: list[PortalInvoiceOut]
    payments: list[PortalPaymentOut]
    summary: PortalSummaryOut


class PortalCheckoutOut(WireOut):
    checkout_url: str | None
    payment_id: str
    provider: str
    invoice_number: str | None
    amount: Number
    currency: str


class PortalTokenIn(WireOut):
    """Body of the portal token routes (optional; documentation model)."""

    expires_in_minutes: int | None = Field(default=None, ge=1, le=1440)


class PortalCheckoutIn(WireOut):
    """Body of the portal checkout (optional; documentation model)."""

    callback_url: str | None = None
