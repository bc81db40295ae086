"""kit.jsonguard: the fast pass never changes an answer - every body gets exactly what the
slow walk alone gives it (the value, or the same JsonRejected)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from novabilling.kit import jsonguard
from novabilling.kit.jsonguard import JsonRejected, check_value, parse_body


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"1" + b"]" * levels


BODIES = [
    b'{"a": 1, "b": [1.5, "x", null, true, false], "c": {"d": {}}}',
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",  # one past int64: rejected
    b"-9223372036854775809",
    b"18446744073709551616",  # orjson turns it into a float
    b"123456789012345678901234567890",
    b"9.3e18",  # a float beyond 2^63 is still a fine float
    b"-9.3e18",
    b"1e308",
    b"1e400",
    b"NaN",
    b"-Infinity",
    b'{"a": "x\\u0000y"}',
    b'{"x\\u0000": 1}',
    b'"\\\\u0000"',  # an escaped backslash, then "u0000": no NUL
    b'{"a": 1, "a": 2}',
    b"\xef\xbb\xbf{}",  # byte order mark
    b'"\\ud800"',  # lone surrogate
    b'{"a": "\xff"}',
    b"[1,]",
    b"",
    b"  {} ",
    _deep(31),
    _deep(32),
    _deep(33),
    _deep(2000),
    b'{"k": ' + _deep(31) + b"}",
    b'{"k": ' + _deep(32) + b"}",
]


def _outcome(body: bytes) -> tuple[str, Any]:
    try:
        return "value", parse_body(body)
    except JsonRejected as exc:
        return "rejected", (exc.field, exc.message)


@pytest.mark.parametrize("body", BODIES)
def test_parse_body_answers_as_the_slow_path_alone(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _outcome(body)

    def refuse(_: bytes) -> Any:
        raise orjson.JSONDecodeError("forced", "", 0)

    monkeypatch.setattr(jsonguard.orjson, "loads", refuse)
    slow = _outcome(body)
    assert fast == slow
    if fast[0] == "value":  # same types too (1 is not 1.0)
        assert repr(fast[1]) == repr(slow[1])


VALUES: list[Any] = [
    {"a": [1, 2.5, "x", None, True]},
    {"a": 2**63},
    {"a": -(2**63) - 1},
    {"a": float("nan")},
    {"a": float("inf")},
    {"a": 1e300},
    {"a": "x\x00"},
    {"x\x00": 1},
    {1: "non-string key"},
    {"a": (1, 2)},
    {"a": {"b": [{"c": 1}]}},
]


@pytest.mark.parametrize("value", VALUES)
def test_check_value_answers_as_the_walk_alone(value: Any) -> None:
    def outcome(run: Any) -> Any:
        try:
            run()
        except JsonRejected as exc:
            return (exc.field, exc.message)
        return None

    assert outcome(lambda: check_value(value, path="p")) == outcome(
        lambda: jsonguard._walk(value, "p")
    )


def test_check_value_still_bounds_the_size() -> None:
    with pytest.raises(JsonRejected, match="at most 10 bytes"):
        check_value({"a": "x" * 20}, max_bytes=10)
    check_value({"a": "x"}, max_bytes=10)
