"""`invalidate_if(predicate)`: conditional bulk removal."""

from __future__ import annotations

import pytest

from moka_py import Moka
from tests.conftest import Events


def test_removes_matching_entries(events: Events) -> None:
    cache: Moka[int, str] = Moka(100, eviction_listener=events)
    for i in range(10):
        cache.set(i, "even" if i % 2 == 0 else "odd")
    assert cache.invalidate_if(lambda k, v: v == "odd") == 5
    assert sorted(cache.keys()) == [0, 2, 4, 6, 8]
    assert sorted(events.calls) == [(i, "odd", "explicit") for i in range(1, 10, 2)]


def test_predicate_error_removes_nothing() -> None:
    cache: Moka[int, int] = Moka(100)
    for i in range(10):
        cache.set(i, i)

    def predicate(key: int, value: int) -> bool:
        if key == 7:
            raise ArithmeticError("bad entry")
        return True

    with pytest.raises(ArithmeticError, match="bad entry"):
        cache.invalidate_if(predicate)
    assert len(cache) == 10


def test_entries_replaced_meanwhile_survive() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set("a", 1)
    cache.set("b", 2)

    def predicate(key: str, value: int) -> bool:
        # Judging "a" replaces "b": whether "b" is judged before or after that, its
        # new value 20 is never judged true, so it must stay.
        if key == "a":
            cache.set("b", 20)
        return key == "a" or value == 2

    cache.invalidate_if(predicate)
    assert cache.items() == [("b", 20)]


def test_entries_moved_by_an_engine_switch_meanwhile_are_still_removed(events: Events) -> None:
    # A per-entry ttl written from the predicate switches this ttl cache to its timed
    # engine, which copies the entries it moves; they are still the entries the
    # predicate judged, so they go.
    cache: Moka[int, int] = Moka(100, ttl=3600, eviction_listener=events)
    for i in range(10):
        cache.set(i, i)

    def predicate(key: int, value: int) -> bool:
        if 100 not in cache:
            cache.set(100, 100, ttl=3600)
        return value % 2 == 0

    assert cache.invalidate_if(predicate) == 5
    assert sorted(cache.keys()) == [1, 3, 5, 7, 9, 100]
    assert sorted(events.calls) == [(i, i, "explicit") for i in range(0, 10, 2)]


def test_predicate_must_be_callable() -> None:
    with pytest.raises(TypeError, match="predicate must be callable"):
        Moka(10).invalidate_if(None)  # type: ignore[arg-type]
