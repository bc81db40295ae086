"""Opaque ids: 25 lowercase alphanumerics starting with ``c`` (like the original's cuids).

Time-ordered prefix (ms, base 36) + random tail, so ids sort roughly by creation and
never collide in practice. ``new_id`` is on every insert (100 a request on usage ingest),
so it stays cheap: the prefix is computed once per millisecond, and the tail is cut from a
per-process pool of random digits, drawn 4 KiB at a time from the OS and mapped to digits
in C (``bytes.translate``), bytes 252-255 dropped so every digit is equally likely
(252 = 7 x 36). A forked child empties its pool (it must not hand out its parent's
digits). Path ids are never format-checked (contract README §4).
``derived_id`` gives the same shape from a key, for rows whose id must come out the same
when an interrupted action is redone.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_TAIL = 15
_UNBIASED = 7 * len(_ALPHABET)  # 252: bytes below it map evenly onto the digits
_TO_DIGIT = bytes(ord(_ALPHABET[b % len(_ALPHABET)]) for b in range(256))
_BIASED = bytes(range(_UNBIASED, 256))
_DRAW = 4096  # random bytes per refill of the pool (about 268 tails)
_last_stamp: tuple[int, str] = (-1, "")
_pool = ""
_used = 0
_pool_lock = threading.Lock()


def _base36(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def _stamp() -> str:
    global _last_stamp
    ms = time.time_ns() // 1_000_000
    last = _last_stamp  # one tuple, replaced whole: safe to share between threads
    if last[0] != ms:
        last = (ms, _base36(ms, 9))
        _last_stamp = last
    return last[1]


def _tail() -> str:
    global _pool, _used
    with _pool_lock:
        if _used + _TAIL > len(_pool):
            _pool = secrets.token_bytes(_DRAW).translate(_TO_DIGIT, _BIASED).decode("ascii")
            _used = 0
            if len(_pool) < _TAIL:  # about 4,000 of 4,096 bytes survive: never in practice
                return _tail_unpooled()
        start = _used
        _used = start + _TAIL
    return _pool[start:_used]


def _tail_unpooled() -> str:
    digits = b""
    while len(digits) < _TAIL:
        digits += secrets.token_bytes(_TAIL).translate(_TO_DIGIT, _BIASED)
    return digits[:_TAIL].decode("ascii")


def _forget_pool() -> None:
    global _pool, _used, _pool_lock
    _pool, _used, _pool_lock = "", 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def new_id() -> str:
    return "c" + _stamp() + _tail()


def derived_id(key: str) -> str:
    """An id in the ``new_id`` shape that is a function of ``key`` (SHA-256): the same key
    always gives the same id, different keys practically never collide."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "big")
    return "c" + _base36(digest % 36**24, 24)
