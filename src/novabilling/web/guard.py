"""Input guard: one pure ASGI middleware that rejects, for every route at once, what no
route can store (issue 14, defects 3, 4, 7, 8):

- a NUL (U+0000) in the path -> 404 (no id contains one);
- a NUL in a query parameter -> 400 naming the parameter;
- a JSON body that is not strict JSON, nests deeper than 32 levels, holds an integer
  outside int64, a non-finite number or a NUL in any string or key -> 400 naming the
  dotted path (``kit.jsonguard``). Not ``/webhooks/*``: some providers post XML or forms,
  so the intake applies the same check to the JSON providers' bodies itself, first.

Authentication still comes first (contract README §2): on an ``/api`` route, a request
without a valid credential gets the 401 it would have got anyway.

The body is read once and replayed to the app; the size limit (413) is enforced outside,
by ``RequestContextMiddleware``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novabilling.errors import FieldError
from novabilling.kit.jsonguard import JsonRejected, parse_body
from novabilling.web.errors import auth_first, error_response

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _is_json(scope: Scope) -> bool:
    """What FastAPI would parse as JSON: no content type, or a JSON one."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return True


def _nul_in_query(scope: Scope) -> str | None:
    raw: bytes = scope.get("query_string", b"")
    if b"%00" not in raw and b"\x00" not in raw:
        return None
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            name = key.replace("\x00", "") or "query"
            return name
    return None


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), []


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:
            await self._reject(scope, send, 404, "Not found")
            return
        param = _nul_in_query(scope)
        if param is not None:
            problem = FieldError(param, f"{param} must not contain NUL characters")
            await self._reject(scope, send, 400, "Validation failed", problem)
            return
        if (
            scope["method"] not in _BODY_METHODS
            or scope["path"].startswith("/webhooks/")
            or not _is_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        body, leftovers = await _read_body(receive)
        if body:
            try:
                parse_body(body)
            except JsonRejected as exc:
                problem = FieldError(exc.field, exc.message)
                await self._reject(scope, send, 400, "Validation failed", problem)
                return
        await self.app(scope, _replay(body, leftovers, receive), send)

    @staticmethod
    async def _reject(
        scope: Scope, send: Send, status: int, message: str, problem: FieldError | None = None
    ) -> None:
        request = Request(scope)
        response = await auth_first(request)
        if response is None:
            response = error_response(request, status, message, [problem] if problem else None)
        await response(scope, _no_receive, send)


def _replay(body: bytes, leftovers: list[Message], receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    pending.extend(leftovers)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
