"""A tiny in-process cache with a time-to-live, bounded in size (cleared when full).

Read-through callers that race a writer use versions: take ``version(key)`` before reading
the source, then ``put(key, value, if_version=...)``. ``drop(key)`` (call it after the
writer's commit) moves the version on, so a value read before the commit is refused
instead of re-caching stale data until the TTL ends.
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

Version = tuple[int, int]


class TTLCache(Generic[K, V]):
    def __init__(self, ttl: float, *, max_entries: int = 20_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[K, tuple[float, V]] = {}
        self._versions: dict[K, int] = {}
        self._epoch = 0  # moves on when the version table itself is cleared

    def get(self, key: K) -> V | None:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def version(self, key: K) -> Version:
        return (self._epoch, self._versions.get(key, 0))

    def put(self, key: K, value: V, *, if_version: Version | None = None) -> bool:
        """Store ``value``; with ``if_version``, only if ``key`` was not dropped since that
        version was taken. Returns whether it was stored."""
        if if_version is not None and self.version(key) != if_version:
            return False
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)
        return True

    def drop(self, key: K) -> None:
        """Forget ``key`` and refuse puts of values read before now."""
        self._data.pop(key, None)
        if len(self._versions) >= self.max_entries:
            self._versions.clear()
            self._epoch += 1
        self._versions[key] = self._versions.get(key, 0) + 1

    def clear(self) -> None:
        self._data.clear()
        self._versions.clear()
        self._epoch += 1
