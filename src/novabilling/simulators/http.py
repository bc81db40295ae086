"""Request/response helpers shared by the simulators' HTTP APIs: the auth guard every API
endpoint runs first, reading a JSON object body, JSON answers, hiding internal fields."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Endpoint = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request], Response | None]
"""Answers the request itself (401, an injected 5xx, ...) or returns None to let it through."""


def guarded(guard: Guard, endpoint: Endpoint) -> Endpoint:
    """``endpoint`` behind ``guard``: the guard's answer, when it has one, wins."""

    async def run(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        return await endpoint(request)

    return run


SimT = TypeVar("SimT")


class SimulatorApi(Generic[SimT]):
    """A simulator's HTTP API over its state ``sim``: ``routes()`` lists the endpoints,
    wrapping the provider's API paths in ``api()`` so ``deny()`` (the auth check, injected
    failures) runs before each of them; sim-only paths stay unguarded."""

    def __init__(self, sim: SimT) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def deny(self, request: Request) -> Response | None:
        raise NotImplementedError

    def api(self, endpoint: Endpoint) -> Endpoint:
        return guarded(self.deny, endpoint)


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def json_object(
    request: Request, *, parse_float: Callable[[str], Any] | None = None
) -> dict[str, Any] | None:
    """The body as a JSON object (an empty body is ``{}``); None when it is not one."""
    try:
        parsed = json.loads(await request.body() or b"{}", parse_float=parse_float)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


async def exact_json_object(request: Request) -> dict[str, Any] | None:
    """:func:`json_object` with decimals kept exact (amounts never pass through floats)."""
    return await json_object(request, parse_float=Decimal)


def json_ok(payload: Mapping[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(dict(payload), status_code=status_code)


def json_error(status_code: int, payload: Mapping[str, Any]) -> JSONResponse:
    """An error answer in the provider's own shape (the caller builds ``payload``)."""
    return JSONResponse(dict(payload), status_code=status_code)


def public(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record without its simulator-only ``_fields``, as the provider shows it."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
