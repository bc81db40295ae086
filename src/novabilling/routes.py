"""Every router of the API, in one list (app.py mounts them behind the rate limiter)."""

from __future__ import annotations

from fastapi import APIRouter

from novabilling.auth.router import router as auth_router
from novabilling.currencies.router import router as currencies_router
from novabilling.customers.router import router as customers_router
from novabilling.invoices.files_router import router as invoice_files_router
from novabilling.invoices.router import router as invoices_router
from novabilling.payments.providers_router import router as payment_providers_router
from novabilling.payments.router import router as payments_router
from novabilling.plans.router import router as plans_router
from novabilling.subscriptions.router import router as subscriptions_router
from novabilling.tenants.router import router as tenants_router
from novabilling.webhooks.router import router as webhooks_router


def api_routers() -> list[APIRouter]:
    return [
        auth_router,
        tenants_router,
        currencies_router,
        plans_router,
        subscriptions_router,
        customers_router,
        invoices_router,
        payment_providers_router,
        payments_router,
        webhooks_router,
    ]


def static_routers() -> list[APIRouter]:
    """Static files (contract README §1): no auth and, per §9, not rate limited."""
    return [invoice_files_router]
