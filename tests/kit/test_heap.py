"""``kit.heap``: ``trim`` gives freed heap pages back (glibc), and ``trim_every`` runs until
stopped."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from novabilling.kit import heap

# 100 MiB of 4 KiB blocks on the C heap, all freed but the last (which pins the heap's top,
# so glibc cannot shrink it by itself): resident until trimmed
PROBE = """
import sys
from pathlib import Path
from novabilling.kit import heap

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

blocks = [bytearray(4096) for _ in range(25_600)]
del blocks[:-1]
before = rss()
released = heap.trim() if sys.argv[1] == "trim" else False
print(before, rss(), released)
"""


def _run(mode: str) -> tuple[int, int, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), int(out[1]), out[2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trim_gives_freed_pages_back() -> None:
    before, after, released = _run("trim")
    assert released == "True" and before - after > 50, (before, after)
    before, after, _ = _run("keep")  # without it they stay resident
    assert before - after < 10, (before, after)


async def test_trim_every_runs_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(heap, "trim", lambda: calls.append(1) or True)
    task = asyncio.create_task(heap.trim_every(0.01))
    await asyncio.sleep(0.1)
    await heap.stop(task)
    seen = len(calls)
    assert seen >= 3 and task.cancelled()
    await asyncio.sleep(0.05)
    assert len(calls) == seen
