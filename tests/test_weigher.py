"""The weigher contract: non-negative ints, clamped to 2**32-1, called on the calling
thread, and an error leaves the previous entry in place."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from moka_py import Moka
from tests.conftest import Events


def test_capacity_bounds_total_weight(events: Events) -> None:
    cache: Moka[str, str] = Moka(
        10, weigher=lambda k, v: len(v), eviction_listener=events, policy="lru"
    )
    cache.set("a", "xxxx")
    cache.set("b", "xxxx")
    cache.run_pending_tasks()  # weighted_size() is cheap: it lags behind queued writes
    assert cache.weighted_size() == 8
    cache.set("c", "xxxx")
    assert cache.weighted_size() <= 10
    assert events.calls == [("a", "xxxx", "size")]


def test_weigher_runs_on_the_calling_thread() -> None:
    seen: list[str] = []
    cache: Moka[str, int] = Moka(
        10, weigher=lambda k, v: seen.append(threading.current_thread().name) or 1
    )
    worker = threading.Thread(target=lambda: cache.set("a", 1), name="writer")
    worker.start()
    worker.join()
    assert seen == ["writer"]


def test_too_heavy_entries_are_refused(events: Events) -> None:
    cache: Moka[str, int] = Moka(10, weigher=lambda k, v: 2**40, eviction_listener=events)
    cache.set("big", 1)
    assert cache.get("big") is None
    assert events.calls == [("big", 1, "size")]
    assert cache.weighted_size() == 0


def test_huge_weights_are_clamped() -> None:
    cache: Moka[str, int] = Moka(2**33, weigher=lambda k, v: 2**40)
    cache.set("big", 1)
    cache.run_pending_tasks()
    assert cache.weighted_size() == 2**32 - 1


def test_zero_weight_entries_cost_nothing() -> None:
    cache: Moka[int, int] = Moka(2, weigher=lambda k, v: 0)
    for i in range(10):
        cache.set(i, i)
    assert len(cache) == 10
    assert cache.weighted_size() == 0


def test_reweighing_on_update() -> None:
    cache: Moka[str, str] = Moka(10, weigher=lambda k, v: len(v))
    cache.set("a", "x")
    cache.set("a", "xxxxxxx")
    cache.run_pending_tasks()
    assert cache.weighted_size() == 7


@pytest.mark.parametrize(
    ("weight", "error", "message"),
    [
        (-1, ValueError, "weigher must return a non-negative int"),
        (1.5, TypeError, "weigher must return an int, got float"),
        ("3", TypeError, "weigher must return an int, got str"),
        (None, TypeError, "weigher must return an int, got NoneType"),
    ],
)
def test_bad_weights_leave_the_old_entry(weight: Any, error: type[Exception], message: str) -> None:
    answers = iter([1, weight])
    cache: Moka[str, str] = Moka(10, weigher=lambda k, v: next(answers))
    cache.set("a", "old")
    with pytest.raises(error, match=message):
        cache.set("a", "new")
    assert cache.get("a") == "old"


def test_weigher_exceptions_propagate() -> None:
    def weigher(key: str, value: str) -> int:
        raise RuntimeError("cannot weigh")

    cache: Moka[str, str] = Moka(10, weigher=weigher)
    with pytest.raises(RuntimeError, match="cannot weigh"):
        cache.set("a", "x")
    assert len(cache) == 0
