"""/api/analytics (contract analytics.md): read-only reports, all 200 with a bare object.

Thin: the strict query check, one call into ``analytics.service``. Read sessions
(autocommit): every report is a handful of aggregate statements. USD rates are the
tenant's (``settings.fxRates`` over the original's table, ``kit.fx``). Every route also
takes ``byCurrency=true`` for the per-currency figures (see ``analytics.service``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from novabilling.analytics import params, schemas, service
from novabilling.kit.fx import rates_from_settings
from novabilling.web.deps import RuntimeDep, TenantProfileDep, TenantReadSession
from novabilling.web.openapi import returns

router = APIRouter(prefix="/api/analytics", tags=["analytics"])


@router.get("/revenue", summary="Revenue, MRR and ARR (USD)", responses=returns(schemas.RevenueOut))
async def revenue(
    session: TenantReadSession, tenant: TenantProfileDep, request: Request
) -> dict[str, Any]:
    query = params.parse_query(request.query_params)
    return await service.revenue(session, query=query, rates=rates_from_settings(tenant.settings))


@router.get(
    "/subscriptions",
    summary="Subscription counts, churn and retention",
    responses=returns(schemas.SubscriptionsOut),
)
async def subscriptions(session: TenantReadSession, request: Request) -> dict[str, Any]:
    return await service.subscriptions(session, query=params.parse_query(request.query_params))


@router.get(
    "/customers",
    summary="Customer counts and revenue per customer (USD)",
    responses=returns(schemas.CustomersOut),
)
async def customers(
    session: TenantReadSession, tenant: TenantProfileDep, request: Request
) -> dict[str, Any]:
    query = params.parse_query(request.query_params)
    rates = rates_from_settings(tenant.settings)
    return await service.customers(session, query=query, rates=rates)


@router.get(
    "/payments", summary="Payment counts and success rate", responses=returns(schemas.PaymentsOut)
)
async def payments(session: TenantReadSession, request: Request) -> dict[str, Any]:
    query = params.parse_query(request.query_params, extra=("provider",))
    return await service.payments(session, query=query)


@router.get(
    "/mrr-breakdown",
    summary="This month's MRR movements and MRR per plan (USD)",
    responses=returns(schemas.MrrBreakdownOut),
)
async def mrr_breakdown(
    session: TenantReadSession, tenant: TenantProfileDep, runtime: RuntimeDep, request: Request
) -> dict[str, Any]:
    query = params.parse_query(request.query_params)
    rates = rates_from_settings(tenant.settings)
    return await service.mrr_breakdown(session, query=query, rates=rates, now=runtime.clock.now())


@router.get(
    "/net-revenue",
    summary="Gross revenue less refunds and credit notes (USD)",
    responses=returns(schemas.NetRevenueOut),
)
async def net_revenue(
    session: TenantReadSession, tenant: TenantProfileDep, request: Request
) -> dict[str, Any]:
    query = params.parse_query(request.query_params)
    rates = rates_from_settings(tenant.settings)
    return await service.net_revenue(session, query=query, rates=rates)


@router.get(
    "/churn-cohorts",
    summary="Monthly retention cohorts",
    responses=returns(schemas.ChurnCohortsOut),
)
async def churn_cohorts(
    session: TenantReadSession, runtime: RuntimeDep, request: Request
) -> dict[str, Any]:
    months = params.cohort_months(request.query_params.get("months"))
    return await service.churn_cohorts(session, months=months, now=runtime.clock.now())


@router.get(
    "/ltv",
    summary="Average lifetime value and lifespan, overall and per plan (USD)",
    responses=returns(schemas.LtvOut),
)
async def ltv(
    session: TenantReadSession, tenant: TenantProfileDep, runtime: RuntimeDep, request: Request
) -> dict[str, Any]:
    return await service.ltv(
        session,
        rates=rates_from_settings(tenant.settings),
        now=runtime.clock.now(),
        by_currency=params.wants_by_currency(request.query_params),
    )
