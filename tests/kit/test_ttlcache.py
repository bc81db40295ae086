"""TTLCache: expiry, and versioned puts that keep a value read before a drop out."""

from __future__ import annotations

import time

from novabilling.kit.ttlcache import TTLCache


def test_put_get_expire_drop() -> None:
    cache: TTLCache[str, int] = TTLCache(60)
    assert cache.get("a") is None
    assert cache.put("a", 1) is True and cache.get("a") == 1
    cache.drop("a")
    assert cache.get("a") is None
    expired: TTLCache[str, int] = TTLCache(0.01)
    expired.put("a", 1)
    time.sleep(0.02)
    assert expired.get("a") is None


def test_versioned_put_refused_after_a_drop() -> None:
    cache: TTLCache[str, str] = TTLCache(60)
    before = cache.version("t1")
    cache.drop("t1")  # a writer committed meanwhile
    assert cache.put("t1", "stale", if_version=before) is False
    assert cache.get("t1") is None
    fresh = cache.version("t1")
    assert cache.put("t1", "fresh", if_version=fresh) is True
    assert cache.get("t1") == "fresh"
    # other keys are not affected by t1's drop
    other = cache.version("t2")
    cache.drop("t1")
    assert cache.put("t2", "x", if_version=other) is True


def test_clear_and_full_version_table_invalidate_outstanding_versions() -> None:
    cache: TTLCache[str, int] = TTLCache(60, max_entries=2)
    v = cache.version("a")
    cache.clear()
    assert cache.put("a", 1, if_version=v) is False
    v = cache.version("a")
    cache.drop("b")
    cache.drop("c")
    cache.drop("d")  # version table full: cleared, epoch moves on
    assert cache.put("a", 1, if_version=v) is False
    # the data table stays bounded too
    for key in "xyz":
        cache.put(key, 1)
    assert len([k for k in "axyz" if cache.get(k) is not None]) <= 2
