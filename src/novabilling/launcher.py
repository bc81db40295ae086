"""The ``novabilling`` console script.

``novabilling worker`` replaces this process with the job worker at once: the command
line's own modules (Typer, Rich, the demo seed, the provider simulators, ... - the whole
application, about half of the worker's start-up CPU) are never imported on the way. A
worker started next to a busy API server competes with it for the cores while it starts;
the shorter that is, the less it takes from the requests. Every other command - and
``worker`` with ``--help`` or arguments it does not know - runs the command line
(``novabilling.cli``), which answers with its own messages.

Both ways end in ``start_worker``: settings checked (a wrong one is one line naming it,
exit 2), then ``exec`` of ``novabilling.worker_main`` through ``kit.headless``.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Sequence
from typing import NoReturn

from pydantic import ValidationError

from novabilling.config import Settings, describe_error, get_settings
from novabilling.kit import headless

__all__ = ["DEFAULT_CONCURRENCY", "main", "settings_or_exit", "start_worker", "worker_options"]

DEFAULT_CONCURRENCY = 8  # jobs at once per queue
WORKER_MODULE = "novabilling.worker_main"
HIDDEN = ("rich", "pygments", "click", "cryptography")  # see kit/headless.py


def worker_options(args: Sequence[str]) -> tuple[int, bool] | None:
    """``(concurrency, scheduler)`` from ``worker``'s arguments in their plain forms
    (``--concurrency N``, ``--concurrency=N``, ``--scheduler``, ``--no-scheduler``), or
    None for anything else (``--help``, a typo, a value that is not a positive number)."""
    concurrency, scheduler = DEFAULT_CONCURRENCY, True
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("--scheduler", "--no-scheduler"):
            scheduler = arg == "--scheduler"
            continue
        if arg == "--concurrency" and rest:
            value = rest.pop(0)
        elif arg.startswith("--concurrency="):
            value = arg.partition("=")[2]
        else:
            return None
        if not value.isdigit() or int(value) < 1:
            return None
        concurrency = int(value)
    return concurrency, scheduler


def settings_or_exit() -> Settings:
    """The settings, or one line naming the wrong ``NB_*`` setting and exit 2 (every
    command's first step)."""
    try:
        return get_settings()
    except ValidationError as exc:
        print(f"novabilling: invalid setting: {describe_error(exc)}", file=sys.stderr)
        raise SystemExit(2) from None


def start_worker(*, concurrency: int, scheduler: bool) -> NoReturn:
    """Replace this process with the job worker; exit 2 with one line when the settings
    are wrong or name no Redis (the embedded mode runs jobs inside ``serve``)."""
    settings = settings_or_exit()
    if not settings.redis_url:
        print(
            "novabilling: NB_REDIS_URL is not set: embedded mode runs jobs in serve",
            file=sys.stderr,
        )
        raise SystemExit(2)
    env = dict(os.environ)
    env.setdefault("MALLOC_ARENA_MAX", "2")  # see novabilling/web/serving.py
    options = ["--concurrency", str(concurrency)]
    if not scheduler:
        options.append("--no-scheduler")
    args = headless.command(WORKER_MODULE, options, hidden=HIDDEN)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, args, env)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"]:
        options = worker_options(args[1:])
        if options is not None:
            start_worker(concurrency=options[0], scheduler=options[1])
    runpy.run_module("novabilling.cli", run_name="__main__", alter_sys=True)
