"""Run a module as ``__main__`` without libraries it would load only because they exist.

    python -m novabilling.kit.headless --hide rich,pygments MODULE [ARGS...]

Some libraries of the server and job-worker processes import optional packages whenever
they are installed, and fall back when the import fails:

- Rich: ``structlog`` (``structlog.dev`` picks a default traceback formatter) and
  ``httpx`` (its ``httpx`` command line: Click, Pygments and Rich). Our logs are rendered
  by ``kit.logging`` with plain tracebacks; the command line needs Rich, so it stays
  installed.
- ``cryptography``: PyJWT (RSA/EC algorithms; we sign HS256 with ``hmac``), redis-py (OCSP
  checks, unused) and fpdf2 (PDF signing, unused). ``kit.aesgcm`` seals secrets with the
  interpreter's OpenSSL; ``cryptography`` is a development dependency (tests), hidden so
  that a development checkout measures what production runs.

This launcher marks the named packages as absent (``sys.modules[name] = None`` makes
``import name`` raise ``ModuleNotFoundError``) before MODULE imports anything: ~4-6 MiB of
Rich/Pygments/Click and ~9 MiB of ``cryptography`` stay out of every long-running process
(docs/benchmarks.md, Memory). uvicorn needs Click: the API processes keep it.

It also loads installed libraries without their docstrings and asserts
(``kit.leancode``, ~7 MiB per process), and runs the interpreter with
``-X no_debug_ranges`` (code objects without column positions, ~0.7 MiB: a traceback
names file and line but draws no ``^^^`` under the failing expression).
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Iterable, Sequence

from novabilling.kit import leancode

INTERPRETER_OPTIONS = ("-X", "no_debug_ranges")


def hide(names: Iterable[str]) -> None:
    """Make ``import NAME`` fail for each of ``names`` not already imported."""
    for name in names:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def command(module: str, args: Sequence[str], *, hidden: Sequence[str]) -> list[str]:
    """The argv that runs ``python -m MODULE ARGS`` through this launcher."""
    return [
        sys.executable,
        *INTERPRETER_OPTIONS,
        "-m",
        __name__,
        "--hide",
        ",".join(hidden),
        module,
        *args,
    ]


def main(argv: Sequence[str]) -> None:
    if len(argv) < 3 or argv[0] != "--hide":
        raise SystemExit("usage: python -m novabilling.kit.headless --hide A,B MODULE [ARGS]")
    hide(name for name in argv[1].split(",") if name)
    leancode.install()
    module = argv[2]
    sys.argv = [module, *argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
