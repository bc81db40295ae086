import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from novabilling.kit.ratelimit import (
    MemoryRateLimiter,
    RateDecision,
    RedisRateLimiter,
    parse_rate_limit,
)

REDIS_URL = os.environ.get("NB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/60s", (100, 60)),
        ("100/60", (100, 60)),
        ("5/2m", (5, 120)),
        ("10/1h", (10, 3600)),
        (" 7 / 30S ", (7, 30)),
        ("0", None),
        (" 0 ", None),
    ],
)
def test_parse_rate_limit(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize(
    "bad", ["", "100", "abc", "100/", "/60s", "0/60s", "10/0s", "1.5/60s", "10/60d", "-1/60s"]
)
def test_parse_rate_limit_invalid(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_rate_limit(bad)


async def test_memory_counts_and_blocks() -> None:
    clock = FakeTime()
    limiter = MemoryRateLimiter(now=clock)
    decisions = [await limiter.hit("ip:route", 3, 60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[0] == RateDecision(allowed=True, limit=3, remaining=2, reset_seconds=60)
    clock.now += 20.5
    late = await limiter.hit("ip:route", 3, 60)
    assert not late.allowed and late.reset_seconds == 40


async def test_memory_window_reset_and_keys_independent() -> None:
    clock = FakeTime()
    limiter = MemoryRateLimiter(now=clock)
    for _ in range(2):
        await limiter.hit("a", 2, 10)
    assert not (await limiter.hit("a", 2, 10)).allowed
    assert (await limiter.hit("b", 2, 10)).allowed
    clock.now += 10
    fresh = await limiter.hit("a", 2, 10)
    assert fresh.allowed and fresh.remaining == 1 and fresh.reset_seconds == 10


async def test_memory_is_bounded() -> None:
    clock = FakeTime()
    limiter = MemoryRateLimiter(now=clock, max_keys=50, sweep_every=10)
    for i in range(40):
        await limiter.hit(f"old{i}", 5, 1)
    clock.now += 2  # all expired
    for i in range(200):
        await limiter.hit(f"new{i}", 5, 60)
    assert len(limiter) <= 50
    # the most recent key is still counted
    assert (await limiter.hit("new199", 5, 60)).remaining == 3


async def test_memory_rejects_bad_args() -> None:
    with pytest.raises(ValueError):
        await MemoryRateLimiter().hit("k", 0, 60)


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis unreachable at {REDIS_URL} with CI=true: {exc!r}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc!r}")
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_client: Redis) -> AsyncIterator[str]:
    value = f"nbtest-rl-{uuid.uuid4().hex}"
    yield value
    keys = [key async for key in redis_client.scan_iter(match=f"{value}:*")]
    if keys:
        await redis_client.delete(*keys)


@pytest.mark.redis
async def test_redis_counts_blocks_and_resets(redis_client: Redis, prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=prefix)
    decisions = [await limiter.hit("ip:route", 3, 1) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert all(d.limit == 3 and d.reset_seconds == 1 for d in decisions)
    ttl = await redis_client.pttl(f"{prefix}:ip:route")
    assert 0 < ttl <= 1000
    assert (await limiter.hit("other", 3, 1)).remaining == 2
    await asyncio.sleep(1.1)
    fresh = await limiter.hit("ip:route", 3, 1)
    assert fresh.allowed and fresh.remaining == 2


@pytest.mark.redis
async def test_redis_atomic_under_concurrency(redis_client: Redis, prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=prefix)
    decisions = await asyncio.gather(*(limiter.hit("k", 10, 60) for _ in range(25)))
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))


@pytest.mark.redis
async def test_redis_repairs_key_without_expiry(redis_client: Redis, prefix: str) -> None:
    await redis_client.set(f"{prefix}:stuck", 99)
    limiter = RedisRateLimiter(redis_client, prefix=prefix)
    decision = await limiter.hit("stuck", 5, 30)
    assert not decision.allowed
    assert 0 < await redis_client.pttl(f"{prefix}:stuck") <= 30_000


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_redis_down_fails_open() -> None:
    limiter = RedisRateLimiter.from_url(f"redis://127.0.0.1:{_closed_port()}/0")
    try:
        decisions = [await limiter.hit("k", 1, 60) for _ in range(3)]
    finally:
        await limiter.close()
    assert all(d.allowed for d in decisions)
    assert decisions[0] == RateDecision(allowed=True, limit=1, remaining=1, reset_seconds=60)
