"""Answer bodies of /api/analytics (contract analytics.md), for the OpenAPI document: the
reports are dicts built by ``analytics.service``. Figures in USD over the tenant's rates;
``byCurrency`` (with ``byCurrency=true``) has each currency's own figures."""

from __future__ import annotations

from pydantic import Field

from novabilling.kit.wire import WireOut

Number = float
Text = str


class RevenueByCurrency(WireOut):
    currency: str
    total_revenue: Text
    invoice_count: int
    mrr: Text
    arr: Text
    usd_rate: Text


class RevenueOut(WireOut):
    total_revenue: Text = Field(examples=["1250.00"])
    invoice_count: int
    mrr: Text
    arr: Text
    by_currency: list[RevenueByCurrency] | None = None


class CustomersByCurrency(WireOut):
    currency: str
    total_revenue: Text
    arpu: Text
    usd_rate: Text


class CustomersOut(WireOut):
    total_customers: int
    new_customers: int
    arpu: Text
    total_revenue: Text
    by_currency: list[CustomersByCurrency] | None = None


class SubscriptionsOut(WireOut):
    total: int
    active: int
    canceled: int
    trialing: int
    paused: int
    new_subscriptions: int
    churn_rate: Text = Field(examples=["2.50%"])
    retention_rate: Text = Field(examples=["97.50%"])


class PaymentsOut(WireOut):
    total_payments: int
    succeeded: int
    failed: int
    pending: int
    success_rate: Text = Field(examples=["95.00%"])


class PlanMrr(WireOut):
    plan_id: str
    plan_name: str
    mrr: Number
    subscription_count: int


class MrrByCurrency(WireOut):
    currency: str
    total_mrr: Number
    new_mrr: Number
    expansion_mrr: Number
    contraction_mrr: Number
    churn_mrr: Number
    net_new_mrr: Number
    usd_rate: Text


class MrrBreakdownOut(WireOut):
    total_mrr: Number
    new_mrr: Number
    expansion_mrr: Number
    contraction_mrr: Number
    churn_mrr: Number
    net_new_mrr: Number
    by_plan: list[PlanMrr]
    by_currency: list[MrrByCurrency] | None = None


class NetRevenueByCurrency(WireOut):
    currency: str
    gross_revenue: Number
    refunds: Number
    credit_notes: Number
    net_revenue: Number
    usd_rate: Text


class NetRevenueOut(WireOut):
    gross_revenue: Number
    refunds: Number
    credit_notes: Number
    net_revenue: Number
    by_currency: list[NetRevenueByCurrency] | None = None


class Cohort(WireOut):
    month: str = Field(examples=["2026-01"])
    total_customers: int
    retention_percentages: list[Number]


class ChurnCohortsOut(WireOut):
    months: list[str]
    cohorts: list[Cohort]


class PlanLtv(WireOut):
    plan_id: str
    plan_name: str
    avg_ltv: Number
    avg_lifespan_days: int


class LtvByCurrency(WireOut):
    currency: str
    subscriptions: int
    total_paid: Number
    avg_ltv: Number
    usd_rate: Text


class LtvOut(WireOut):
    avg_ltv: Number
    avg_lifespan_days: int
    by_plan: list[PlanLtv]
    by_currency: list[LtvByCurrency] | None = None
