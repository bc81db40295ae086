"""Tenant tables of usage-based billing (contract billable-metrics.md, events.md,
charges.md, plan-overrides.md).

- ``billable_metrics`` (+ ``billable_metric_filters``): what is counted and how.
- ``usage_events``: the metered usage; ``transaction_id`` is unique in the tenant (one
  database per tenant), so idempotency is a constraint (``ON CONFLICT DO NOTHING``); the
  index on (subscription, code, timestamp) serves every aggregation. ``properties`` is
  ``jsonb`` on PostgreSQL (extracted per event by the aggregations).
- ``charges`` (+ ``charge_ranges``, ``charge_filters``): a metric priced on a plan. Range
  amounts are exact decimals (a per-unit price may have more decimals than the currency);
  ``min_amount_cents`` is minor units of the subscription's currency.
- ``plan_overrides``: one customer's prices, minimum commitment and charge settings on one
  plan, JSON stored as validated (``overridden_minimum_commitment_e4`` scaled by 10**4
  like the plan's own ``minimum_commitment_e4``).

No domain imports: foreign keys name the tables by string.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import ExactDecimal, JSONType, TenantBase, id_column

__all__ = [
    "AGGREGATIONS",
    "CHARGE_MODELS",
    "FIELD_REQUIRED",
    "IN_ADVANCE",
    "IN_ARREARS",
    "BillableMetric",
    "Charge",
    "ChargeFilter",
    "ChargeRange",
    "MetricFilter",
    "PlanOverride",
    "UsageEvent",
]

AGGREGATIONS = ("COUNT", "UNIQUE_COUNT", "SUM", "MAX", "LATEST", "WEIGHTED_SUM")
# Aggregations that read ``properties[fieldName]`` (UNIQUE_COUNT: contract "Improve").
FIELD_REQUIRED = frozenset({"UNIQUE_COUNT", "SUM", "MAX", "LATEST", "WEIGHTED_SUM"})
CHARGE_MODELS = ("STANDARD", "GRADUATED", "VOLUME", "PACKAGE", "PERCENTAGE")
IN_ARREARS = "IN_ARREARS"
IN_ADVANCE = "IN_ADVANCE"

EventProperties = JSON().with_variant(JSONB(), "postgresql")


class BillableMetric(TenantBase):
    __tablename__ = "billable_metrics"
    __table_args__ = (Index("ix_billable_metrics_created_at_id", "created_at", "id"),)

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(String(500), default=None)
    aggregation_type: Mapped[str] = mapped_column(String(16))
    field_name: Mapped[str | None] = mapped_column(String(100), default=None)
    recurring: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class MetricFilter(TenantBase):
    """Allowed values of one event property (``key``) for the metric."""

    __tablename__ = "billable_metric_filters"
    __table_args__ = (UniqueConstraint("billable_metric_id", "key"),)

    id: Mapped[str] = id_column()
    billable_metric_id: Mapped[str] = mapped_column(
        ForeignKey("billable_metrics.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(100))
    values: Mapped[list[str]] = mapped_column(JSONType)
    position: Mapped[int] = mapped_column(Integer)


class UsageEvent(TenantBase):
    __tablename__ = "usage_events"
    __table_args__ = (
        Index(
            "ix_usage_events_subscription_id_code_timestamp",
            "subscription_id",
            "code",
            "timestamp",
        ),
    )

    id: Mapped[str] = id_column()
    transaction_id: Mapped[str] = mapped_column(String(255), unique=True)
    subscription_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    code: Mapped[str] = mapped_column(String(100))
    timestamp: Mapped[datetime] = mapped_column()
    properties: Mapped[dict[str, Any]] = mapped_column(EventProperties)
    created_at: Mapped[datetime] = mapped_column()


class Charge(TenantBase):
    __tablename__ = "charges"
    __table_args__ = (
        UniqueConstraint("plan_id", "billable_metric_id"),
        Index("ix_charges_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = id_column()
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    # RESTRICT: a metric a charge uses cannot be deleted (billable-metrics.md).
    billable_metric_id: Mapped[str] = mapped_column(ForeignKey("billable_metrics.id"), index=True)
    charge_model: Mapped[str] = mapped_column(String(16))
    billing_timing: Mapped[str] = mapped_column(String(16), default=IN_ARREARS)
    invoice_display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    min_amount_cents: Mapped[int | None] = mapped_column(BigInteger, default=None)
    prorated: Mapped[bool] = mapped_column(Boolean, default=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class ChargeRange(TenantBase):
    """One graduated/volume range; ``position`` is the wire's ``order``."""

    __tablename__ = "charge_ranges"
    __table_args__ = (UniqueConstraint("charge_id", "position"),)

    id: Mapped[str] = id_column()
    charge_id: Mapped[str] = mapped_column(ForeignKey("charges.id", ondelete="CASCADE"))
    from_value: Mapped[int] = mapped_column(BigInteger)
    to_value: Mapped[int | None] = mapped_column(BigInteger, default=None)
    per_unit_amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    flat_amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    position: Mapped[int] = mapped_column(Integer)


class ChargeFilter(TenantBase):
    """A bucket of the charge's events (``properties[key]`` in ``values``), priced with
    ``properties`` laid over the charge's."""

    __tablename__ = "charge_filters"
    __table_args__ = (UniqueConstraint("charge_id", "key"),)

    id: Mapped[str] = id_column()
    charge_id: Mapped[str] = mapped_column(ForeignKey("charges.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    values: Mapped[list[str]] = mapped_column(JSONType)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType)
    position: Mapped[int] = mapped_column(Integer)


class PlanOverride(TenantBase):
    __tablename__ = "plan_overrides"
    __table_args__ = (
        UniqueConstraint("customer_id", "plan_id"),
        Index("ix_plan_overrides_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    overridden_prices: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    overridden_minimum_commitment_e4: Mapped[int | None] = mapped_column(BigInteger)
    overridden_charges: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
