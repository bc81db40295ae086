"""``Idempotency-Key`` on every mutating ``/api`` request (STYLE convention 8): one pure ASGI
middleware, so every POST, PUT, PATCH and DELETE route has it without knowing.

With the header (1-255 visible ASCII characters), for the authenticated tenant:

- first use: the key is claimed (``kit.idempotency``), the request runs; a 2xx answer is
  stored before it is sent and replayed for 24 h; any other answer releases the key
  (nothing was done, the client may fix the request and retry with the same key);
- same key, same request (method, path with query, JSON body) within 24 h: the first answer
  again — status and body — without running the route; header ``Idempotent-Replayed: true``;
- same key, another request: **409** ``Idempotency-Key was already used with a different
  request``;
- same key while the first request is still running: **409** ``A request with this
  Idempotency-Key is still being processed``.

Without the header nothing changes. ``/api/auth/*`` (no tenant yet) is not covered. A
request whose credential does not resolve passes through (the route answers 401).
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novabilling.errors import DomainError, FieldError
from novabilling.kit import idempotency
from novabilling.web.errors import auth_first, error_response

log = structlog.get_logger(__name__)

HEADER = b"idempotency-key"
REPLAYED = (b"idempotent-replayed", b"true")
_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
BUSY_MESSAGE = "A request with this Idempotency-Key is still being processed"
MISMATCH_MESSAGE = "Idempotency-Key was already used with a different request"


def _applies(scope: Scope) -> bytes | None:
    if scope["type"] != "http" or scope["method"] not in _METHODS:
        return None
    path: str = scope["path"]
    if not path.startswith("/api/") or path.startswith("/api/auth/"):
        return None
    for name, value in scope["headers"]:
        if name == HEADER:
            return bytes(value)
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else scope["path"]
    query = scope.get("query_string", b"")
    return path + ("?" + query.decode("latin-1") if query else "")


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), []


def _replaying(body: bytes, leftovers: list[Message], receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    pending.extend(leftovers)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _answer(
    scope: Scope, send: Send, status: int, message: str, problem: FieldError | None = None
) -> None:
    request = Request(scope)
    response = await auth_first(request)
    if response is None:
        response = error_response(request, status, message, [problem] if problem else None)
    await response(scope, _disconnected, send)


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_key = _applies(scope)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not _VALID_KEY.match(key):
            text = "Idempotency-Key must be 1 to 255 visible ASCII characters"
            problem = FieldError("Idempotency-Key", text)
            await _answer(scope, send, 400, "Validation failed", problem)
            return
        runtime: Any = scope["app"].state.runtime
        try:
            authorization = _header(scope, b"authorization")
            if scope["path"].startswith("/api/portal/"):  # portal tokens too (portal.md)
                principal = await runtime.principals.resolve_portal(authorization)
            else:
                principal = await runtime.principals.resolve(
                    authorization, session_only=scope["path"].startswith("/api/tenants/me")
                )
        except DomainError:
            await self.app(scope, receive, send)  # the route gives its 401
            return
        body, leftovers = await _read_body(receive)
        sessions = await runtime.engines.sessionmaker(principal.tenant_id)
        outcome = await idempotency.claim(
            sessions,
            key=key,
            fingerprint=idempotency.request_hash(scope["method"], _path(scope), body),
            method=scope["method"],
            path=_path(scope),
            now=runtime.clock.now(),
            encryptor=runtime.encryptor,
            tenant_id=principal.tenant_id,
        )
        if isinstance(outcome, idempotency.Replay):
            await _replay(send, outcome)
        elif isinstance(outcome, idempotency.Busy):
            await _answer(scope, send, 409, BUSY_MESSAGE)
        elif isinstance(outcome, idempotency.Mismatch):
            await _answer(scope, send, 409, MISMATCH_MESSAGE)
        else:
            recorder = _Recorder(
                send, sessions, outcome.record_id, key, runtime, principal.tenant_id
            )
            try:
                await self.app(scope, _replaying(body, leftovers, receive), recorder.send)
            finally:
                await recorder.finish()


async def _replay(send: Send, stored: idempotency.Replay) -> None:
    headers = [(b"content-length", str(len(stored.body)).encode()), REPLAYED]
    if stored.content_type:
        headers.append((b"content-type", stored.content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body, "more_body": False})


class _Recorder:
    """Passes the answer through; a 2xx one is held until it is stored, then sent."""

    def __init__(
        self, send: Send, sessions: Any, record_id: str, key: str, runtime: Any, tenant_id: str
    ) -> None:
        self._send = send
        self._sessions = sessions
        self._record_id = record_id
        self._key = key
        self._runtime = runtime
        self._tenant_id = tenant_id
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self._settled = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if 200 <= message["status"] < 300:
                self._start = message  # held: stored first, then sent
                return
            await self._release()
        elif message["type"] == "http.response.body" and self._start is not None:
            self._chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._store()
            await self._send(self._start)
            await self._send({**message, "body": b"".join(self._chunks)})
            return
        await self._send(message)

    async def _store(self) -> None:
        assert self._start is not None
        # settled before storing: if storing fails, the work is done but not recorded, and
        # the key must stay claimed (409) rather than let a retry do the work twice
        self._settled = True
        content_type = None
        for name, value in self._start.get("headers", []):
            if bytes(name).lower() == b"content-type":
                content_type = bytes(value).decode("latin-1")
        await idempotency.complete(
            self._sessions,
            self._record_id,
            key=self._key,
            status=int(self._start["status"]),
            content_type=content_type,
            body=b"".join(self._chunks),
            encryptor=self._runtime.encryptor,
            tenant_id=self._tenant_id,
        )
        log.info("idempotency.stored", status=self._start["status"])

    async def _release(self) -> None:
        if not self._settled:
            self._settled = True
            await idempotency.release(self._sessions, self._record_id)

    async def finish(self) -> None:
        """Whatever happened (an exception, a client gone), never leave the key claimed."""
        if not self._settled:
            await self._release()
