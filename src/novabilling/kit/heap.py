"""Give the C heap's free pages back to the system, now and then (glibc ``malloc_trim``).

After a burst of requests or jobs, glibc keeps the memory that Python and the C
extensions freed; it returns only a free stretch at the top of the heap by itself.
``malloc_trim(0)`` also releases free pages inside it: ~4 MiB of an API process after its
first requests (docs/benchmarks.md, Memory). The long-running processes (the app's
lifespan, the job worker) call ``trim_every`` in a background task; the call takes a few
milliseconds and changes nothing but the resident size. Elsewhere than glibc it does
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
from collections.abc import Callable

TRIM_SECONDS = 30.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        function: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return function


_trim = _malloc_trim()


def trim() -> bool:
    """Release free heap pages; True when some memory went back to the system."""
    return bool(_trim(0)) if _trim is not None else False


async def trim_every(seconds: float = TRIM_SECONDS) -> None:
    """Trim once now and then every ``seconds``, until cancelled."""
    while True:
        trim()
        await asyncio.sleep(seconds)


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a ``trim_every`` task and wait for it."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
