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
  of blocking the caller.
- **Tracebacks without locals, in every mode.** Exceptions are rendered as plain Python
  tracebacks (file, line, code), never with local variables; every rendered line then
  passes ``kit.redaction.scrub`` (API keys, bearer tokens, JWTs, password hashes, URL
  passwords and the process's own registered secrets).

``flush_logs()`` waits until everything logged so far has been written (tests, shutdown).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import queue
import sys
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import IO, Any

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
_MAX_DEPTH = 6
_CONTEXT_ATTR = "nb_context"


def _redact(value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
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


def _renderer(json: bool) -> Processor:
    if json:
        return structlog.processors.JSONRenderer()
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
    output = logging.StreamHandler(stream if stream is not None else sys.stderr)
    output.setFormatter(formatter)
    _stop_listener()
    records: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_SIZE)
    listener = logging.handlers.QueueListener(records, output, respect_handler_level=False)
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
