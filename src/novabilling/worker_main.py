"""``python -m novabilling.worker_main``: the job worker process.

``novabilling worker`` replaces itself (``exec``, novabilling/launcher.py) with this
module, so the command line's own modules (Typer, Rich, Click, uvicorn, ...) are not
resident in a long-running worker; it runs through ``kit.headless`` with Rich, Pygments,
Click and ``cryptography`` hidden (structlog, httpx, PyJWT and redis-py import them only
because they are installed)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from novabilling import launcher
from novabilling.billing.scheduler import EmbeddedScheduler
from novabilling.bootstrap import build_runtime
from novabilling.config import Settings, get_settings
from novabilling.kit import heap
from novabilling.kit.jobs import ALL_QUEUES
from novabilling.kit.jobs_bullmq import install_signal_handlers, run_worker
from novabilling.kit.logging import configure_logging
from novabilling.worker import build_handlers


async def run_worker_process(
    settings: Settings, *, concurrency: int, scheduler: bool = True
) -> None:
    """BullMQ consumers for every queue, plus the single-flight scheduler loop."""
    configure_logging(json=settings.json_logs, level=settings.log_level)
    assert settings.redis_url
    runtime = build_runtime(settings)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    loop = EmbeddedScheduler(runtime) if scheduler else None
    trimmer = asyncio.create_task(heap.trim_every(), name="heap-trim")
    heap.settle()
    try:
        if loop is not None:
            loop.start()
        await run_worker(
            settings.redis_url,
            build_handlers(runtime),
            queues=ALL_QUEUES,
            concurrency=concurrency,
            stop=stop,
            prefix=settings.redis_prefix,
        )
    finally:
        await heap.stop(trimmer)
        if loop is not None:
            await loop.stop()
        await runtime.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m novabilling.worker_main")
    parser.add_argument("--concurrency", type=int, default=launcher.DEFAULT_CONCURRENCY)
    parser.add_argument("--no-scheduler", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(
        run_worker_process(
            get_settings(), concurrency=args.concurrency, scheduler=not args.no_scheduler
        )
    )


if __name__ == "__main__":
    main()
