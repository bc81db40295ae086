"""FastAPI dependencies reading ``page`` / ``limit`` from the query string: strict (an
allow-list of parameters, 400 on a bad value) or lenient (defaults instead), the parsing
itself in ``kit.pagination``. They live in the HTTP layer so that processes without one
(the job worker) do not load Starlette for them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request  # FastAPI's Request, without loading FastAPI

from novabilling.kit.pagination import PageParams, parse_lenient, parse_strict


def strict_page(*allowed: str) -> Callable[[Request], Awaitable[PageParams]]:
    """FastAPI dependency: ``parse_strict`` over the request's query string. Dependencies
    are ``async def``: FastAPI runs a plain ``def`` one in the thread pool (a thread
    hand-off per request)."""

    async def dependency(request: Request) -> PageParams:
        return parse_strict(request.query_params, allowed)

    return dependency


async def lenient_page(request: Request) -> PageParams:
    """FastAPI dependency: ``parse_lenient`` over the request's query string."""
    return parse_lenient(request.query_params)
