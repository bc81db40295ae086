"""Job name -> handler. Handlers are thin: open the tenant session, call one service,
and are safe to run twice (delivery is at least once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from novabilling.kit.jobs import JobHandler

if TYPE_CHECKING:
    from novabilling.runtime import Runtime


def build_handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    """Every job handler, bound to ``runtime``. Domains add theirs here."""
    handlers: dict[tuple[str, str], JobHandler] = {}
    return handlers
