"""/api/test-clocks: frozen time for the customers attached to a clock (additive; README
"Test clocks"). Data routes: an API key or an access token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from novabilling.billing import test_clocks as billing
from novabilling.kit.pagination import PageParams
from novabilling.testclocks import schemas
from novabilling.web.deps import DataPrincipal, RuntimeDep, TenantReadSession, TenantSession
from novabilling.web.paging import strict_page

router = APIRouter(prefix="/api/test-clocks", tags=["test-clocks"])

ClockPage = Annotated[PageParams, Depends(strict_page())]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such test clock (in this tenant)"}
}


@router.post(
    "",
    status_code=201,
    response_model=schemas.TestClockOut,
    summary="Create a test clock frozen at frozenTime",
)
async def create_clock(
    session: TenantSession, body: schemas.TestClockCreate, runtime: RuntimeDep
) -> dict[str, Any]:
    """Customers created with its id as ``testClockId`` live on it (their subscriptions
    too): their time is the clock's, and only an advance of the clock bills them."""
    return await billing.create(session, body=body, clock=runtime.clock)


@router.get("", response_model=schemas.TestClockPage, summary="List test clocks, newest first")
async def list_clocks(session: TenantReadSession, params: ClockPage) -> dict[str, Any]:
    return await billing.page(session, page=params.page, limit=params.limit)


@router.get(
    "/{clock_id}",
    response_model=schemas.TestClockOut,
    summary="Get a test clock",
    responses=_NOT_FOUND,
)
async def get_clock(session: TenantReadSession, clock_id: str) -> dict[str, Any]:
    return await billing.get(session, clock_id)


@router.delete(
    "/{clock_id}",
    response_model=schemas.DeletedOut,
    summary="Delete a test clock and every customer attached to it",
    responses=_NOT_FOUND,
)
async def delete_clock(
    session: TenantSession, clock_id: str, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    """Its customers go with their subscriptions, invoices and payments (ACTIVE
    subscriptions included), as ``DELETE /api/customers/{id}`` deletes them."""
    count = await billing.delete_clock(
        session,
        clock_id,
        tenant_id=principal.tenant_id,
        clock=runtime.clock,
        data_dir=runtime.settings.data_dir,
    )
    return {"message": "Test clock deleted successfully", "customersDeleted": count}


@router.post(
    "/{clock_id}/advance",
    response_model=schemas.AdvanceOut,
    summary="Move a test clock forward, billing its customers up to the new time",
    responses={**_NOT_FOUND, 409: {"description": "The clock is already advancing"}},
)
async def advance_clock(
    clock_id: str, body: schemas.AdvanceIn, principal: DataPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    """Runs every renewal, trial end and reminder, grace-period finalization, dunning
    retry and provider check of the clock's customers that falls due up to
    ``frozenTime``, in order, with the scheduler's own billing tick (at most 1,000 ticks;
    closer instants share one). ``frozenTime`` must be after the clock's time and at most
    2 years later (400). Answers when done, with what the ticks did (``run``)."""
    return await billing.advance(
        runtime, tenant_id=principal.tenant_id, clock_id=clock_id, target=body.frozen_time
    )
