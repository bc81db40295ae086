"""Composition root: a ``Runtime`` with its job queue wired to every handler.

``build_runtime`` is what the app lifespan, the CLI, the worker and the tests call; the
low-level ``runtime.make_runtime`` knows no domain, ``worker.build_handlers`` knows every
domain's jobs, and this module puts the two together.
"""

from __future__ import annotations

from novabilling.config import Settings
from novabilling.kit.clock import Clock
from novabilling.runtime import Runtime, attach_jobs, make_runtime
from novabilling.worker import build_handlers

__all__ = ["build_runtime"]


def build_runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    runtime = make_runtime(settings, clock=clock)
    attach_jobs(runtime, build_handlers(runtime))
    return runtime
