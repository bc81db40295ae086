"""argon2id password hashing, run off the event loop (it is deliberately slow)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# A real hash to verify against when the email is unknown, so timing does not reveal it.
_DUMMY_HASH = _hasher.hash("novabilling-dummy-password")


def configure(*, time_cost: int, memory_kib: int) -> None:
    """Set the argon2id cost (tests use a cheap one; production keeps the defaults).
    Existing hashes keep verifying: their parameters are stored in the hash itself."""
    global _hasher, _DUMMY_HASH
    if (_hasher.time_cost, _hasher.memory_cost) == (time_cost, memory_kib):
        return
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    _DUMMY_HASH = _hasher.hash("novabilling-dummy-password")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(hashed: str | None, password: str) -> bool:
    ok = await asyncio.to_thread(_verify, hashed or _DUMMY_HASH, password)
    return ok and hashed is not None
