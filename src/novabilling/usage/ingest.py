"""Usage event intake (contract events.md): the hottest write path of usage billing.

``ingest(runtime, tenant_id, events)`` checks each event against its subscription and
metric and stores the good ones; every element gets its own outcome (``created``,
``duplicate`` or ``error`` with a reason), never all-or-nothing:

1. ``transactionId`` already stored (or earlier in the same batch): ``duplicate`` - a
   stored event is returned unchanged and nothing else is checked (an element repeating an
   earlier one of the same batch is an ``error``: a client bug, not a retry);
2. the subscription, by ``id`` then by ``externalId``: unknown -> 404, CANCELED -> 400;
3. the metric ``code``: unknown -> 404;
4. ``timestamp`` (default now) within the subscription's life: not before it started, not
   more than ``FUTURE_SKEW`` ahead of the server clock -> else 400;
5. for SUM, MAX, LATEST and WEIGHTED_SUM, ``properties[fieldName]``, when present, is a
   number or a numeric string (400 otherwise: we reject it rather than count it as 0;
   an absent property counts as 0, as the contract's aggregation says).

Subscriptions and metrics are looked up once per request (metrics cached per process for
``CACHE_SECONDS``; only hits are cached, so a new metric is seen at once; subscriptions
never, so a cancellation counts at once: on PostgreSQL one fixed SQL string on the driver
connection, elsewhere a statement built once per process, outside any transaction).
Rows are written by a per-tenant ``EventWriter``: concurrent requests share one multi-row
``INSERT .. ON CONFLICT (transaction_id) DO NOTHING RETURNING id`` in autocommit (the
statement is its own transaction; no ORM, no session), so idempotency is the unique key's
and a race between two equal transaction ids has one winner. After the insert, ACTIVE
subscriptions whose plan bills usage early (an IN_ADVANCE charge or a progressive-billing
threshold) get one debounced ``usage.check`` job (one per subscription per minute, run at
the minute's end); if that job is lost, the period invoice still bills everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import BindParameter, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from novabilling.kit.ids import new_id
from novabilling.kit.jobs import QUEUE_BILLING, enqueue_many
from novabilling.kit.timestamps import to_wire
from novabilling.kit.ttlcache import TTLCache
from novabilling.plans.models import Plan
from novabilling.subscriptions.models import Subscription
from novabilling.usage.event_schemas import EventIn, event_out
from novabilling.usage.models import IN_ADVANCE, BillableMetric, Charge, UsageEvent
from novabilling.usage.writer import EventRow, event_writer

if TYPE_CHECKING:
    from novabilling.runtime import Runtime

__all__ = ["CHECK_JOB", "FUTURE_SKEW", "Outcome", "Result", "batch_body", "ingest"]

log = structlog.get_logger(__name__)

CHECK_JOB = "usage.check"  # {tenant_id, subscription_id}: billing.progressive
FUTURE_SKEW = timedelta(minutes=5)
CACHE_SECONDS = 5.0
NUMERIC_FIELD = frozenset({"SUM", "MAX", "LATEST", "WEIGHTED_SUM"})
_NUMERIC_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_EXTRAS_KEY = "usage.directory"


@dataclass(frozen=True, slots=True)
class Target:
    """A subscription as the intake sees it."""

    id: str
    status: str
    started_at: datetime
    needs_check: bool


@dataclass(frozen=True, slots=True)
class Meter:
    aggregation: str
    field_name: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One element's result. ``status`` 404/400 says how the single-event route answers
    an error (``field`` names the wire field for a 400, None for a business rule)."""

    transaction_id: str
    result: str  # created | duplicate | error
    event: dict[str, Any] | None = None
    error: str | None = None
    status: int = 201
    field: str | None = None

    def item(self) -> dict[str, Any]:
        """The batch response's ``results`` element."""
        out: dict[str, Any] = {"transactionId": self.transaction_id, "status": self.result}
        if self.error is not None:
            out["error"] = self.error
        return out


Result = Outcome | EventRow
"""One element's result: the stored row when it was created now, else an ``Outcome``."""


def batch_body(results: list[Result]) -> dict[str, Any]:
    """The batch answer: ``{total, created, duplicates, errors, results}``."""
    items: list[dict[str, Any]] = []
    created = duplicates = 0
    for result in results:
        if type(result) is EventRow:
            items.append({"transactionId": result.transaction_id, "status": "created"})
            created += 1
        else:
            assert isinstance(result, Outcome)
            items.append(result.item())
            duplicates += result.result == "duplicate"
    return {
        "total": len(items),
        "created": created,
        "duplicates": duplicates,
        "errors": len(items) - created - duplicates,
        "results": items,
    }


class Directory:
    """Looks up subscriptions and metrics; metrics are cached per process, by (tenant,
    code), for ``CACHE_SECONDS``."""

    def __init__(self) -> None:
        self.meters: TTLCache[tuple[str, str], Meter] = TTLCache(CACHE_SECONDS)

    async def find_targets(self, engine: AsyncEngine, refs: Iterable[str]) -> dict[str, Target]:
        """Never cached: a subscription canceled a moment ago must refuse events."""
        wanted = sorted(set(refs))
        return await _load_targets(engine, wanted) if wanted else {}

    async def find_meters(
        self, engine: AsyncEngine, tenant_id: str, codes: Iterable[str]
    ) -> dict[str, Meter]:
        wanted = set(codes)
        found = {c: m for c in wanted if (m := self.meters.get((tenant_id, c))) is not None}
        missing = [c for c in wanted if c not in found]
        if missing:
            stmt = select(
                BillableMetric.code, BillableMetric.aggregation_type, BillableMetric.field_name
            ).where(BillableMetric.code.in_(missing))
            async with engine.connect() as conn:
                for code, aggregation, field_name in await conn.execute(stmt):
                    meter = Meter(aggregation, field_name)
                    self.meters.put((tenant_id, code), meter)
                    found[code] = meter
        return found


def _targets_statement() -> Any:
    """By id or externalId (``refs``, an expanding list), with whether the plan bills usage
    early; built once: per request only the list changes."""
    refs: BindParameter[str] = bindparam("refs", expanding=True)
    early = exists().where(Charge.plan_id == Plan.id, Charge.billing_timing == IN_ADVANCE)
    threshold = func.coalesce(Plan.progressive_billing_threshold_e4, 0) > 0
    return (
        select(
            Subscription.id,
            Subscription.external_id,
            Subscription.status,
            Subscription.started_at,
            or_(threshold, early),
        )
        .join(Plan, Plan.id == Subscription.plan_id)
        .where(or_(Subscription.id.in_(refs), Subscription.external_id.in_(refs)))
    )


_TARGETS = _targets_statement()


# PostgreSQL: the same query as plain SQL on the driver connection - no statement
# compilation, expansion or result adaptation per request (one array parameter)
_PG_TARGETS = (
    "SELECT s.id, s.external_id, s.status, s.started_at, "
    "COALESCE(p.progressive_billing_threshold_e4, 0) > 0 OR EXISTS ("
    "SELECT 1 FROM charges c WHERE c.plan_id = p.id AND c.billing_timing = $2) "
    "FROM subscriptions s JOIN plans p ON p.id = s.plan_id "
    "WHERE s.id = ANY($1::varchar[]) OR s.external_id = ANY($1::varchar[])"
)


async def _load_targets(engine: AsyncEngine, refs: list[str]) -> dict[str, Target]:
    """By id first, then by externalId (an id match wins over another's externalId)."""
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            try:  # outside any transaction: nothing begun, nothing to roll back
                rows: Sequence[Any] = await driver.fetch(_PG_TARGETS, refs, IN_ADVANCE)
            except Exception:
                if driver.is_closed():
                    await conn.invalidate()
                raise
        else:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            rows = (await conn.execute(_TARGETS, {"refs": refs})).all()
    by_id: dict[str, Target] = {}
    by_external: dict[str, Target] = {}
    for sub_id, external_id, status, started_at, needs_check in rows:
        target = Target(sub_id, status, started_at.astimezone(UTC), bool(needs_check))
        by_id[sub_id] = target
        if external_id is not None:
            by_external[external_id] = target
    return {r: by_id.get(r) or by_external[r] for r in refs if r in by_id or r in by_external}


def directory(runtime: Runtime) -> Directory:
    found = runtime.extras.get(_EXTRAS_KEY)
    if not isinstance(found, Directory):
        found = Directory()
        runtime.extras[_EXTRAS_KEY] = found
    return found


def _numeric(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and len(value) <= 64 and bool(_NUMERIC_TEXT.fullmatch(value))


def _problem(
    event: EventIn, target: Target | None, meter: Meter | None, now: datetime
) -> Outcome | None:
    """Why ``event`` cannot be stored (steps 2-5 of the module doc), or None."""
    tx = event.transaction_id
    if target is None:
        text = f"Subscription '{event.subscription_id}' not found"
        return Outcome(tx, "error", error=text, status=404)
    if meter is None:
        return Outcome(
            tx, "error", error=f"Billable metric with code '{event.code}' not found", status=404
        )
    if target.status == "CANCELED":
        return Outcome(tx, "error", error=f"Subscription {target.id} is canceled", status=400)
    at = event.timestamp or now
    if at > now + FUTURE_SKEW:
        text = "timestamp must not be in the future"
        return Outcome(tx, "error", error=text, status=400, field="timestamp")
    if at < target.started_at:
        text = f"timestamp is before the subscription started ({to_wire(target.started_at)})"
        return Outcome(tx, "error", error=text, status=400, field="timestamp")
    if meter.aggregation in NUMERIC_FIELD and meter.field_name:
        value = (event.properties or {}).get(meter.field_name)
        if value is not None and not _numeric(value):
            where = f"properties.{meter.field_name}"
            text = f"{where} must be a number or a numeric string"
            return Outcome(tx, "error", error=text, status=400, field=where)
    return None


async def ingest(
    runtime: Runtime, tenant_id: str, events: list[EventIn], *, detail: bool = False
) -> list[Result]:
    """Store ``events`` for ``tenant_id``; one result per element, in order: the stored
    ``EventRow`` when the element was created now, else an ``Outcome`` (a duplicate or an
    error). ``detail``: a duplicate carries the stored event's wire object (single route)."""
    now = runtime.clock.now()
    engine = await runtime.engines.engine(tenant_id)
    known = directory(runtime)
    targets = await known.find_targets(engine, {e.subscription_id for e in events})
    meters = await known.find_meters(engine, tenant_id, {e.code for e in events})
    results: list[Result | None] = []
    rows: list[EventRow] = []
    first: dict[str, int] = {}
    for index, event in enumerate(events):
        tx = event.transaction_id
        if tx in first:
            text = f"transactionId repeats element {first[tx]} of this batch"
            results.append(Outcome(tx, "error", error=text, status=400, field="transactionId"))
            continue
        first[tx] = index
        target = targets.get(event.subscription_id)
        problem = _problem(event, target, meters.get(event.code), now)
        if problem is None and target is not None:
            row = EventRow(
                new_id(),
                tx,
                target.id,
                event.code,
                event.timestamp or now,
                event.properties or {},
                now,
            )
            rows.append(row)
            results.append(row)
        else:
            results.append(problem)
    stored = await event_writer(runtime, tenant_id).write(rows) if rows else set()
    if len(stored) < len(rows) or len(rows) < len(events):
        await _resolve_duplicates(engine, results, stored, detail=detail)
    created = [row for row in rows if row.id in stored]
    await _queue_checks(runtime, tenant_id, created, targets, now)
    return [r for r in results if r is not None]


async def _resolve_duplicates(
    engine: AsyncEngine, results: list[Result | None], stored: set[str], *, detail: bool
) -> None:
    """An element whose transactionId is already stored is a duplicate of that event,
    whatever else was wrong with it (the contract checks that first); a row not stored lost
    to an equal transactionId stored meanwhile. Elements repeating an earlier element of
    the batch stay errors (a client bug, not a retry)."""
    maybe = [
        r.transaction_id
        for r in results
        if (type(r) is EventRow and r.id not in stored)
        or (isinstance(r, Outcome) and r.field != "transactionId")
    ]
    previous = await _stored(engine, maybe, detail=detail) if maybe else {}
    for index, result in enumerate(results):
        if type(result) is EventRow:
            if result.id not in stored:  # lost to a concurrent equal transactionId
                tx = result.transaction_id
                results[index] = Outcome(tx, "duplicate", event=previous.get(tx))
        elif (
            isinstance(result, Outcome)
            and result.field != "transactionId"
            and result.transaction_id in previous
        ):
            tx = result.transaction_id
            results[index] = Outcome(tx, "duplicate", event=previous[tx])


async def _stored(
    engine: AsyncEngine, transaction_ids: list[str], *, detail: bool
) -> dict[str, dict[str, Any] | None]:
    """The transaction ids among these already stored; ``detail``: with their events as
    wire objects."""
    table = UsageEvent.__table__
    stmt = select(*(table.c if detail else [table.c.transaction_id])).where(
        table.c.transaction_id.in_(sorted(set(transaction_ids)))
    )
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        rows = (await conn.execute(stmt)).mappings().all()
    if not detail:
        return {r["transaction_id"]: None for r in rows}
    return {r["transaction_id"]: event_out(**dict(r)) for r in rows}


async def _queue_checks(
    runtime: Runtime,
    tenant_id: str,
    created: list[EventRow],
    targets: dict[str, Target],
    now: datetime,
) -> None:
    """One debounced ``usage.check`` per subscription and minute, run at the minute's end."""
    wanted = {t.id for t in targets.values() if t.needs_check and t.status == "ACTIVE"}
    subs = sorted({row.subscription_id for row in created} & wanted)
    if not subs or runtime.jobs is None:
        return
    minute = int(now.timestamp()) // 60
    delay = 60 - now.timestamp() % 60 + 1
    jobs = [
        {
            "name": CHECK_JOB,
            "data": {"tenant_id": tenant_id, "subscription_id": sub_id},
            "job_id": f"{tenant_id}:usage-check:{sub_id}:{minute}",
            "delay_seconds": delay,
        }
        for sub_id in subs
    ]
    try:
        await enqueue_many(runtime.jobs, QUEUE_BILLING, jobs)
    except Exception as exc:  # noqa: BLE001 - the period invoice still bills the usage
        log.warning("usage.check_enqueue_failed", subscriptions=len(subs), error=repr(exc))
