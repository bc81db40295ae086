"""``python -m novabilling.worker_main``: the job worker process.

``novabilling worker`` replaces itself (``exec``) with this module, so the command line's
own modules (Typer, Rich, Click, uvicorn, ...) are not resident in a long-running worker."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from novabilling.billing.cli import run_worker_process
from novabilling.config import get_settings


def exec_worker(*, concurrency: int, scheduler: bool) -> None:
    """Replace this process with the job worker; does not return."""
    env = dict(os.environ)
    env.setdefault("MALLOC_ARENA_MAX", "2")  # see novabilling/web/serving.py
    args = [sys.executable, "-m", "novabilling.worker_main", "--concurrency", str(concurrency)]
    if not scheduler:
        args.append("--no-scheduler")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, args, env)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m novabilling.worker_main")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-scheduler", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(
        run_worker_process(
            get_settings(), concurrency=args.concurrency, scheduler=not args.no_scheduler
        )
    )


if __name__ == "__main__":
    main()
