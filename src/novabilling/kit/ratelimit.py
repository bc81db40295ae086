"""Per-key rate limiting (contract §9: 100 requests / 60 s per client per route).

Fixed windows that open on a key's first hit: the first request starts a window of
``window_seconds``; requests in it are counted; when it expires the next hit starts a new
one. ``MemoryRateLimiter`` serves the embedded deployment (one process);
``RedisRateLimiter`` shares counters between API processes with one atomic Lua call.
If Redis fails the limiter fails OPEN: the API keeps serving, and a warning is logged
(at most once per ``warn_every_seconds``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

_RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*([smh]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # seconds until the window resets (>= 1 while a window is open)


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision: ...

    async def close(self) -> None: ...


def parse_rate_limit(value: str) -> tuple[int, int] | None:
    """``"100/60s"`` -> ``(100, 60)``; ``"5/2m"`` -> ``(5, 120)``; ``"100/60"`` -> ``(100, 60)``;
    ``"0"`` -> ``None`` (disabled). Anything else raises ``ValueError``."""
    text = value.strip()
    if text == "0":
        return None
    match = _RATE_PATTERN.match(text)
    if match is None:
        raise ValueError(f"invalid rate limit {value!r}: expected like '100/60s', '5/1m' or '0'")
    limit = int(match.group(1))
    window = int(match.group(2)) * _UNIT_SECONDS[match.group(3).lower()]
    if limit < 1 or window < 1:
        raise ValueError(f"invalid rate limit {value!r}: count and window must be >= 1")
    return limit, window


def _decision(count: int, limit: int, reset_ms: int) -> RateDecision:
    return RateDecision(
        allowed=count <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        reset_seconds=max(1, math.ceil(reset_ms / 1000)),
    )


def _check_args(limit: int, window_seconds: int) -> None:
    if limit < 1 or window_seconds < 1:
        raise ValueError("limit and window_seconds must be >= 1")


class MemoryRateLimiter:
    """In-process counters. Expired windows are swept every ``sweep_every`` hits and when
    more than ``max_keys`` keys are held (then the soonest-expiring are dropped too), so
    memory stays bounded whatever the number of clients."""

    def __init__(
        self,
        *,
        max_keys: int = 100_000,
        sweep_every: int = 1_000,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (count, expires_at)
        self._max_keys = max_keys
        self._sweep_every = sweep_every
        self._hits = 0
        self._now = now

    def __len__(self) -> int:
        return len(self._windows)

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        _check_args(limit, window_seconds)
        now = self._now()
        self._hits += 1
        if self._hits % self._sweep_every == 0 or len(self._windows) >= self._max_keys:
            self._sweep(now)
        count, expires_at = self._windows.get(key, (0, 0.0))
        if expires_at <= now:
            count, expires_at = 0, now + window_seconds
        count += 1
        self._windows[key] = (count, expires_at)
        return _decision(count, limit, int((expires_at - now) * 1000))

    def _sweep(self, now: float) -> None:
        self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        overflow = len(self._windows) - self._max_keys + 1
        if overflow > 0:
            by_expiry = sorted(self._windows.items(), key=lambda item: item[1][1])
            for key, _ in by_expiry[:overflow]:
                del self._windows[key]

    async def close(self) -> None:
        self._windows.clear()


# INCR, start the window on the first hit, return (count, ms left). One round trip, atomic.
# The PTTL < 0 branch repairs a key that lost its expiry (never lets a key live forever).
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RedisRateLimiter:
    """Shared counters in Redis under ``{prefix}:{key}``. Fails open on any Redis error."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "nb:rl",
        warn_every_seconds: float = 30.0,
        owns_client: bool = False,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script: Any = redis.register_script(_HIT_SCRIPT)
        self._warn_every = warn_every_seconds
        self._last_warning = -math.inf
        self._owns_client = owns_client

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "nb:rl") -> RedisRateLimiter:
        """A limiter with its own client and short timeouts, so a dead Redis costs a
        request at most ~0.5 s before failing open."""
        client = Redis.from_url(
            url,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            retry_on_timeout=False,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, prefix=prefix, owns_client=True)

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        _check_args(limit, window_seconds)
        try:
            result = await self._script(
                keys=[f"{self._prefix}:{key}"], args=[window_seconds * 1000]
            )
            count, ttl_ms = int(result[0]), int(result[1])
        except (RedisError, OSError) as exc:
            self._warn(exc)
            return RateDecision(
                allowed=True, limit=limit, remaining=limit, reset_seconds=window_seconds
            )
        return _decision(count, limit, ttl_ms)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning >= self._warn_every:
            self._last_warning = now
            log.warning("ratelimit.redis_unavailable", error=repr(exc), fail_open=True)

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()  # type: ignore[attr-defined]
