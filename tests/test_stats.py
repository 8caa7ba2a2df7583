"""`stats()`: hits, misses, hit rate, evictions, expirations and loads."""

from __future__ import annotations

import time

import pytest

from moka_py import CacheStats, Moka


def test_fresh_cache() -> None:
    assert Moka(10).stats() == CacheStats(0, 0, 0.0, 0, 0, 0, 0, 0.0)


def test_hits_and_misses() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set("a", 1)
    cache.get("a")
    cache.get("a")
    cache.get("b")
    cache["a"]
    with pytest.raises(KeyError):
        cache["b"]
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (3, 2)
    assert stats.hit_rate == pytest.approx(0.6)


def test_writes_and_membership_are_not_requests() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set("a", 1)
    "a" in cache  # noqa: B015
    cache.remove("a")
    cache.keys()
    assert (cache.stats().hits, cache.stats().misses) == (0, 0)


def test_get_with_counts_a_hit_or_a_miss_and_loads() -> None:
    cache: Moka[str, int] = Moka(10)

    def slow() -> int:
        time.sleep(0.05)
        return 1

    cache.get_with("a", slow)
    cache.get_with("a", slow)
    with pytest.raises(ZeroDivisionError):
        cache.get_with("b", lambda: 1 // 0)
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (1, 2)
    assert (stats.load_successes, stats.load_failures) == (1, 1)
    assert stats.total_load_time >= 0.04


@pytest.mark.parametrize("with_listener", [False, True])
def test_evictions(with_listener: bool) -> None:
    # Without a listener the engine does not report evictions one by one; the count
    # must come out the same.
    listener = (lambda k, v, c: None) if with_listener else None
    cache: Moka[int, int] = Moka(10, eviction_listener=listener)
    for i in range(25):
        cache.set(i, i)
    removed = cache.remove_many(range(5))
    evicted = 25 - removed - len(cache)
    assert evicted >= 15
    assert cache.stats().evictions == evicted
    cache.clear()  # explicit removals, not evictions
    assert cache.stats().evictions == evicted


def test_expirations() -> None:
    cache: Moka[int, int] = Moka(100, ttl=0.2)
    for i in range(7):
        cache.set(i, i)
    time.sleep(0.6)
    cache.run_pending_tasks()
    stats = cache.stats()
    assert (stats.expirations, stats.evictions) == (7, 0)


def test_stats_is_a_named_tuple_snapshot() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.get("x")
    snapshot = cache.stats()
    cache.get("x")
    assert snapshot.misses == 1
    assert cache.stats().misses == 2
    assert snapshot._asdict()["misses"] == 1
    assert repr(snapshot).startswith("CacheStats(hits=0, misses=1, hit_rate=0.0")
