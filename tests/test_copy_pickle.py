"""copy, deepcopy and pickle give an independent cache with the same configuration
and the same live entries, remaining lifetimes kept."""

from __future__ import annotations

import copy
import pickle
import time
from typing import Any

import pytest

from moka_py import Moka


def on_evict(key: Any, value: Any, cause: str) -> None:
    pass


def weigh(key: Any, value: Any) -> int:
    return 1


class Lifetimes:
    def expire_after_create(self, key: Any, value: Any) -> float:
        return 30.0


def configured() -> Moka[str, list[int]]:
    cache: Moka[str, list[int]] = Moka(
        50,
        ttl=60,
        tti=30,
        eviction_listener=on_evict,
        policy="lru",
        weigher=weigh,
        expiry=Lifetimes(),
    )
    cache.set("a", [1])
    cache.set("b", [2])
    return cache


def same_configuration(a: Moka[Any, Any], b: Moka[Any, Any]) -> None:
    assert (a.capacity, a.ttl, a.tti, a.policy) == (b.capacity, b.ttl, b.tti, b.policy)
    assert a.eviction_listener is b.eviction_listener
    assert a.weigher is b.weigher


def test_copy_is_shallow_and_independent() -> None:
    cache = configured()
    clone = copy.copy(cache)
    same_configuration(cache, clone)
    assert clone.expiry is cache.expiry
    assert sorted(clone.items()) == sorted(cache.items())
    assert clone.get("a") is cache.get("a")
    clone.set("c", [3])
    cache.remove("a")
    assert "c" not in cache
    assert "a" in clone


def test_deepcopy_copies_values() -> None:
    cache = configured()
    clone = copy.deepcopy(cache)
    same_configuration(cache, clone)
    assert clone.get("a") == [1]
    assert clone.get("a") is not cache.get("a")
    assert type(clone.expiry) is Lifetimes
    assert clone.expiry is not cache.expiry


def test_deepcopy_keeps_self_references() -> None:
    cache: Moka[str, Any] = Moka(10)
    cache.set("me", cache)
    clone = copy.deepcopy(cache)
    assert clone.get("me") is clone


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(protocol: int) -> None:
    cache = configured()
    clone = pickle.loads(pickle.dumps(cache, protocol))
    assert (clone.capacity, clone.ttl, clone.tti, clone.policy) == (50, 60.0, 30.0, "lru")
    assert clone.eviction_listener is on_evict
    assert clone.weigher is weigh
    assert sorted(clone.items()) == [("a", [1]), ("b", [2])]


def test_remaining_lifetime_is_kept() -> None:
    cache: Moka[str, int] = Moka(10, ttl=60)
    cache.set("soon", 1, ttl=0.5)
    cache.set("later", 2)
    time.sleep(0.25)
    clone = pickle.loads(pickle.dumps(cache))
    copied = copy.copy(cache)
    time.sleep(0.6)
    for restored in (clone, copied):
        assert restored.get("soon") is None  # it did not get a fresh 0.5 s
        assert restored.get("later") == 2


def test_cache_wide_ttl_is_counted_from_the_original_write() -> None:
    # A cache with only a cache-wide ttl tracks each entry's lifetime itself (moka has
    # no per-entry expiry there); a copy must not give its entries a fresh ttl.
    cache: Moka[str, int] = Moka(10, ttl=2.0)
    cache.set("a", 1)
    time.sleep(1.0)
    clone = pickle.loads(pickle.dumps(cache))
    copied = copy.copy(cache)
    for restored in (clone, copied):
        assert restored.get("a") == 1
    time.sleep(1.5)  # 2.5 s after the write; a fresh ttl would last until 3.0 s
    for restored in (clone, copied, cache):
        assert restored.get("a") is None


def test_expired_entries_are_not_copied() -> None:
    cache: Moka[str, int] = Moka(10, ttl=0.2)
    cache.set("a", 1)
    time.sleep(0.5)
    assert copy.copy(cache).items() == []


def test_unpicklable_listener_is_named() -> None:
    cache: Moka[str, int] = Moka(10, eviction_listener=lambda k, v, c: None)
    with pytest.raises(TypeError, match=r"eviction_listener .* is not picklable"):
        pickle.dumps(cache)
    # copying needs no pickling
    assert copy.copy(cache).eviction_listener is cache.eviction_listener


class Tagged(Moka[str, int]):
    pass


def test_subclass_round_trips_with_its_attributes() -> None:
    cache = Tagged(10)
    cache.set("a", 1)
    cache.tag = "blue"
    for clone in (pickle.loads(pickle.dumps(cache)), copy.copy(cache), copy.deepcopy(cache)):
        assert type(clone) is Tagged
        assert clone.tag == "blue"
        assert clone.items() == [("a", 1)]
