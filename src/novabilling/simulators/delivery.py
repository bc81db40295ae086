"""Self-delivery for a simulator served on its own (``novabilling simulate <provider>``).

In tests ``drain()`` is called by hand; a simulator run as a process has nobody to call it,
so :class:`SelfDelivering` wraps its ASGI app and, from server start-up to shutdown, calls
``drain()`` every ``interval`` seconds in the background: queued webhooks are POSTed (to
``NB_SIM_WEBHOOK_URL``, or the callback URL of an M-Pesa push), asynchronous refunds
settle and open STK prompts are answered, as the real provider would do on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("novabilling.simulators")

Drain = Callable[[], Awaitable[Any]]
DEFAULT_INTERVAL_SECONDS = 0.5


class SelfDelivering:
    """``app`` plus a background ``drain()`` loop bound to the ASGI lifespan."""

    def __init__(
        self, app: ASGIApp, drain: Drain, *, interval: float = DEFAULT_INTERVAL_SECONDS
    ) -> None:
        self.app = app
        self.drain = drain
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._task = asyncio.create_task(self._loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                for sent in await self.drain() or ():
                    log.info(
                        "simulator delivered %s -> %s",
                        getattr(sent, "url", None),
                        getattr(sent, "status_code", None) or getattr(sent, "error", None),
                    )
            except Exception:  # noqa: BLE001 - keep delivering whatever one round did
                log.exception("simulator delivery round failed")
