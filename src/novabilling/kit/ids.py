"""Opaque ids: 25 lowercase alphanumerics starting with ``c`` (like the original's cuids).

Time-ordered prefix (ms, base 36) + random tail, so ids sort roughly by creation and
never collide in practice. Path ids are never format-checked (contract README §4).
``derived_id`` gives the same shape from a key, for rows whose id must come out the same
when an interrupted action is redone.
"""

from __future__ import annotations

import hashlib
import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_TAIL_SPACE = 36**15


def _base36(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id() -> str:
    stamp = _base36(time.time_ns() // 1_000_000, 9)
    # 15 base-36 digits from one 128-bit draw (bias < 2**-50): one syscall, not fifteen
    tail = _base36(secrets.randbits(128) % _TAIL_SPACE, 15)
    return "c" + stamp + tail


def derived_id(key: str) -> str:
    """An id in the ``new_id`` shape that is a function of ``key`` (SHA-256): the same key
    always gives the same id, different keys practically never collide."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "big")
    return "c" + _base36(digest % 36**24, 24)
