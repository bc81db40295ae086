"""Capturing outbound tenant webhooks in tests (no network)."""

from __future__ import annotations

import httpx

from novabilling.runtime import Runtime
from novabilling.webhooks import outbound


def capture_outbound(runtime: Runtime) -> list[httpx.Request]:
    """Every delivery of ``runtime`` lands in the returned list and is answered 200."""
    sent: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    outbound.use_transport(runtime, httpx.MockTransport(receive))
    return sent
