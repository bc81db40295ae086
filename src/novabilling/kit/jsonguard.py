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

Both run on every request body, so each first tries a fast pass that can only say "surely
fine": ``parse_body`` parses with orjson (stricter than the standard parser: whatever it
refuses takes the slow path) and ``_clean`` walks the value with exact type tests and no
path strings. Anything the fast pass does not vouch for (a parse error, an escaped NUL, an
integer outside int64, a float at or beyond 2^63 in magnitude - what orjson makes of an
integer literal too big for 64 bits - a container at the depth limit, a type other than
dict/list/str/int/float/bool/None) goes through the slow walk, which alone decides the
answer and names the path: the fast pass changes the cost, never the outcome.
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
_FLOAT_BOUND = 2.0**63  # orjson turns an integer literal beyond 64 bits into such a float


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
    if b"\\u0000" not in body:
        try:
            fast = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the slow path names the problem (or accepts what orjson does not)
        else:
            if _clean(fast, 0):
                return fast
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


def _clean(value: Any, depth: int) -> bool:
    """True only if ``_walk`` surely accepts ``value`` (False: ask ``_walk``). Recursion is
    bounded by ``MAX_DEPTH``."""
    kind = type(value)
    if kind is dict:
        if depth >= MAX_DEPTH:
            return False
        for key, child in value.items():
            if type(key) is not str or "\x00" in key:
                return False
            if not _clean_item(child, depth):
                return False
        return True
    if kind is list:
        if depth >= MAX_DEPTH:
            return False
        return all(_clean_item(child, depth) for child in value)
    return _clean_item(value, depth - 1)


def _clean_item(child: Any, depth: int) -> bool:
    """A container's element at ``depth + 1`` (scalars inline: most values are)."""
    kind = type(child)
    if kind is str:
        return "\x00" not in child
    if kind is int:
        return INT64_MIN <= child <= INT64_MAX
    if kind is float:
        return -_FLOAT_BOUND < child < _FLOAT_BOUND
    if child is None or kind is bool:
        return True
    if kind is dict or kind is list:
        return _clean(child, depth + 1)
    return False


def check_value(value: Any, *, path: str = "", max_bytes: int | None = None) -> None:
    """Raise ``JsonRejected`` at the first value JSON clients or our databases cannot
    hold (``max_bytes``: also when its JSON is longer)."""
    if not _clean(value, 0):
        _walk(value, path)
    if max_bytes is not None and len(_dumps(value)) > max_bytes:
        raise JsonRejected(path or "body", f"must be at most {max_bytes} bytes as JSON")


def _walk(value: Any, path: str) -> None:
    """The exact check, iterative (no recursion limit to hit), naming the path."""
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


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # not JSON at all (a model, a set...): measured by its text
        return str(value).encode()
