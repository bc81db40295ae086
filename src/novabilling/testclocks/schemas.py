"""Wire shapes of /api/test-clocks (additive; not in the original contract)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from novabilling.kit.pagination import PageMeta
from novabilling.kit.timestamps import InstantInput, to_wire
from novabilling.kit.wire import WireModel
from novabilling.testclocks.models import TestClockRow

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class TestClockCreate(WireModel):
    __test__ = False

    frozen_time: InstantInput = Field(description="The clock's starting time (ISO 8601)")
    name: Name | None = None


class AdvanceIn(WireModel):
    frozen_time: InstantInput = Field(
        description="The new time: after the clock's current time, at most 2 years later"
    )


class TestClockOut(BaseModel):
    """Test clock object (documentation of the answers; the routes build dicts)."""

    __test__ = False

    id: str
    name: str | None
    frozenTime: str = Field(description="The clock's current time")  # noqa: N815 - wire names
    status: str = Field(description="ready, or advancing while an advance runs")
    customers: int = Field(description="Customers attached to the clock")
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815


class TestClockPage(BaseModel):
    __test__ = False

    data: list[TestClockOut]
    meta: PageMeta


class AdvanceRun(BaseModel):
    """What the advance did, summed over its billing ticks."""

    ticks: int = Field(description="Billing ticks run (one per instant where work fell due)")
    invoiced: int = Field(description="Invoices issued (first invoices and renewals)")
    renewals: dict[str, int] = Field(description="Renewal outcomes by kind")
    finalized: int = Field(description="Draft invoices finalized after their grace period")
    retries: int = Field(description="Dunning retries queued")
    reminders: int = Field(description="Trial-ending reminders queued")


class AdvanceOut(TestClockOut):
    run: AdvanceRun


class DeletedOut(BaseModel):
    message: str
    customersDeleted: int  # noqa: N815


def clock_out(clock: TestClockRow, *, customers: int) -> dict[str, Any]:
    return {
        "id": clock.id,
        "name": clock.name,
        "frozenTime": to_wire(clock.frozen_time),
        "status": clock.status,
        "customers": customers,
        "createdAt": to_wire(clock.created_at),
        "updatedAt": to_wire(clock.updated_at),
    }
