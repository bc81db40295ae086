"""structlog setup (STYLE convention 14).

``configure_logging`` sends both structlog and stdlib loggers (uvicorn, sqlalchemy, bullmq)
through one processor chain: context variables (``request_id``, ``tenant_id``, ``job``) are
merged in, secrets are redacted, and the line is rendered as JSON (production) or for a
console (development). Bind context with ``bind_context`` / ``bound_context``; asyncio tasks
inherit what was bound when they were created.

Two rules keep one failing request from stalling the server (issue 14, defects 1-2):

- **Off the event loop.** The calling thread never writes, never waits and never formats
  a traceback. A structlog line without an exception is rendered where it is logged (one
  dict to JSON: microseconds) and the finished text is put on a bounded queue; a line
  with an exception, and every stdlib record, is queued as it is and rendered by the
  writer thread. A full queue drops the line (counted, reported by a line of its own)
  instead of blocking the caller. The writer drains the queue in batches, polling every
  ``IDLE_SECONDS`` instead of being woken by every line, and writes each batch at once.
  structlog lines skip the stdlib machinery (``LogRecord``, caller lookup, handlers):
  through it, the access line was about a fifth of a ``POST /api/customers``'s CPU.
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


class _Dropped:
    """How many lines did not fit in the queue since the last that did (a line of its own)."""

    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count


class _Deferred:
    """A structlog event carrying an exception: its traceback is formatted by the writer
    thread, never on the caller's (the event loop's) thread."""

    __slots__ = ("event_dict", "method")

    def __init__(self, method: str, event_dict: EventDict) -> None:
        self.method, self.event_dict = method, event_dict


_STOP = object()
Item = str | logging.LogRecord | _Deferred | _Dropped | object


class _Outbox:
    """The bounded queue between the callers and the writer thread. ``put`` never blocks:
    a full queue drops the line and counts it; the count goes in as a line of its own
    before the next line that fits."""

    def __init__(self, size: int) -> None:
        self.items: queue.Queue[Item] = queue.Queue(size)
        self.dropped = 0
        self._lock = threading.Lock()

    def put(self, item: Item) -> None:
        if self.dropped:
            with self._lock:
                pending, self.dropped = self.dropped, 0
            try:
                self.items.put_nowait(_Dropped(pending))
            except queue.Full:
                with self._lock:
                    self.dropped += pending + 1
                return
        try:
            self.items.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped += 1


class _QueueLogger:
    """structlog's logger: queues what the processor chain returns (a rendered line, or a
    ``_Deferred`` event) - no stdlib ``LogRecord``, no caller lookup, no handler chain."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, item: Item) -> None:
        outbox = _State.outbox
        if outbox is not None:
            outbox.put(item)

    debug = info = warning = warn = error = err = critical = fatal = exception = log = msg


def _queue_logger(*args: Any) -> _QueueLogger:
    return _QueueLogger(args[0] if args and isinstance(args[0], str) else "root")


class _OffloopHandler(logging.Handler):
    """Stdlib records (uvicorn, SQLAlchemy, libraries) go to the same queue as they are,
    with the caller's context variables; the writer thread renders them."""

    def emit(self, record: logging.LogRecord) -> None:
        outbox = _State.outbox
        if outbox is None:
            return
        setattr(record, _CONTEXT_ATTR, structlog.contextvars.get_contextvars())
        outbox.put(record)


class _ScrubbingRenderer:
    """Render, then scrub the finished text (secrets inside exception messages too)."""

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        rendered = self._renderer(logger, method, event_dict)
        text = rendered if isinstance(rendered, str) else str(rendered)
        return scrub(text)


class _Renderer:
    """The end of the chain: exceptions formatted (JSON) or kept for the console renderer,
    rendered, scrubbed. ``__call__`` is structlog's last processor in the caller's thread:
    a line without an exception is rendered there (a few microseconds: one dict to JSON),
    one with an exception is handed to the writer thread as a ``_Deferred``."""

    def __init__(self, json: bool) -> None:
        self._exc = structlog.processors.format_exc_info if json else _keep
        self._render = _ScrubbingRenderer(_renderer(json))

    def line(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        return self._render(logger, method, self._exc(logger, method, event_dict))

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> Any:
        if event_dict.get("exc_info"):
            return (_Deferred(method, event_dict),), {}
        event_dict.pop("exc_info", None)
        return self.line(logger, method, event_dict)


class _Writer(threading.Thread):
    """Drains the queue in batches: polls while it is empty (``put`` then wakes no thread),
    renders what the callers left to it, writes each batch with one ``write`` and flushes,
    then marks the batch done (so ``flush_logs`` returns with the lines written)."""

    BATCH = 512

    def __init__(
        self,
        outbox: _Outbox,
        stream: IO[str],
        renderer: _Renderer,
        formatter: logging.Formatter,
    ) -> None:
        super().__init__(name="log-writer", daemon=True)
        self._items, self._stream = outbox.items, stream
        self._renderer, self._formatter = renderer, formatter

    def run(self) -> None:
        items = self._items
        while True:
            try:
                batch = [items.get_nowait()]
            except queue.Empty:
                time.sleep(IDLE_SECONDS)
                continue
            while len(batch) < self.BATCH:
                try:
                    batch.append(items.get_nowait())
                except queue.Empty:
                    break
            lines = [self._line(item) for item in batch if item is not _STOP]
            try:
                if lines:
                    self._stream.write("\n".join(lines) + "\n")
                    self._stream.flush()
            except Exception:  # a closed or broken stream: nothing better to do
                pass
            for _ in batch:
                items.task_done()
            if any(item is _STOP for item in batch):
                return

    def _line(self, item: Item) -> str:
        try:
            if isinstance(item, str):
                return item
            if isinstance(item, _Deferred):
                return self._renderer.line(None, item.method, item.event_dict)
            if isinstance(item, _Dropped):
                return self._renderer.line(None, "warning", _dropped_event(item.count))
            if isinstance(item, logging.LogRecord):
                return self._formatter.format(item)
            return str(item)
        except Exception as exc:  # a line that cannot be rendered must not stop the writer
            return self._renderer.line(None, "error", _unrenderable_event(exc))


_STAMP = structlog.processors.TimeStamper(fmt="iso", utc=True)


def _dropped_event(count: int) -> EventDict:
    event = {"event": "log.records_dropped", "log_records_dropped": count}
    return _STAMP(None, "warning", {**event, "level": "warning", "logger": __name__})


def _unrenderable_event(exc: Exception) -> EventDict:
    event = {"event": "log.unrenderable", "error": type(exc).__name__}
    return _STAMP(None, "error", {**event, "level": "error", "logger": __name__})


class _State:
    writer: _Writer | None = None
    outbox: _Outbox | None = None
    # what the running set-up was made for: (json, level, stream), its renderer and handler
    made_for: tuple[bool, int, int] | None = None
    renderer: _Renderer | None = None
    level: int = logging.INFO
    handler: logging.Handler | None = None


def _still_configured(made_for: tuple[bool, int, int]) -> bool:
    """True when the running set-up was made for ``made_for`` and nothing replaced a
    part of it since (structlog's chain, the root handler and level, the writer)."""
    root = logging.getLogger()
    return (
        _State.made_for == made_for
        and _State.writer is not None
        and _State.writer.is_alive()
        and _State.handler in root.handlers
        and root.level == made_for[1]
        and structlog.is_configured()
        and structlog.get_config()["processors"][-1] is _render_current
    )


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "err": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def _at_level(_logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Drop a line below the configured level (structlog stops at ``DropEvent``)."""
    if _LEVELS.get(method, logging.CRITICAL) < _State.level:
        raise structlog.DropEvent
    return event_dict


def _render_current(logger: WrappedLogger, method: str, event_dict: EventDict) -> Any:
    """The last processor: the renderer of the configuration in force now."""
    renderer = _State.renderer
    if renderer is None:  # logging torn down (interpreter exit): nothing to render with
        raise structlog.DropEvent
    return renderer(logger, method, event_dict)


def _stop_listener() -> None:
    writer, outbox = _State.writer, _State.outbox
    if writer is None or outbox is None:
        return
    flush_logs()
    with contextlib.suppress(queue.Full):  # a stuck writer: abandon its (daemon) thread
        outbox.items.put_nowait(_STOP)
        writer.join(5.0)
    _State.writer = None
    _State.outbox = None
    _State.made_for = None


atexit.register(_stop_listener)


def flush_logs(timeout: float = 5.0) -> None:
    """Block until every line queued so far has been written (or ``timeout`` passed)."""
    outbox = _State.outbox
    if outbox is None:
        return
    done = threading.Event()

    def wait() -> None:
        outbox.items.join()
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
    """Configure structlog and the stdlib root logger. Safe to call more than once: the
    same settings again change nothing (no new writer thread); others drain and replace
    the previous writer. ``stream`` defaults to ``sys.stderr``."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level: {level!r}")
    target = stream if stream is not None else sys.stderr
    made_for = (json, numeric_level, id(target))
    if _still_configured(made_for):
        return
    shared = _shared_processors()
    renderer = _Renderer(json)
    _State.level, _State.renderer = numeric_level, renderer
    structlog.configure(
        processors=[
            _at_level,  # first: a below-level call costs one comparison
            structlog.contextvars.merge_contextvars,
            _capture_exc_info,
            *shared,
            _render_current,
        ],
        logger_factory=_queue_logger,
        # loggers are cached on first use (module-level ``log = get_logger(...)``): the
        # level and the renderer are read from _State at each call, so that a logger
        # first used before a reconfiguration follows it
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_record_context, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer.line,
        ],
    )
    _stop_listener()
    outbox = _Outbox(QUEUE_SIZE)
    writer = _Writer(outbox, target, renderer, formatter)
    writer.start()
    _State.writer, _State.outbox = writer, outbox
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = _OffloopHandler()
    root.addHandler(handler)
    _State.made_for, _State.handler = made_for, handler
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
