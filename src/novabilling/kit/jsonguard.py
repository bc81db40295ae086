"""Hostile JSON, rejected before it reaches a service or a database (issue 14, defects 3, 4,
7, 8).

``parse_body`` reads a request body as strict JSON and ``check_value`` walks a parsed value;
both raise ``JsonRejected(field, message)`` naming the dotted path of the first offending
value (``metadata.a.0``), so the caller can answer the contract's 400:

- nesting deeper than ``MAX_DEPTH`` (32) levels (a deeper body is not even parsed past the
  interpreter's recursion limit: that is reported as too deep, not as a crash);
- integers outside int64 (PostgreSQL ``bigint``, orjson, most JSON clients);
- non-finite numbers (``NaN``, ``Infinity``, ``1e400``);
- U+0000 in any string or key (PostgreSQL text and jsonb cannot store it);
- free-form objects over ``MAX_FREEFORM_BYTES`` once serialised (``check_value`` with
  ``max_bytes``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

MAX_DEPTH = 32
MAX_FREEFORM_BYTES = 65_536
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class JsonRejected(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = f"{field} {message}"
        super().__init__(self.message)


class _Unrepresentable:
    """What the parser returns for a literal we refuse, so the walk can name its path."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


_TOO_BIG = _Unrepresentable("must be an integer between -2^63 and 2^63-1")
_NOT_FINITE = _Unrepresentable("must be a finite number")


def _parse_int(text: str) -> int | _Unrepresentable:
    if len(text) > 20:
        return _TOO_BIG
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else _TOO_BIG


def _parse_float(text: str) -> float | _Unrepresentable:
    value = float(text)
    return value if math.isfinite(value) else _NOT_FINITE


def _parse_constant(_text: str) -> _Unrepresentable:
    return _NOT_FINITE


def parse_body(body: bytes) -> Any:
    """Strict JSON (UTF-8), checked with ``check_value``; ``JsonRejected`` otherwise."""
    try:
        value = json.loads(
            body,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except RecursionError:
        raise JsonRejected("body", f"must be nested at most {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError):
        raise JsonRejected("body", "must be valid JSON") from None
    check_value(value)
    return value


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def check_value(value: Any, *, path: str = "", max_bytes: int | None = None) -> None:
    """Walk ``value`` (iteratively: no recursion limit to hit) and raise ``JsonRejected``
    at the first value JSON clients or our databases cannot hold."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise JsonRejected(where or "body", "must not contain NUL characters")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise JsonRejected(where or "body", _TOO_BIG.reason)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise JsonRejected(where or "body", _NOT_FINITE.reason)
        elif isinstance(item, _Unrepresentable):
            raise JsonRejected(where or "body", item.reason)
        elif isinstance(item, Mapping | list | tuple):
            if depth >= MAX_DEPTH:
                raise JsonRejected(
                    where or "body", f"must be nested at most {MAX_DEPTH} levels deep"
                )
            if isinstance(item, Mapping):
                for key, child in item.items():
                    if isinstance(key, str) and "\x00" in key:
                        raise JsonRejected(where or "body", "keys must not contain NUL characters")
                    stack.append((child, _join(where, key), depth + 1))
            else:
                stack.extend((child, _join(where, i), depth + 1) for i, child in enumerate(item))
    if max_bytes is not None and len(_dumps(value)) > max_bytes:
        raise JsonRejected(path or "body", f"must be at most {max_bytes} bytes as JSON")


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # not JSON at all (a model, a set...): measured by its text
        return str(value).encode()
