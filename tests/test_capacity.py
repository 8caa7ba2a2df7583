"""Capacity is a hard bound: when a call returns the cache holds at most `capacity`,
and every entry that left was reported to the listener once, with the right cause."""

from __future__ import annotations

import pytest

from moka_py import Moka
from tests.conftest import Events


@pytest.mark.parametrize("policy", ["tiny_lfu", "lru"])
@pytest.mark.parametrize("capacity", [1, 2, 7, 100, 3000])
def test_never_holds_more_than_capacity(policy: str, capacity: int, events: Events) -> None:
    cache: Moka[int, int] = Moka(capacity, eviction_listener=events, policy=policy)
    for i in range(capacity * 3):
        cache.set(i, i)
        assert cache.weighted_size() <= capacity
        assert len(cache) <= capacity
    present = set(cache.keys())
    evicted = events.keys("size")
    # Every key is either present or was reported evicted, exactly once.
    assert sorted(present | set(evicted)) == list(range(capacity * 3))
    assert len(evicted) == len(set(evicted))
    assert not present & set(evicted)
    assert events.causes() == ["size"] * len(evicted)


def test_without_a_listener_the_bound_holds_too() -> None:
    cache: Moka[str, int] = Moka(50)
    for i in range(1000):
        cache.set(f"k{i}", i)
        assert cache.weighted_size() <= 50
    assert len(cache) <= 50
    assert cache.stats().evictions == 1000 - len(cache)


def test_lru_evicts_the_least_recently_used(events: Events) -> None:
    cache: Moka[str, int] = Moka(3, eviction_listener=events, policy="lru")
    for k in "abc":
        cache.set(k, 0)
    cache.get("a")  # a is now the most recently used; b the least
    cache.set("d", 0)
    assert events.keys("size") == ["b"]
    assert sorted(cache.keys()) == ["a", "c", "d"]


def test_tiny_lfu_refusing_a_newcomer_reports_it_as_size(events: Events) -> None:
    cache: Moka[str, int] = Moka(2, eviction_listener=events)
    cache.set("hot", 1)
    cache.set("warm", 2)
    for _ in range(10):
        cache.get("hot")
        cache.get("warm")
    cache.set("cold", 3)
    # The newcomer has no history: TinyLFU keeps the popular entries.
    assert events.calls == [("cold", 3, "size")]
    assert cache.get("cold") is None
    assert sorted(cache.keys()) == ["hot", "warm"]


def test_capacity_zero_stores_nothing(events: Events) -> None:
    cache: Moka[str, int] = Moka(0, eviction_listener=events)
    cache.set("a", 1)
    assert cache.get("a") is None
    assert len(cache) == 0
    assert events.calls == [("a", 1, "size")]
    assert Moka(0).stats().evictions == 0


def test_replacing_does_not_count_as_eviction(events: Events) -> None:
    cache: Moka[str, int] = Moka(2, eviction_listener=events)
    cache.set("a", 1)
    cache.set("a", 2)
    cache.set("a", 3)
    assert events.calls == [("a", 1, "replaced"), ("a", 2, "replaced")]
    assert len(cache) == 1


def test_small_caches_fill_exactly_to_capacity() -> None:
    cache: Moka[int, int] = Moka(4095)
    for i in range(4095):
        cache.set(i, i)
    assert len(cache) == 4095


def test_large_caches_fill_to_within_a_fifth_of_a_percent() -> None:
    # From 4096 entries up, the engine evicts lazily a little below capacity (at most
    # 0.2%) so that writes need not run maintenance each time; never above it.
    cache: Moka[int, int] = Moka(100_000)
    for i in range(150_000):
        cache.set(i, i)
        if i % 997 == 0:
            assert cache.weighted_size() <= 100_000
    assert 99_800 <= len(cache) <= 100_000
