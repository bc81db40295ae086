"""Keep a long-running process's heap cheap: ``settle`` once started, ``trim_every``.

``settle``: collect, then move every object alive after start-up (modules, routes,
validators, mapped classes: hundreds of thousands) to the collector's permanent
generation (``gc.freeze``). Full collections then walk only what requests and jobs
allocated since; before, they kept re-walking the start-up objects, about a third of the
CPU of a busy API process (docs/benchmarks.md). The young-generation threshold is raised
from 700 to ``GEN0_THRESHOLD`` allocations: a request allocates a few thousand objects,
nearly all freed by reference counting, so collecting every 700 was mostly wasted walks.

Give the C heap's free pages back to the system, now and then (glibc ``malloc_trim``).

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
import gc
from collections.abc import Callable

TRIM_SECONDS = 30.0
GEN0_THRESHOLD = 7_000


class _Settled:
    done = False


def settle() -> None:
    """Freeze what start-up left alive and raise the young-generation threshold, once
    per process, when it is ready to serve (see the module's docstring). Only the first
    call acts: a test process that starts many apps does not freeze each one's garbage."""
    if _Settled.done:
        return
    _Settled.done = True
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, second, third)


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
