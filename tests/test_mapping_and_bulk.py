"""The mapping protocol and the bulk calls."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from moka_py import Moka


def test_mapping_protocol() -> None:
    cache: Moka[str, int] = Moka(10)
    cache["a"] = 1
    cache["b"] = 2
    assert cache["a"] == 1
    assert len(cache) == 2
    assert "a" in cache
    assert "z" not in cache
    del cache["a"]
    assert "a" not in cache
    with pytest.raises(KeyError) as missing:
        cache["a"]
    assert missing.value.args == ("a",)
    with pytest.raises(KeyError):
        del cache["a"]


def test_snapshots() -> None:
    cache: Moka[int, str] = Moka(100)
    for i in range(20):
        cache[i] = str(i)
    assert sorted(cache) == list(range(20))
    assert sorted(cache.keys()) == list(range(20))
    assert sorted(cache.values(), key=int) == [str(i) for i in range(20)]
    assert sorted(cache.items()) == [(i, str(i)) for i in range(20)]
    # Snapshots: changing the cache while iterating is fine.
    for key in cache:
        del cache[key]
    assert len(cache) == 0
    assert cache.keys() == []
    assert cache.values() == []
    assert cache.items() == []


def test_iteration_does_not_count_as_use() -> None:
    cache: Moka[str, int] = Moka(3, policy="lru")
    for k in "abc":
        cache[k] = 0
    list(cache.items())
    "a" in cache  # noqa: B015
    cache["d"] = 0  # "a" is still the least recently used
    assert sorted(cache.keys()) == ["b", "c", "d"]


def test_get_many() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set_many({"a": 1, "b": 2})
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    assert cache.get_many(iter(())) == {}
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (2, 1)


def test_set_many_accepts_mappings_and_pairs() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set_many({"a": 1})
    cache.set_many(OrderedDict([("b", 2)]))
    cache.set_many([("c", 3), ("d", 4)])
    cache.set_many((k, v) for k, v in [("e", 5)])
    assert sorted(cache.items()) == [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)]


def test_set_many_with_ttl() -> None:
    import time

    cache: Moka[str, int] = Moka(10)
    cache.set_many({"a": 1, "b": 2}, ttl=0.2)
    time.sleep(0.6)
    assert cache.get_many(["a", "b"]) == {}


def test_set_many_rejects_non_pairs() -> None:
    cache: Moka[str, int] = Moka(10)
    with pytest.raises(
        TypeError, match=r"set_many\(\) takes a mapping or an iterable of \(key, value\) pairs"
    ):
        cache.set_many([("a", 1), "oops"])  # type: ignore[list-item]


def test_remove_many() -> None:
    cache: Moka[int, int] = Moka(10)
    cache.set_many((i, i) for i in range(5))
    assert cache.remove_many([0, 2, 4, 9]) == 3
    assert sorted(cache.keys()) == [1, 3]
