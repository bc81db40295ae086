"""Wire shapes of /api/billable-metrics (contract billable-metrics.md).

Property keys (``fieldName``, filter ``key``) are 1-100 characters without ``"``, ``\\``
or control characters: they become JSON paths in the aggregation queries.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from novabilling.kit.timestamps import to_wire
from novabilling.kit.wire import Timestamp, WireModel, WireOut
from novabilling.usage.models import BillableMetric, MetricFilter

Aggregation = Literal["COUNT", "UNIQUE_COUNT", "SUM", "MAX", "LATEST", "WEIGHTED_SUM"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")]
Description = Annotated[str, StringConstraints(max_length=500)]
PropertyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r'^[^"\\\x00-\x1f]+$')
]
FilterValue = Annotated[str, StringConstraints(max_length=255)]
FilterValues = Annotated[list[FilterValue], Field(max_length=1000)]


class FilterIn(WireModel):
    key: PropertyKey
    values: FilterValues


Filters = Annotated[list[FilterIn], Field(max_length=50)]


class MetricCreate(WireModel):
    name: Name
    code: Code
    description: Description | None = None
    aggregation_type: Aggregation
    field_name: PropertyKey | None = None
    recurring: bool = False
    filters: Filters = []


class MetricPatch(WireModel):
    """``code`` and ``aggregationType`` are immutable: sending them is an unknown key."""

    name: Name | None = None
    description: Description | None = None
    field_name: PropertyKey | None = None
    recurring: bool | None = None
    filters: Filters | None = None

    def explicit_nulls(self) -> list[str]:
        """Wire names of fields sent as null that may not be null."""
        return [
            type(self).model_fields[n].alias or n
            for n in ("name", "recurring", "filters")
            if n in self.model_fields_set and getattr(self, n) is None
        ]


def filter_out(item: MetricFilter) -> dict[str, Any]:
    return {
        "id": item.id,
        "billableMetricId": item.billable_metric_id,
        "key": item.key,
        "values": list(item.values),
    }


def metric_out(metric: BillableMetric, filters: list[MetricFilter] | None) -> dict[str, Any]:
    """Metric object; ``filters`` embedded unless None (the charges' embed has none)."""
    out: dict[str, Any] = {
        "id": metric.id,
        "name": metric.name,
        "code": metric.code,
        "description": metric.description,
        "aggregationType": metric.aggregation_type,
        "fieldName": metric.field_name,
        "recurring": metric.recurring,
        "createdAt": to_wire(metric.created_at),
        "updatedAt": to_wire(metric.updated_at),
    }
    if filters is not None:
        out["filters"] = [filter_out(f) for f in filters]
    return out


class FilterOut(WireOut):
    id: str
    billable_metric_id: str
    key: str
    values: list[str]


class MetricOut(WireOut):
    """A billable metric; ``filters`` left out where a charge embeds it."""

    id: str
    name: str
    code: str
    description: str | None
    aggregation_type: Aggregation
    field_name: str | None
    recurring: bool
    created_at: Timestamp
    updated_at: Timestamp
    filters: list[FilterOut] | None = None


class MetricCount(WireOut):
    charges: int


class MetricListedOut(MetricOut):
    count: MetricCount = Field(alias="_count")
