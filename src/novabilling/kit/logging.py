"""structlog setup (STYLE convention 14).

``configure_logging`` sends both structlog and stdlib loggers (uvicorn, sqlalchemy, bullmq)
through one processor chain: context variables (``request_id``, ``tenant_id``, ``job``) are
merged in, secrets are redacted, and the line is rendered as JSON (production) or for a
console (development). Bind context with ``bind_context`` / ``bound_context``; asyncio tasks
inherit what was bound when they were created.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "***"

# Compared against the key lowercased with "_" and "-" removed, so "api_key", "X-Api-Key",
# "apiKey" and "client_secret" all match.
_SECRET_KEY_PATTERN = re.compile(
    r"password|passwd|secret|token|apikey|authorization|credential|cookie|privatekey"
)
_MAX_DEPTH = 6


def is_secret_key(key: str) -> bool:
    normalized = key.lower().replace("_", "").replace("-", "")
    return _SECRET_KEY_PATTERN.search(normalized) is not None


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
        if key == "event":
            continue
        if is_secret_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(event_dict[key], 1)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        redact_secrets,
    ]


def configure_logging(*, json: bool, level: str) -> None:
    """Configure structlog and the stdlib root logger. Safe to call more than once."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level: {level!r}")
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # drop below-level events before any work
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else _keep,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)


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
