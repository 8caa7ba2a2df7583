"""The eviction listener: causes, timing (after the operation, on the calling thread,
with no internal lock held) and what happens when it raises."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from moka_py import Moka
from tests.conftest import Events


def test_each_cause(events: Events) -> None:
    cache: Moka[str, int] = Moka(2, eviction_listener=events, ttl=0.2, policy="lru")
    cache.set("a", 1)
    cache.set("a", 2)
    assert events.calls == [("a", 1, "replaced")]
    cache.set("b", 3)
    cache.set("c", 4)
    assert events.calls[-1] == ("a", 2, "size")
    cache.remove("b")
    assert events.calls[-1] == ("b", 3, "explicit")
    time.sleep(0.5)
    cache.run_pending_tasks()
    assert events.calls[-1] == ("c", 4, "expired")
    assert len(events.calls) == 4


@pytest.mark.parametrize("weigher", [None, lambda k, v: 1], ids=["", "weigher"])
def test_overwrites_report_the_replaced_value_once(events: Events, weigher: Any) -> None:
    # Without a weigher or expiration the store swaps the value in place and tells the
    # listener itself; with a weigher moka inserts a new entry and tells it. Same events.
    cache: Moka[str, int] = Moka(10, eviction_listener=events, weigher=weigher)
    cache.set("a", 1)
    for value in range(2, 6):
        cache.set("a", value)
    cache["a"] = 6
    cache.set_many({"a": 7})
    assert events.calls == [("a", v, "replaced") for v in range(1, 7)]
    assert cache.get("a") == 7
    assert len(cache) == 1
    stats = cache.stats()
    assert (stats.evictions, stats.expirations) == (0, 0)


def test_overwrite_of_a_full_cache_keeps_the_bound(events: Events) -> None:
    cache: Moka[int, int] = Moka(8, eviction_listener=events)
    stored: list[int] = []

    def put(key: int, value: int) -> None:
        cache.set(key, value)
        stored.append(value)

    for i in range(8):
        put(i, i)
    for round_ in range(1, 4):
        for i in range(12):
            put(i, i + 100 * round_)
        assert cache.weighted_size() <= 8
    present = dict(cache.items())
    assert len(present) == len(cache) <= 8
    # Every value ever stored is present or was reported exactly once.
    reported = sorted(v for _, v, _ in events.calls)
    expected_gone = sorted(v for v in stored if v not in present.values())
    assert reported == expected_gone


def test_runs_on_the_calling_thread_before_the_call_returns(events: Events) -> None:
    threads: list[str] = []

    def listener(key: str, value: int, cause: str) -> None:
        threads.append(threading.current_thread().name)
        events(key, value, cause)

    cache: Moka[str, int] = Moka(1, eviction_listener=listener, policy="lru")
    cache.set("a", 1)

    def overflow() -> None:
        cache.set("b", 2)
        # Already delivered when set() returns.
        assert events.calls == [("a", 1, "size")]

    worker = threading.Thread(target=overflow, name="writer")
    worker.start()
    worker.join()
    assert threads == ["writer"]


def test_listener_may_use_the_same_cache(events: Events) -> None:
    cache: Moka[str, int] = Moka(3, policy="lru")

    def listener(key: str, value: int, cause: str) -> None:
        events(key, value, cause)
        if cause == "size" and key == "a":
            cache.get("x")
            cache.remove("gone")
            cache.set(f"requeued-{key}", value)

    cache = Moka(3, eviction_listener=listener, policy="lru")
    for k in "abcd":
        cache.set(k, 1)
    assert ("a", 1, "size") in events.calls
    assert cache.weighted_size() <= 3
    assert "requeued-a" in cache


def test_raising_listener_goes_to_unraisablehook(unraisable: list[object]) -> None:
    def listener(key: str, value: int, cause: str) -> None:
        raise ValueError(f"listener failed on {key}")

    cache: Moka[str, int] = Moka(1, eviction_listener=listener, policy="lru")
    cache.set("a", 1)
    cache.set("b", 2)  # evicts "a": the listener raises, set() still succeeds
    assert cache.get("b") == 2
    # The next call works too (0.5.0 raised SystemError here).
    cache.set("c", 3)
    assert cache.get("c") == 3
    errors = [u.exc_value for u in unraisable]  # type: ignore[attr-defined]
    assert [str(e) for e in errors] == ["listener failed on a", "listener failed on b"]
    assert all(isinstance(e, ValueError) for e in errors)


def test_listener_sees_each_departure_once(events: Events) -> None:
    cache: Moka[int, int] = Moka(10, eviction_listener=events, ttl=60)
    for i in range(100):
        cache.set(i, i)
    for i in range(0, 100, 3):
        cache.remove(i)
    cache.clear()
    departed = events.keys()
    assert sorted(departed) == list(range(100))


def test_clear_reports_explicit(events: Events) -> None:
    cache: Moka[int, int] = Moka(10, eviction_listener=events)
    for i in range(5):
        cache.set(i, i)
    cache.clear()
    assert sorted(events.calls) == [(i, i, "explicit") for i in range(5)]


def test_listener_must_be_callable() -> None:
    with pytest.raises(TypeError, match="eviction_listener must be callable"):
        Moka(10, eviction_listener=42)  # type: ignore[arg-type]
