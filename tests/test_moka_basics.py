"""`Moka`'s 0.5.0 surface: set/get/remove/clear/count/weighted_size, and the class itself."""

from __future__ import annotations

import types

import pytest

import moka_py
from moka_py import Moka


def test_set_get_and_default() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set("a", 1)
    assert cache.get("a") == 1
    assert cache.get("missing") is None
    assert cache.get("missing", 42) == 42
    assert cache.get("missing", default=None) is None


def test_set_replaces() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set("a", 1)
    cache.set("a", 2)
    assert cache.get("a") == 2
    assert len(cache) == 1


def test_values_are_stored_by_reference() -> None:
    cache: Moka[str, list[int]] = Moka(10)
    value = [1, 2]
    cache.set("a", value)
    assert cache.get("a") is value
    assert cache.remove("a") is value


def test_none_is_a_value_distinct_from_absence() -> None:
    cache: Moka[str, None] = Moka(10)
    cache.set("a", None)
    marker = object()
    assert cache.get("a", marker) is None
    assert cache.remove("a", marker) is None
    assert cache.remove("a", marker) is marker


def test_remove_returns_the_value_once() -> None:
    cache: Moka[str, str] = Moka(10)
    cache.set("k", "v")
    assert cache.remove("k") == "v"
    assert cache.remove("k") is None
    assert cache.get("k") is None


def test_clear_removes_everything() -> None:
    cache: Moka[int, int] = Moka(100)
    for i in range(50):
        cache.set(i, i)
    cache.clear()
    assert len(cache) == 0
    assert cache.get(3) is None
    cache.set(3, 3)
    assert cache.get(3) == 3


def test_count_and_weighted_size_converge_after_pending_tasks() -> None:
    cache: Moka[int, int] = Moka(100)
    for i in range(30):
        cache.set(i, i)
    cache.run_pending_tasks()
    assert cache.count() == 30
    assert cache.weighted_size() == 30


def test_many_entries_round_trip() -> None:
    cache: Moka[int, str] = Moka(20_000)
    for i in range(10_000):
        cache.set(i, str(i))
    assert all(cache.get(i) == str(i) for i in range(10_000))
    assert len(cache) == 10_000


def test_read_only_configuration_attributes() -> None:
    def listener(k: object, v: object, c: str) -> None:
        pass

    def weigher(k: object, v: object) -> int:
        return 1

    cache: Moka[str, int] = Moka(
        5, ttl=10, tti=2.5, eviction_listener=listener, policy="lru", weigher=weigher
    )
    assert cache.capacity == 5
    assert cache.ttl == 10.0
    assert cache.tti == 2.5
    assert cache.policy == "lru"
    assert cache.eviction_listener is listener
    assert cache.weigher is weigher
    assert cache.expiry is None
    for name in ("capacity", "ttl", "tti", "policy"):
        with pytest.raises(AttributeError):
            setattr(cache, name, 1)


def test_defaults() -> None:
    cache: Moka[str, int] = Moka(1)
    assert (cache.ttl, cache.tti, cache.policy) == (None, None, "tiny_lfu")
    assert cache.eviction_listener is None
    assert cache.weigher is None


def test_repr_shows_the_configuration() -> None:
    assert repr(Moka(100, ttl=10.0, policy="lru")) == (
        "Moka(capacity=100, ttl=10.0, tti=None, policy='lru')"
    )

    def on_evict(k: object, v: object, c: str) -> None:
        pass

    text = repr(Moka(3, tti=1, eviction_listener=on_evict))
    assert text.startswith("Moka(capacity=3, ttl=None, tti=1.0, policy='tiny_lfu'")
    assert "eviction_listener=<function" in text


def test_generic_alias() -> None:
    alias = Moka[str, int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is Moka
    assert alias.__args__ == (str, int)


def test_public_objects_have_docs_and_live_in_moka_py() -> None:
    for obj in (
        Moka,
        moka_py.cached,
        moka_py.CacheStats,
        moka_py.CacheInfo,
        moka_py.CachedFunction,
    ):
        assert obj.__module__ == "moka_py", obj
        assert obj.__doc__, obj
        assert len(obj.__doc__) > 20, obj
    for name in (
        "set",
        "get",
        "get_with",
        "aget_with",
        "remove",
        "clear",
        "count",
        "weighted_size",
        "run_pending_tasks",
        "stats",
        "invalidate_if",
        "get_many",
        "set_many",
        "remove_many",
        "keys",
        "values",
        "items",
    ):
        assert getattr(Moka, name).__doc__, name


def test_version_is_single_sourced() -> None:
    from importlib.metadata import version

    assert moka_py.VERSION == moka_py.__version__ == version("moka-py")


def test_subclassing() -> None:
    class Named(Moka[str, int]):
        def describe(self) -> str:
            return f"{type(self).__name__} with {len(self)} entries"

    cache = Named(10, ttl=5)
    cache.set("a", 1)
    cache.label = "mine"  # subclasses get a __dict__
    assert isinstance(cache, Moka)
    assert cache.describe() == "Named with 1 entries"
    assert cache.label == "mine"
    assert repr(cache).startswith("test_subclassing.<locals>.Named(capacity=10, ttl=5.0")


def test_subclass_with_its_own_init() -> None:
    class Configured(Moka[str, int]):
        def __init__(self, capacity: int, *, prefix: str = "x") -> None:
            super().__init__(capacity, ttl=60)
            self.prefix = prefix

    cache = Configured(4, prefix="p")
    assert (cache.capacity, cache.ttl, cache.prefix) == (4, 60.0, "p")
    cache.set("a", 1)
    assert cache["a"] == 1


def test_subclass_that_skips_super_init_fails_clearly() -> None:
    class Forgetful(Moka[str, int]):
        def __init__(self) -> None:
            pass

    cache = Forgetful()
    with pytest.raises(RuntimeError, match=r"super\(\)\.__init__"):
        cache.set("a", 1)


def test_configuration_cannot_change_after_init() -> None:
    cache: Moka[str, int] = Moka(3)
    with pytest.raises(RuntimeError, match="already initialized"):
        cache.__init__(5)  # type: ignore[misc]
    assert cache.capacity == 3
