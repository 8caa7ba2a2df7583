"""No deadlock: many threads mixing every operation on one cache, with a listener
that takes a lock and calls back into the cache, and keys whose `__eq__` is Python
code — the mix that hung moka-py 0.5.0 within seconds."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from moka_py import Moka
from tests.conftest import run_threads


class PyKey:
    """A key compared by Python code, with deliberate hash collisions."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return self.n % 50

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PyKey) and other.n == self.n

    def __repr__(self) -> str:
        return f"PyKey({self.n})"


def mixed_worker(cache: Moka[Any, Any], seed: int, ops: int) -> None:
    rng = random.Random(seed)
    for _ in range(ops):
        n = rng.randrange(400)
        key: Any = PyKey(n) if n % 2 else f"s{n}"
        op = rng.randrange(12)
        if op < 3:
            cache.set(key, n)
        elif op < 6:
            cache.get(key)
        elif op == 6:
            cache.remove(key)
        elif op == 7:
            cache.get_with(key, lambda n=n: n)
        elif op == 8:
            len(cache)
            key in cache  # noqa: B015
        elif op == 9:
            for _ in cache.items():
                pass
        elif op == 10:
            cache.set_many({key: n, f"t{n}": n}, ttl=0.05 if n % 7 == 0 else None)
        else:
            cache.get_many([key, f"t{n}"])


@pytest.mark.parametrize("policy", ["tiny_lfu", "lru"])
def test_mixed_operations_with_a_locking_listener(policy: str) -> None:
    listener_lock = threading.Lock()
    reported: list[Any] = []
    cache: Moka[Any, Any]

    def listener(key: Any, value: Any, cause: str) -> None:
        with listener_lock:
            reported.append(key)
        cache.get("listener-probe")  # re-entering the cache from the listener

    cache = Moka(64, eviction_listener=listener, policy=policy, tti=5)
    run_threads([lambda s=s: mixed_worker(cache, s, 1500) for s in range(8)], timeout=120)
    assert cache.weighted_size() <= 64
    assert len(cache) <= 64
    assert reported


def test_mixed_operations_on_a_plain_cache() -> None:
    cache: Moka[Any, Any] = Moka(64)
    run_threads([lambda s=s: mixed_worker(cache, s, 2000) for s in range(8)], timeout=120)
    assert len(cache) <= 64


def test_weigher_and_eq_calling_back_into_the_cache() -> None:
    cache: Moka[Any, Any]

    def weigher(key: Any, value: Any) -> int:
        cache.get("weigher-probe")
        return 1 + (hash(key) % 3)

    cache = Moka(100, weigher=weigher, eviction_listener=lambda k, v, c: cache.get(k))
    run_threads([lambda s=s: mixed_worker(cache, s, 800) for s in range(6)], timeout=120)
    assert cache.weighted_size() <= 100


def test_every_value_is_present_or_reported_once() -> None:
    # The accounting that makes the hard bound meaningful, under contention.
    reported: list[Any] = []
    lock = threading.Lock()

    def listener(key: Any, value: Any, cause: str) -> None:
        if cause != "replaced":
            with lock:
                reported.append(value)

    cache: Moka[Any, Any] = Moka(100, eviction_listener=listener)
    inserted: list[Any] = []

    def writer(t: int) -> None:
        for i in range(2000):
            value = (t, i)
            key: Any = PyKey(i) if i % 3 == 0 else (t, i)
            if i % 3 == 0:
                continue  # PyKey keys collide across threads; keep values unique per key
            cache.set(key, value)
            with lock:
                inserted.append(value)

    run_threads([lambda t=t: writer(t) for t in range(6)], timeout=120)
    present = cache.values()
    assert len(present) <= 100
    assert sorted(reported + present) == sorted(inserted)
