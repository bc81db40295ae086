"""Run a module as ``__main__`` without the terminal-only libraries.

    python -m novabilling.kit.headless --hide rich,pygments MODULE [ARGS...]

The server and job-worker processes write nothing for a terminal (logs are rendered by
``kit.logging`` with plain tracebacks), yet two of their libraries import Rich whenever it
is installed: ``structlog`` (``structlog.dev`` picks its default traceback formatter) and
``httpx`` (its ``httpx`` command line: Click, Pygments and Rich). Both fall back when the
import fails. The command line needs Rich, so it stays installed; this launcher marks the
named packages as absent (``sys.modules[name] = None`` makes ``import name`` raise
``ImportError``) before MODULE imports anything, which keeps ~4-6 MiB of modules out of
every long-running process (docs/benchmarks.md, Memory). uvicorn needs Click: the API
processes hide Rich and Pygments only.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Iterable, Sequence


def hide(names: Iterable[str]) -> None:
    """Make ``import NAME`` fail for each of ``names`` not already imported."""
    for name in names:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def command(module: str, args: Sequence[str], *, hidden: Sequence[str]) -> list[str]:
    """The argv that runs ``python -m MODULE ARGS`` through this launcher."""
    return [sys.executable, "-m", __name__, "--hide", ",".join(hidden), module, *args]


def main(argv: Sequence[str]) -> None:
    if len(argv) < 3 or argv[0] != "--hide":
        raise SystemExit("usage: python -m novabilling.kit.headless --hide A,B MODULE [ARGS]")
    hide(name for name in argv[1].split(",") if name)
    module = argv[2]
    sys.argv = [module, *argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
