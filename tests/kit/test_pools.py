"""ConnectionBudget + BudgetPool: one cap over many small pools, idle connections taken
over, waiters served, a clear 503 after the timeout. On SQLite files (any async driver
works the same way); the PostgreSQL proof with real tenants is
tests/tenancy/test_connection_cap.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from novabilling.errors import ServiceUnavailable
from novabilling.kit.db import make_engine
from novabilling.kit.pools import BudgetPool, ConnectionBudget, derive_engine


def _pool(engine: AsyncEngine) -> BudgetPool:
    pool = engine.sync_engine.pool
    assert isinstance(pool, BudgetPool)
    return pool


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[list[AsyncEngine]]:
    budget = ConnectionBudget(2, timeout=5.0)
    made = [
        make_engine(f"sqlite+aiosqlite:///{tmp_path}/a.db", budget=budget, pool_size=2),
    ]
    for name in ("b", "c"):
        made.append(
            derive_engine(made[0], f"sqlite+aiosqlite:///{tmp_path}/{name}.db", connect_args={})
        )
    yield made
    for engine in made:
        await engine.dispose()
    assert budget.open == 0


def _budget(engines: list[AsyncEngine]) -> ConnectionBudget:
    return _pool(engines[0]).budget


async def _use(engine: AsyncEngine, hold: float = 0.01) -> int:
    async with engine.connect() as conn:
        value = (await conn.execute(text("SELECT 1"))).scalar_one()
        await asyncio.sleep(hold)
        return int(value)


async def test_many_pools_never_exceed_the_cap(engines: list[AsyncEngine]) -> None:
    budget = _budget(engines)
    results = await asyncio.gather(*(_use(engines[i % 3]) for i in range(60)))
    assert results == [1] * 60
    assert budget.peak == 2
    assert budget.waits > 0  # callers waited instead of failing
    assert budget.takeovers > 0  # idle connections of other databases were taken over
    assert budget.open <= 2 and budget.waiting == 0


async def test_an_idle_connection_of_another_database_is_taken_over(
    engines: list[AsyncEngine],
) -> None:
    budget = _budget(engines)
    a, b, c = engines
    await _use(a, 0)
    await _use(b, 0)
    assert budget.open == 2 and budget.idle == 2
    await _use(c, 0)  # at the cap: a's connection (idle longest) makes room
    assert budget.open == 2 and budget.takeovers == 1
    assert _pool(a).checkedout() == 0 and _pool(a)._open == 0
    assert _pool(b)._open == 1 and _pool(c)._open == 1


async def test_a_busy_budget_answers_503_after_the_timeout(tmp_path: Path) -> None:
    budget = ConnectionBudget(1, timeout=0.2)
    a = make_engine(f"sqlite+aiosqlite:///{tmp_path}/a.db", budget=budget)
    b = derive_engine(a, f"sqlite+aiosqlite:///{tmp_path}/b.db", connect_args={})
    try:
        async with a.connect() as held:
            await held.execute(text("SELECT 1"))
            with pytest.raises(ServiceUnavailable):
                await _use(b)
            assert budget.waiting == 0
        assert await _use(b) == 1  # released: b gets the slot
    finally:
        await a.dispose()
        await b.dispose()
    assert budget.open == 0


async def test_a_waiter_is_served_when_a_connection_comes_back(tmp_path: Path) -> None:
    budget = ConnectionBudget(1, timeout=5.0)
    a = make_engine(f"sqlite+aiosqlite:///{tmp_path}/a.db", budget=budget)
    b = derive_engine(a, f"sqlite+aiosqlite:///{tmp_path}/b.db", connect_args={})
    try:
        holder = asyncio.create_task(_use(a, 0.2))
        await asyncio.sleep(0.05)
        assert budget.open == 1
        assert await _use(b) == 1
        assert await holder == 1
        assert budget.waits >= 1 and budget.peak == 1
    finally:
        await a.dispose()
        await b.dispose()


async def test_disposing_releases_the_budget(engines: list[AsyncEngine]) -> None:
    budget = _budget(engines)
    await asyncio.gather(_use(engines[0]), _use(engines[1]))
    assert budget.open == 2
    await engines[0].dispose()
    await engines[1].dispose()
    assert budget.open == 0 and budget.idle == 0
    assert await _use(engines[0]) == 1  # a disposed engine gets a fresh pool


async def test_derived_engines_share_dialect_and_compiled_cache(
    engines: list[AsyncEngine],
) -> None:
    a, b, _ = engines
    assert a.sync_engine.dialect is b.sync_engine.dialect
    assert a.sync_engine._compiled_cache is b.sync_engine._compiled_cache
    assert a.sync_engine._compiled_cache is not None
    await _use(a)
    cached = len(a.sync_engine._compiled_cache)
    await _use(b)  # the same statement on another database: compiled once
    assert len(b.sync_engine._compiled_cache) == cached


async def test_waiters_are_served_first_come_first_served(tmp_path: Path) -> None:
    """A connection coming back goes to the first waiter, not to a request that arrives
    in the meantime. Before, a newcomer took it from the idle list and the woken waiter
    queued again at the back (under one busy tenant p99 was several times p50)."""
    budget = ConnectionBudget(1, timeout=5.0)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/a.db", budget=budget, pool_size=1)
    served: list[int] = []
    newcomers: list[asyncio.Task[None]] = []

    async def request(number: int) -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            served.append(number)

    def arrive_as_it_comes_back(*_: object) -> None:
        # as under load: another request is ready to run when the connection returns
        if len(newcomers) < 8:
            newcomers.append(asyncio.get_running_loop().create_task(request(100 + len(newcomers))))

    event.listen(engine.sync_engine, "checkin", arrive_as_it_comes_back)
    try:
        waiting = [asyncio.create_task(request(n)) for n in range(8)]
        await asyncio.gather(*waiting)
        await asyncio.gather(*newcomers)
        assert len(served) == 16
        # the 8 that queued first are served in order, before any that came later
        assert served[:8] == list(range(8)), served
        assert budget.peak == 1 and budget.waiting == 0
    finally:
        await engine.dispose()
    assert budget.open == 0
