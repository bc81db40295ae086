"""Every router of the API, in one list (app.py mounts them behind the rate limiter)."""

from __future__ import annotations

from fastapi import APIRouter

from novabilling.api.add_ons import router as add_ons_router
from novabilling.api.analytics import router as analytics_router
from novabilling.api.auth import router as auth_router
from novabilling.api.billable_metrics import router as billable_metrics_router
from novabilling.api.charges import router as charges_router
from novabilling.api.checkout_return import router as checkout_return_router
from novabilling.api.coupons import router as coupons_router
from novabilling.api.credit_notes import router as credit_notes_router
from novabilling.api.currencies import router as currencies_router
from novabilling.api.customers import router as customers_router
from novabilling.api.events import router as events_router
from novabilling.api.invoice_files import router as invoice_files_router
from novabilling.api.invoices import router as invoices_router
from novabilling.api.payment_methods import router as payment_methods_router
from novabilling.api.payment_providers import router as payment_providers_router
from novabilling.api.payments import router as payments_router
from novabilling.api.plan_overrides import router as plan_overrides_router
from novabilling.api.plans import router as plans_router
from novabilling.api.portal import router as portal_router
from novabilling.api.subscription_usage import router as subscription_usage_router
from novabilling.api.subscriptions import router as subscriptions_router
from novabilling.api.taxes import router as taxes_router
from novabilling.api.tenants import router as tenants_router
from novabilling.api.test_clocks import router as test_clocks_router
from novabilling.api.wallets import router as wallets_router
from novabilling.api.webhook_deliveries import router as webhook_deliveries_router
from novabilling.api.webhooks import router as webhooks_router


def api_routers() -> list[APIRouter]:
    return [
        auth_router,
        tenants_router,
        currencies_router,
        plans_router,
        subscriptions_router,
        subscription_usage_router,
        customers_router,
        invoices_router,
        payment_providers_router,
        payments_router,
        analytics_router,
        webhooks_router,
        billable_metrics_router,
        events_router,
        charges_router,
        plan_overrides_router,
        portal_router,
        taxes_router,
        credit_notes_router,
        payment_methods_router,
        wallets_router,
        webhook_deliveries_router,
        coupons_router,
        test_clocks_router,
        add_ons_router,
    ]


def static_routers() -> list[APIRouter]:
    """Static files (contract README §1) and the checkout return page: no auth and, per
    §9, not rate limited."""
    return [invoice_files_router, checkout_return_router]
