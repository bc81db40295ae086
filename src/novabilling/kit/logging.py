"""structlog setup (STYLE convention 14).

``configure_logging`` sends both structlog and stdlib loggers (uvicorn, sqlalchemy, bullmq)
through one processor chain: context variables (``request_id``, ``tenant_id``, ``job``) are
merged in, secrets are redacted, and the line is rendered as JSON (production) or for a
console (development). Bind context with ``bind_context`` / ``bound_context``; asyncio tasks
inherit what was bound when they were created.

Two rules keep one failing request from stalling the server (issue 14, defects 1-2):

- **Off the event loop.** The calling thread only builds the event dict and puts the
  record on a bounded queue; rendering and writing happen in a listener thread. A full
  queue drops the record (counted, reported on the next line that gets through) instead
  of blocking the caller. The listener drains the queue in batches: it polls every
  ``IDLE_SECONDS`` instead of being woken by every record, and flushes the stream once
  the queue is empty (a thread wake-up and a write per line cost the request more than
  the line itself: two lines per ``POST /api/customers`` were 0.5-1 ms of its CPU).
- **Tracebacks without locals, in every mode.** Exceptions are rendered as plain Python
  tracebacks (file, line, code), never with local variables; every rendered line then
  passes ``kit.redaction.scrub`` (API keys, bearer tokens, JWTs, password hashes, URL
  passwords and the process's own registered secrets).

``flush_logs()`` waits until everything logged so far has been written (tests, shutdown).
"""

from __future__ import annotations

import atexit
import contextlib
import json as stdlib_json
import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import IO, Any

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from novabilling.kit.redaction import REDACTED, is_secret_key, scrub

__all__ = [
    "REDACTED",
    "bind_context",
    "bound_context",
    "clear_context",
    "configure_logging",
    "current_context",
    "flush_logs",
    "get_logger",
    "is_secret_key",
    "redact_secrets",
    "unbind_context",
]

QUEUE_SIZE = 10_000
IDLE_SECONDS = 0.05
_MAX_DEPTH = 6
_CONTEXT_ATTR = "nb_context"


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _redact(value: Any, depth: int) -> Any:
    if type(value) in _PLAIN or depth > _MAX_DEPTH:  # most values: nothing to look into
        return value
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and is_secret_key(key)
            else _redact(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(item, depth + 1) for item in value)
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: replace values of secret-looking keys, nested dicts included, by ``***``."""
    for key in list(event_dict):
        if key in ("event", "exc_info", "_record", "_from_structlog"):
            continue
        if is_secret_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(event_dict[key], 1)
    return event_dict


def _capture_exc_info(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """``exc_info=True`` means "the exception being handled now": resolve it in the calling
    thread, since the listener thread that renders the line has no exception in flight."""
    if event_dict.get("exc_info") is True:
        info = sys.exc_info()
        event_dict["exc_info"] = info if info[0] is not None else False
    return event_dict


def _record_context(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """For stdlib records: the context variables captured when the record was queued."""
    record = event_dict.get("_record")
    captured = getattr(record, _CONTEXT_ATTR, None)
    if captured:
        for key, value in captured.items():
            event_dict.setdefault(key, value)
    return event_dict


class _OffloopHandler(logging.handlers.QueueHandler):
    """Queues records as they are (no formatting in the caller); never blocks: a full
    queue drops the record and counts it."""

    def __init__(self, target: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(target)
        self.dropped = 0
        self._lock = threading.Lock()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if not isinstance(record.msg, dict):  # a stdlib record: keep the caller's context
            setattr(record, _CONTEXT_ATTR, structlog.contextvars.get_contextvars())
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        with self._lock:
            pending = self.dropped
        if pending:
            record.nb_dropped = pending  # reported by the line that gets through
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return
        if pending:
            with self._lock:
                self.dropped -= pending


def _report_dropped(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    dropped = getattr(event_dict.get("_record"), "nb_dropped", 0)
    if dropped:
        event_dict["log_records_dropped"] = dropped
    return event_dict


class _ScrubbingRenderer:
    """Render, then scrub the finished text (secrets inside exception messages too)."""

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        rendered = self._renderer(logger, method, event_dict)
        text = rendered if isinstance(rendered, str) else str(rendered)
        return scrub(text)


class _BatchWriter(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that leaves flushing to the listener (once per batch)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)


class _BatchListener(logging.handlers.QueueListener):
    """Drains the queue in batches: polls while it is empty (``put`` then wakes no
    thread) and flushes the handlers when it has written everything queued, before the
    last record is marked done (so ``flush_logs`` returns with the lines written)."""

    def dequeue(self, block: bool) -> logging.LogRecord:
        while True:
            try:
                return self.queue.get_nowait()  # type: ignore[attr-defined,no-any-return]
            except queue.Empty:
                if not block:
                    raise
                time.sleep(IDLE_SECONDS)

    def handle(self, record: logging.LogRecord) -> None:
        super().handle(record)
        if self.queue.empty():  # type: ignore[attr-defined]
            for handler in self.handlers:
                handler.flush()


class _State:
    listener: logging.handlers.QueueListener | None = None
    queue: queue.Queue[logging.LogRecord] | None = None


def _stop_listener() -> None:
    listener = _State.listener
    if listener is None:
        return
    flush_logs()
    with contextlib.suppress(queue.Full):  # a stuck writer: abandon its (daemon) thread
        listener.stop()  # writes what is still queued, then joins the thread
    _State.listener = None
    _State.queue = None


atexit.register(_stop_listener)


def flush_logs(timeout: float = 5.0) -> None:
    """Block until every record queued so far has been written (or ``timeout`` passed)."""
    pending = _State.queue
    if pending is None:
        return
    done = threading.Event()

    def wait() -> None:
        pending.join()
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    done.wait(timeout)


def _shared_processors() -> list[Processor]:
    return [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        redact_secrets,
    ]


def _dumps(obj: Any, **kw: Any) -> str:
    """orjson for the JSON lines (several times faster than ``json.dumps``); anything it
    refuses (a non-string key, an integer beyond 64 bits) goes to ``json.dumps``."""
    try:
        return orjson.dumps(obj, default=kw.get("default")).decode()
    except TypeError:
        return stdlib_json.dumps(obj, **kw)


def _renderer(json: bool) -> Processor:
    if json:
        return structlog.processors.JSONRenderer(serializer=_dumps)
    return structlog.dev.ConsoleRenderer(
        colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
    )


QUIET_LIBRARIES = ("fontTools", "fpdf")


def configure_logging(*, json: bool, level: str, stream: IO[str] | None = None) -> None:
    """Configure structlog and the stdlib root logger. Safe to call more than once (the
    previous listener is drained and replaced). ``stream`` defaults to ``sys.stderr``."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level: {level!r}")
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # drop below-level events before any work
            structlog.contextvars.merge_contextvars,
            _capture_exc_info,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_record_context, *shared],
        processors=[
            _report_dropped,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else _keep,
            _ScrubbingRenderer(_renderer(json)),
        ],
    )
    output = _BatchWriter(stream if stream is not None else sys.stderr)
    output.setFormatter(formatter)
    _stop_listener()
    records: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_SIZE)
    listener = _BatchListener(records, output, respect_handler_level=False)
    listener.start()
    _State.listener, _State.queue = listener, records
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(_OffloopHandler(records))
    root.setLevel(numeric_level)
    for chatty in QUIET_LIBRARIES:  # a line per glyph table of every PDF at INFO
        logging.getLogger(chatty).setLevel(max(numeric_level, logging.WARNING))


def _keep(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    return event_dict


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; ``Any`` because structlog returns a lazy proxy."""
    return structlog.get_logger(name)


def bind_context(**values: Any) -> None:
    """Bind ``request_id=``, ``tenant_id=``, ``job=`` ... for the current context."""
    structlog.contextvars.bind_contextvars(**values)


def unbind_context(*keys: str) -> None:
    structlog.contextvars.unbind_contextvars(*keys)


def clear_context() -> None:
    structlog.contextvars.clear_contextvars()


def current_context() -> MutableMapping[str, Any]:
    return dict(structlog.contextvars.get_contextvars())


@contextmanager
def bound_context(**values: Any) -> Iterator[None]:
    """Bind values for the ``with`` block, restoring the previous ones afterwards."""
    with structlog.contextvars.bound_contextvars(**values):
        yield
