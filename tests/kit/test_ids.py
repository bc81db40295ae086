"""kit.ids: the id shape, time order, and an even spread of the random tail."""

from __future__ import annotations

import os
import re
import time
from collections import Counter

import pytest

from novabilling.kit import ids
from novabilling.kit.ids import derived_id, new_id

SHAPE = re.compile(r"^c[0-9a-z]{24}$")


def test_new_id_shape_and_uniqueness() -> None:
    made = [new_id() for _ in range(20_000)]
    assert all(SHAPE.match(i) for i in made)
    assert len(set(made)) == len(made)


def test_new_id_prefix_is_the_millisecond_in_base36() -> None:
    before = time.time_ns() // 1_000_000
    stamp = int(new_id()[1:10], 36)
    after = time.time_ns() // 1_000_000
    assert before <= stamp <= after


def test_new_ids_sort_by_creation_across_milliseconds() -> None:
    first = new_id()
    time.sleep(0.003)
    second = new_id()
    assert first[:10] < second[:10]


def test_tail_digits_are_evenly_spread() -> None:
    counts = Counter("".join(new_id()[10:] for _ in range(12_000)))
    assert set(counts) == set(ids._ALPHABET)
    expected = 12_000 * 15 / 36  # 5,000 per digit
    # a byte-modulo mapping without dropping 252-255 would give digits 0-3 about 14 % more
    assert all(abs(n - expected) < 0.08 * expected for n in counts.values()), counts


def test_tail_draws_again_when_too_many_bytes_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([bytes([255] * 4090 + [1] * 6), bytes([255] * 14 + [1]), bytes(range(15))])
    monkeypatch.setattr(ids.secrets, "token_bytes", lambda n: next(draws))
    monkeypatch.setattr(ids, "_used", len(ids._pool))  # pool used up: the next tail refills
    assert ids._tail() == "1" + "0123456789abcd"


def test_a_forked_child_does_not_reuse_the_parents_digits() -> None:
    new_id()  # the pool is filled
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, new_id()[10:].encode())
        os._exit(0)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert len(from_child) == 15
    assert from_child != new_id()[10:]


def test_derived_id_is_a_function_of_the_key() -> None:
    assert derived_id("a") == derived_id("a")
    assert derived_id("a") != derived_id("b")
    assert SHAPE.match(derived_id("a"))
