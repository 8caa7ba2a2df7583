"""Keys behave as dict keys: hashed once per call, compared with == only on hash
collisions, numeric equality across types, and user exceptions reaching the caller."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any, ClassVar

import pytest

from moka_py import Moka
from tests.conftest import settle


class CountingKey:
    """A key that counts its `__hash__` and `__eq__` calls."""

    hashes = 0
    eqs = 0

    def __init__(self, value: int, hash_value: int | None = None) -> None:
        self.value = value
        self.hash_value = value if hash_value is None else hash_value

    def __hash__(self) -> int:
        CountingKey.hashes += 1
        return self.hash_value

    def __eq__(self, other: object) -> bool:
        CountingKey.eqs += 1
        return isinstance(other, CountingKey) and other.value == self.value

    @classmethod
    def reset(cls) -> None:
        cls.hashes = cls.eqs = 0


@pytest.fixture(autouse=True)
def _reset_counts() -> None:
    CountingKey.reset()


def test_numerically_equal_keys_are_one_key() -> None:
    cache: Moka[Any, str] = Moka(10)
    cache.set(1, "int")
    assert cache.get(1.0) == "int"
    assert cache.get(True) == "int"
    cache.set(1.0, "float")
    assert cache.get(1) == "float"
    assert len(cache) == 1


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({}, id="plain"),
        pytest.param({"eviction_listener": lambda k, v, c: None}, id="listener"),
        pytest.param({"ttl": 3600}, id="ttl"),
        pytest.param({"weigher": lambda k, v: 1}, id="weigher"),
    ],
)
@pytest.mark.parametrize("per_entry_ttl", [False, True], ids=["", "per-entry-ttl"])
def test_overwriting_keeps_the_first_key_object(
    config: dict[str, Any], per_entry_ttl: bool
) -> None:
    # As in a dict, `d[1.0] = x` after `d[1] = y` keeps the key 1.
    cache: Moka[Any, str] = Moka(10, **config)
    cache.set(1, "int")
    if per_entry_ttl:
        cache.set(1.0, "float", ttl=3600)
    else:
        cache.set(1.0, "float")
    assert cache.get(True) == "float"
    [key] = cache.keys()
    assert type(key) is int
    assert cache.items() == [(1, "float")]


def test_equal_but_distinct_objects_find_each_other() -> None:
    cache: Moka[Any, int] = Moka(10)
    cache.set("".join(["ab", "c"]), 1)
    cache.set((1, "x", 2.5), 2)
    cache.set(frozenset({1, 2}), 3)
    assert cache.get("abc") == 1
    assert cache.get((1, "x", 2.5)) == 2
    assert cache.get(frozenset([2, 1])) == 3


@pytest.mark.parametrize("key", [[1], {"a": 1}, {1}, ([],)])
def test_unhashable_keys_raise_hashs_type_error(key: Any) -> None:
    # A dict raises TypeError too; since 3.14 it rewords hash()'s message, which is
    # the one passed on here unchanged.
    cache: Moka[Any, int] = Moka(10)
    with pytest.raises(TypeError) as from_hash:
        hash(key)
    for call in (
        lambda: cache.set(key, 1),
        lambda: cache.get(key),
        lambda: cache.remove(key),
        lambda: cache.get_with(key, lambda: 1),
        lambda: key in cache,
        lambda: cache[key],
    ):
        with pytest.raises(TypeError) as ours:
            call()
        assert str(ours.value) == str(from_hash.value)
        assert "unhashable type" in str(ours.value)


def test_each_call_hashes_the_key_once() -> None:
    cache: Moka[CountingKey, int] = Moka(10)
    key = CountingKey(1)
    for call in (
        lambda: cache.set(key, 1),
        lambda: cache.get(key),
        lambda: cache.get_with(key, lambda: 2),
        lambda: key in cache,
        lambda: cache.remove(key),
        lambda: cache.get_with(key, lambda: 2),
    ):
        CountingKey.reset()
        call()
        assert CountingKey.hashes == 1


def test_eq_runs_only_on_hash_collisions() -> None:
    cache: Moka[CountingKey, int] = Moka(100)
    keys = [CountingKey(i) for i in range(20)]
    for k in keys:
        cache.set(k, k.value)
    CountingKey.reset()
    # Same objects: identity, no __eq__.
    assert [cache.get(k) for k in keys] == list(range(20))
    assert CountingKey.eqs == 0
    # Equal but distinct objects with distinct hashes: one __eq__ each, against its twin.
    assert [cache.get(CountingKey(i)) for i in range(20)] == list(range(20))
    assert CountingKey.eqs == 20


def test_colliding_hashes_keep_distinct_keys() -> None:
    cache: Moka[Any, str] = Moka(100)
    # -1 and -2 share a hash in CPython; so do these keys by construction.
    assert hash(-1) == hash(-2)
    cache.set(-1, "minus one")
    cache.set(-2, "minus two")
    colliding = [CountingKey(i, hash_value=7) for i in range(5)]
    for k in colliding:
        cache.set(k, f"v{k.value}")
    assert cache.get(-1) == "minus one"
    assert cache.get(-2) == "minus two"
    assert [cache.get(CountingKey(i, 7)) for i in range(5)] == [f"v{i}" for i in range(5)]
    assert len(cache) == 7
    assert cache.remove(CountingKey(2, 7)) == "v2"
    assert cache.get(CountingKey(2, 7)) is None
    assert cache.get(CountingKey(3, 7)) == "v3"
    cache.set(CountingKey(2, 7), "again")
    cache.set(CountingKey(3, 7), "replaced")
    assert [cache.get(CountingKey(i, 7)) for i in range(5)] == [
        "v0",
        "v1",
        "again",
        "replaced",
        "v4",
    ]
    assert len(cache) == 7
    assert CountingKey(9, 7) not in cache
    assert CountingKey(4, 7) in cache


def test_hash_exceptions_reach_the_caller_and_change_nothing() -> None:
    class BadHash:
        def __hash__(self) -> int:
            raise ZeroDivisionError("no hash")

    cache: Moka[Any, int] = Moka(10)
    cache.set("a", 1)
    for call in (
        lambda: cache.set(BadHash(), 1),
        lambda: cache.get(BadHash()),
        lambda: cache.remove(BadHash()),
        lambda: BadHash() in cache,
        lambda: cache.get_with(BadHash(), lambda: 1),
    ):
        with pytest.raises(ZeroDivisionError, match="no hash"):
            call()
    assert cache.items() == [("a", 1)]


def test_eq_exceptions_reach_the_caller_unchanged() -> None:
    class BadEq:
        def __init__(self, broken: bool) -> None:
            self.broken = broken

        def __hash__(self) -> int:
            return 1

        def __eq__(self, other: object) -> bool:
            if self.broken or getattr(other, "broken", False):
                raise LookupError("no eq")
            return self is other

    cache: Moka[Any, int] = Moka(10)
    stored = BadEq(broken=True)
    cache.set(stored, 1)
    # Same object: identity, no __eq__, no error (as in a dict).
    assert cache.get(stored) == 1
    # A different object with the same hash must be compared: the error propagates
    # (0.5.0 swallowed it and reported a miss).
    probe = BadEq(broken=False)
    for call in (
        lambda: cache.get(probe),
        lambda: cache.set(probe, 2),
        lambda: cache.remove(probe),
        lambda: probe in cache,
        lambda: cache.get_with(probe, lambda: 3),
    ):
        with pytest.raises(LookupError, match="no eq"):
            call()
    assert cache.items() == [(stored, 1)]


def test_keys_may_call_back_into_the_cache_from_eq() -> None:
    cache: Moka[Any, int] = Moka(10)

    class Chatty:
        def __hash__(self) -> int:
            return 5

        def __eq__(self, other: object) -> bool:
            cache.set("side effect", 1)
            cache.get("side effect")
            return isinstance(other, Chatty)

    cache.set(Chatty(), 1)
    assert cache.get(Chatty()) == 1
    cache.set(Chatty(), 2)
    assert cache.get(Chatty()) == 2
    assert cache.get("side effect") == 1


# ----- removed keys (moka's table keeps them as tombstones until it rehashes) ----------


class ClearingKey:
    """Collides with every other instance; its `__eq__` empties the cache first."""

    cache: Moka[Any, int]

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return 3

    def __eq__(self, other: object) -> bool:
        ClearingKey.cache.clear()
        return isinstance(other, ClearingKey) and other.n == self.n


def test_eq_that_clears_the_cache_does_not_make_a_write_spin() -> None:
    # A write whose key comparison changes the cache starts over; had removed keys still
    # been compared, it would meet the same removed key and run __eq__ again, forever.
    ClearingKey.cache = cache = Moka(10)
    cache.set(ClearingKey(0), 0)
    cache.set(ClearingKey(1), 1)
    assert [(key.n, value) for key, value in cache.items()] == [(1, 1)]


class DeclinedKey:
    """Collides with every other instance; its `__eq__` empties the cache and declines to
    answer, so that Python asks the other key next (the reflected `==`)."""

    cache: Moka[Any, int]
    released: ClassVar[list[int]] = []
    compared_released: ClassVar[list[int]] = []

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return 5

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DeclinedKey) and other.n in DeclinedKey.released:
            DeclinedKey.compared_released.append(other.n)
        DeclinedKey.cache.clear()
        for _ in range(8):
            # Lets moka free what clear() removed, releasing the stored key.
            DeclinedKey.cache.run_pending_tasks()
        return NotImplemented

    def __del__(self) -> None:
        DeclinedKey.released.append(self.n)


def test_a_stored_key_outlives_the_comparison_that_removes_it() -> None:
    # The stored key's __eq__ clears the cache and lets moka free what it removed; Python
    # then runs the probe's reflected __eq__ with the stored key as its argument. The key
    # must still be alive then: the entry being compared is not freed while the lookup
    # runs (moka's epoch pin keeps it, and the lookup holds its own reference besides).
    DeclinedKey.cache = cache = Moka(10)
    DeclinedKey.released.clear()
    DeclinedKey.compared_released.clear()
    cache.set(DeclinedKey(0), 0)
    assert cache.get(DeclinedKey(1)) is None
    settle(cache)
    assert DeclinedKey.compared_released == []
    assert 0 in DeclinedKey.released
    assert len(cache) == 0


def test_removed_keys_are_never_compared_again() -> None:
    cache: Moka[Any, int] = Moka(10)
    cache.set(CountingKey(0, hash_value=3), 0)
    cache.set(CountingKey(1, hash_value=3), 1)
    cache.remove(CountingKey(1, hash_value=3))
    cache.clear()
    CountingKey.reset()
    cache.set(CountingKey(2, hash_value=3), 2)
    assert CountingKey.eqs == 0
    assert cache.get(CountingKey(2, hash_value=3)) == 2


@pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="PyPy's -b issues no BytesWarning on =="
)
def test_a_bytes_warning_during_a_comparison_keeps_the_stored_key_alive() -> None:
    # Under `python -b`, `b"abc" == "abc"` (equal hashes) issues a BytesWarning, and the
    # warnings machinery is Python code that may let other threads run. Here it lets a
    # thread that holds the removed entry (invalidate_if's snapshot) finish and drop the
    # key's last other reference while the comparison still uses it. The debug allocator
    # turns a use of the freed key into a crash.
    script = textwrap.dedent(
        """
        import threading, warnings
        from moka_py import Moka

        warnings.simplefilter("always")
        cache = Moka(100)
        cache.set(bytes([97, 98, 99]), "v")  # the cache holds the key's only reference
        entered, release = threading.Event(), threading.Event()

        def hold(key, value):
            entered.set()
            release.wait()
            return False

        holder = threading.Thread(target=lambda: cache.invalidate_if(hold))
        holder.start()
        entered.wait()
        cache.remove(b"abc")  # gone from the cache; the holder still has the entry
        cache.run_pending_tasks()

        def let_the_holder_finish(*args, **kwargs):
            release.set()
            holder.join()

        warnings.showwarning = let_the_holder_finish
        assert cache.get("abc") is None
        release.set()
        print("survived" if not holder.is_alive() else "the lookup never compared")
        """
    )
    env = {**os.environ, "PYTHONMALLOC": "debug"}
    result = subprocess.run(
        [sys.executable, "-b", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "survived"


def test_a_python_eq_inside_a_stored_tuple_keeps_the_tuple_alive() -> None:
    # A stored tuple key is compared item by item in C. When an item's __eq__ is Python
    # code that lets another thread drop the tuple's last other reference (here a thread
    # holding the removed entry), the tuple must survive until the comparison ends. The
    # debug allocator turns a use of the freed tuple into a crash.
    script = textwrap.dedent(
        """
        import threading
        from moka_py import Moka

        class Item:
            def __init__(self, n):
                self.n = n
            def __hash__(self):
                return 0  # (Item(1), Item(2)) and (Item(1), Item(3)) collide
            def __eq__(self, other):
                if on_eq is not None:
                    on_eq()
                return isinstance(other, Item) and other.n == self.n

        on_eq = None
        cache = Moka(100)
        cache.set((Item(1), Item(2)), "v")  # the cache holds the tuple's only reference
        entered, release = threading.Event(), threading.Event()

        def hold(key, value):
            entered.set()
            release.wait()
            return False

        holder = threading.Thread(target=lambda: cache.invalidate_if(hold))
        holder.start()
        entered.wait()
        cache.remove((Item(1), Item(2)))  # gone from the cache; the holder has the entry
        cache.run_pending_tasks()

        def let_the_holder_finish():
            global on_eq
            on_eq = None
            release.set()
            holder.join()

        on_eq = let_the_holder_finish
        assert cache.get((Item(1), Item(3))) is None
        release.set()
        print("survived" if not holder.is_alive() else "the lookup never compared")
        """
    )
    env = {**os.environ, "PYTHONMALLOC": "debug"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "survived"
