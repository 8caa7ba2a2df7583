"""Stateful model tests: random sequences of operations against a pure-Python model.

Hypothesis drives a `Moka` and a model side by side and compares, after every step,
the contents, `len`, the statistics and what the listener reported. Three models:

- LRU with a small capacity, where eviction is exactly predictable: the model is an
  ordered dict in recency order, and the evicted entry is always the least recent.
- TinyLFU with room for every key, where the policy never has to choose (admission
  decisions cannot be predicted), and where a per-entry ttl (far in the future) turns
  the plain engine into a timed one in the middle of a run.
- The same with a listener and a cache-wide ttl, whose notified engine becomes a timed
  one mid-run: the switch must report nothing.

Time is left out (no injectable clock): durations are long enough never to elapse.
Keys include every kind of collision the cache must keep apart: numerically equal keys
(`1`, `1.0`, `True` are one key), CPython's own hash collision (`-1`/`-2`), keys with
Python `__eq__` sharing a hash, and keys whose hashes differ by a collision-probe
offset, so that their engine slots coincide (see `src/slot.rs`).
"""

from __future__ import annotations

import copy
from collections import Counter, OrderedDict
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from moka_py import Moka

pytestmark = pytest.mark.thread_unsafe(reason="Hypothesis drives one machine at a time")

# The probe offset of src/slot.rs: probe p of hash h lives at slot h ^ (p * STRIDE).
PROBE_STRIDE = 0xA24BAED4963EE407


def signed(x: int) -> int:
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


class Named:
    """A key compared by Python `__eq__` (by name), with a chosen hash."""

    __slots__ = ("hash", "name")

    def __init__(self, name: str, hash_: int) -> None:
        self.name = name
        self.hash = hash_

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Named) and other.name == self.name

    def __repr__(self) -> str:
        return f"Named({self.name!r}, {self.hash})"


KEYS: list[Any] = [
    0, 1, 1.0, True, 2, -1, -2, "a", "b", (1, "x"), (1.0, "x"),
    Named("p", 7), Named("q", 7), Named("r", 7),
    # hash 0 twice (probes 0 and 1), then the hashes whose probe 0 and 1 land on
    # those same slots.
    Named("z0", 0), Named("z1", 0),
    Named("s1", signed(PROBE_STRIDE)), Named("s2", signed(2 * PROBE_STRIDE)),
    Named("s3", signed(PROBE_STRIDE ^ 2 * PROBE_STRIDE)),
]  # fmt: skip

keys = st.sampled_from(KEYS)


def key_index(key: Any) -> int:
    """The position of the first key of `KEYS` equal to `key` (`1.0` and `True` are `1`)."""
    return next(i for i, k in enumerate(KEYS) if hash(k) == hash(key) and k == key)


class Value:
    """A unique value: the cache stores values by reference, so identity is checked."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"V{self.n}"


class Failed(Exception):
    pass


class CacheMachine(RuleBasedStateMachine):
    """What both models share: rules, the event log and the statistics."""

    capacity = 1000
    policy = "tiny_lfu"
    listener = True
    ttl: float | None = None

    def __init__(self) -> None:
        super().__init__()
        self.serial = 0
        self.reported: list[tuple[Any, Value, str]] = []
        self.model: OrderedDict[Any, Value] = OrderedDict()
        self.expected_events: list[tuple[Any, Value, str]] = []
        self.hits = self.misses = self.loads = self.load_failures = self.evictions = 0
        self.cache: Moka[Any, Value] = Moka(
            self.capacity,
            policy=self.policy,
            ttl=self.ttl,
            eviction_listener=self.on_event if self.listener else None,
        )

    def on_event(self, key: Any, value: Value, cause: str) -> None:
        self.reported.append((key, value, cause))

    def fresh(self) -> Value:
        self.serial += 1
        return Value(self.serial)

    # ----- the model ------------------------------------------------------------------

    def touch(self, key: Any) -> None:
        """A read or write of a present key: it becomes the most recent."""
        self.model.move_to_end(key)

    def model_set(self, key: Any, value: Value) -> None:
        if key in self.model:
            self.expected_events.append((key, self.model[key], "replaced"))
            self.model[key] = value
            self.touch(key)
            return
        self.model[key] = value
        while len(self.model) > self.capacity:
            victim, old = self.model.popitem(last=False)
            self.expected_events.append((victim, old, "size"))
            self.evictions += 1

    def model_read(self, key: Any) -> Value | None:
        if key in self.model:
            self.hits += 1
            self.touch(key)
            return self.model[key]
        self.misses += 1
        return None

    def model_remove(self, key: Any) -> Value | None:
        if key not in self.model:
            return None
        value = self.model.pop(key)
        self.expected_events.append((key, value, "explicit"))
        return value

    # ----- rules ----------------------------------------------------------------------

    @rule(key=keys)
    def set(self, key: Any) -> None:
        value = self.fresh()
        self.cache.set(key, value)
        self.model_set(key, value)

    @rule(key=keys)
    def get(self, key: Any) -> None:
        assert self.cache.get(key) is self.model_read(key)

    @rule(key=keys)
    def getitem(self, key: Any) -> None:
        expected = self.model_read(key)
        if expected is None:
            with pytest.raises(KeyError):
                self.cache[key]
        else:
            assert self.cache[key] is expected

    @rule(key=keys)
    def contains(self, key: Any) -> None:
        assert (key in self.cache) == (key in self.model)

    @rule(key=keys)
    def get_with(self, key: Any) -> None:
        value = self.fresh()
        got = self.cache.get_with(key, lambda: value)
        if key in self.model:
            self.hits += 1
            self.touch(key)
            assert got is self.model[key]
        else:
            self.misses += 1
            self.loads += 1
            assert got is value
            self.model_set(key, value)

    @rule(key=keys)
    def get_with_failing(self, key: Any) -> None:
        def initializer() -> Value:
            raise Failed

        if key in self.model:
            assert self.cache.get_with(key, initializer) is self.model_read(key)
        else:
            with pytest.raises(Failed):
                self.cache.get_with(key, initializer)
            self.misses += 1
            self.load_failures += 1

    @rule(key=keys)
    def remove(self, key: Any) -> None:
        assert self.cache.remove(key) is self.model_remove(key)

    @rule(key=keys)
    def delitem(self, key: Any) -> None:
        if key in self.model:
            del self.cache[key]
            self.model_remove(key)
        else:
            with pytest.raises(KeyError):
                del self.cache[key]

    @rule(batch=st.lists(keys, max_size=5))
    def set_many(self, batch: list[Any]) -> None:
        pairs = [(key, self.fresh()) for key in batch]
        self.cache.set_many(pairs)
        for key, value in pairs:
            self.model_set(key, value)

    @rule(batch=st.lists(keys, max_size=5))
    def get_many(self, batch: list[Any]) -> None:
        found = self.cache.get_many(batch)
        expected: dict[Any, Value] = {}
        for key in batch:
            value = self.model_read(key)
            if value is not None:
                expected[key] = value
        assert found.keys() == expected.keys()
        assert all(found[k] is v for k, v in expected.items())

    @rule(batch=st.lists(keys, max_size=5))
    def remove_many(self, batch: list[Any]) -> None:
        removed = sum(self.model_remove(key) is not None for key in batch)
        assert self.cache.remove_many(batch) == removed

    @rule(parity=st.integers(0, 1))
    def invalidate_if(self, parity: int) -> None:
        doomed = [k for k, v in self.model.items() if v.n % 2 == parity]
        assert self.cache.invalidate_if(lambda k, v: v.n % 2 == parity) == len(doomed)
        for key in doomed:
            self.model_remove(key)

    @rule()
    def clear(self) -> None:
        self.cache.clear()
        for key in list(self.model):
            self.model_remove(key)

    @rule()
    def copy_is_equal_and_independent(self) -> None:
        clone = copy.copy(self.cache)
        assert self.contents(clone) == self.contents(self.cache)

    # ----- checks ---------------------------------------------------------------------

    @staticmethod
    def contents(cache: Moka[Any, Value]) -> dict[Any, int]:
        items = cache.items()
        found = {key: id(value) for key, value in items}
        assert len(found) == len(items), f"a key is stored twice: {items}"
        return found

    @invariant()
    def same_contents(self) -> None:
        assert self.contents(self.cache) == {k: id(v) for k, v in self.model.items()}
        assert len(self.cache) == len(self.model)

    @invariant()
    def same_statistics(self) -> None:
        stats = self.cache.stats()
        assert (stats.hits, stats.misses) == (self.hits, self.misses)
        assert (stats.load_successes, stats.load_failures) == (self.loads, self.load_failures)
        assert stats.evictions == self.evictions
        assert stats.expirations == 0

    @invariant()
    def same_events(self) -> None:
        if not self.listener:
            return

        # Within one call, the order of several notifications is not specified.
        def canonical(events: list[tuple[Any, Value, str]]) -> Counter[tuple[int, int, str]]:
            return Counter((key_index(k), v.n, c) for k, v, c in events)

        assert canonical(self.reported) == canonical(self.expected_events)


class LruModel(CacheMachine):
    """A small LRU cache: exact eviction order, every departure reported."""

    capacity = 4
    policy = "lru"
    listener = True

    @invariant()
    def held_weight_within_capacity(self) -> None:
        assert self.cache.weighted_size() <= self.capacity


class TinyLfuModel(CacheMachine):
    """Room for every key, no listener at first (a plain engine); a per-entry ttl far in
    the future turns it into a timed engine mid-run."""

    capacity = len(KEYS) + 2
    policy = "tiny_lfu"
    listener = False

    @initialize()
    def start(self) -> None:
        self.timed = False

    @precondition(lambda self: not self.timed)
    @rule(key=keys)
    def set_with_ttl(self, key: Any) -> None:
        value = self.fresh()
        self.cache.set(key, value, ttl=3600)
        self.model_set(key, value)
        self.timed = True

    def touch(self, key: Any) -> None:
        # No eviction happens here, so recency does not matter.
        pass


class NotifiedModel(TinyLfuModel):
    """The same, with a listener and a cache-wide ttl far in the future (a notified
    engine): the switch to a timed engine mid-run must report nothing and lose nothing."""

    listener = True
    ttl = 3600.0


FAST = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
HEAVY = settings(FAST, max_examples=1500, stateful_step_count=80)

TestLruModel = LruModel.TestCase
TestLruModel.settings = FAST
TestTinyLfuModel = TinyLfuModel.TestCase
TestTinyLfuModel.settings = FAST
TestNotifiedModel = NotifiedModel.TestCase
TestNotifiedModel.settings = FAST


@pytest.mark.stress
@pytest.mark.parametrize(
    "machine", [LruModel, TinyLfuModel, NotifiedModel], ids=["lru", "tiny_lfu", "notified"]
)
def test_models_stress(machine: type[CacheMachine]) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(machine, settings=HEAVY)


# ----- the collisions the model found, spelled out -----------------------------------


@pytest.mark.parametrize("order", ["chain first", "other hash first"])
def test_keys_whose_slots_coincide_are_kept_apart(order: str) -> None:
    # Two keys of hash 0 take probes 0 and 1; probe 1's slot is also probe 0 of hash
    # PROBE_STRIDE, whose own probe 1 is probe 0 of hash 0 again.
    first, second = Named("first", 0), Named("second", 0)
    other = Named("other", signed(PROBE_STRIDE))
    reported: list[Any] = []
    cache: Moka[Any, str] = Moka(10, eviction_listener=lambda k, v, c: reported.append((k, c)))
    sequence = [first, second, other] if order == "chain first" else [other, first, second]
    for key in sequence:
        cache.set(key, key.name)
    assert reported == []
    assert {k.name: v for k, v in cache.items()} == {k.name: k.name for k in sequence}
    for key in sequence:
        assert cache.get(Named(key.name, key.hash)) == key.name
    assert len(cache) == 3
    for key in sequence:
        assert cache.remove(Named(key.name, key.hash)) == key.name
    assert len(cache) == 0
