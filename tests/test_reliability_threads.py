"""Reliability under threads: no hang, no lost entry, no broken bound.

Every value put into a cache is unique, so the books can be balanced afterwards:
each value ever inserted is either still in the cache or was reported to the
listener, exactly once. Callbacks (listener, weigher, initializer, expiry hooks,
keys' `__hash__`/`__eq__`, values' `__del__`) misbehave on purpose: they call back
into the cache, take locks other threads hold, sleep, and raise.

Fast variants run in the default suite; `@pytest.mark.stress` ones (`nox -s stress`)
run more threads for longer. Each test creates its own cache and threads, so they
also run under pytest-run-parallel, except those marked `thread_unsafe` (they touch
interpreter-wide state such as `sys.unraisablehook` or the switch interval).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any, Callable

import pytest

from moka_py import Moka
from tests.conftest import run_threads, settle

POLICIES = ["tiny_lfu", "lru"]


class PyKey:
    """A key compared by Python code, with many deliberate hash collisions."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return self.n % 17

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PyKey) and other.n == self.n

    def __repr__(self) -> str:
        return f"PyKey({self.n})"


class YieldingKey(PyKey):
    """A `PyKey` whose `__eq__` hands the GIL to another thread before answering, so
    that other threads change the cache between a write's lookup and its insert."""

    __slots__ = ()

    def __hash__(self) -> int:
        return self.n % 3

    def __eq__(self, other: object) -> bool:
        time.sleep(0)
        return isinstance(other, PyKey) and other.n == self.n


def key_for(n: int) -> Any:
    """Keys of several kinds: natively compared ints/strs/tuples and Python `PyKey`s."""
    kind = n % 4
    if kind == 0:
        return n
    if kind == 1:
        return f"s{n}"
    if kind == 2:
        return PyKey(n)
    return (n, "t")


class Books:
    """The accounting of one run: unique values handed out, and what the listener saw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = itertools.count()
        self.inserted: list[int] = []
        self.reported: collections.Counter[int] = collections.Counter()
        self.causes: collections.Counter[str] = collections.Counter()

    def fresh(self) -> int:
        """A value never used before, recorded as inserted by the caller's next write."""
        with self._lock:
            value = next(self._next)
            self.inserted.append(value)
            return value

    def forget(self, value: int) -> None:
        """The write of `value` did not happen (it raised before reaching the cache)."""
        with self._lock:
            self.inserted.remove(value)

    def listener(self, key: Any, value: int, cause: str) -> None:
        with self._lock:
            self.reported[value] += 1
            self.causes[cause] += 1

    def check_balanced(self, cache: Moka[Any, int]) -> None:
        """Every value is present or reported, never both, never twice; then, once the
        cache is cleared, every value ever inserted was reported exactly once."""
        cache.run_pending_tasks()
        present = collections.Counter(cache.values())
        assert all(n == 1 for n in present.values()), "a value is stored twice"
        twice = [v for v, n in self.reported.items() if n > 1]
        assert not twice, f"values reported more than once: {twice[:10]}"
        both = set(present) & set(self.reported)
        assert not both, f"values both present and reported: {sorted(both)[:10]}"
        unknown = (set(present) | set(self.reported)) - set(self.inserted)
        assert not unknown, f"values never inserted: {sorted(unknown)[:10]}"
        cache.clear()
        assert len(cache) == 0
        missing = set(self.inserted) - set(self.reported)
        assert not missing, f"{len(missing)} values vanished unreported: {sorted(missing)[:10]}"
        twice = [v for v, n in self.reported.items() if n > 1]
        assert not twice, f"values reported more than once: {twice[:10]}"
        assert sum(self.reported.values()) == len(self.inserted)


def accounting_worker(
    cache: Moka[Any, int], books: Books, capacity: int, seed: int, ops: int, keyspace: int
) -> None:
    """Mixed operations; after each one the held weight must be within the capacity."""
    rng = random.Random(seed)
    for step in range(ops):
        n = rng.randrange(keyspace)
        key = key_for(n)
        op = rng.randrange(16)
        if op < 4:
            cache.set(key, books.fresh(), ttl=0.05 if op == 0 and n % 5 == 0 else None)
        elif op < 7:
            cache.get(key)
        elif op == 7:
            cache.remove(key)
        elif op == 8:
            cache.get_with(key, books.fresh)
        elif op == 9:
            cache.set_many({key: books.fresh(), key_for(n + 1): books.fresh()})
        elif op == 10:
            cache.get_many([key, key_for(n + 1)])
        elif op == 11:
            cache.remove_many([key, key_for(n + 2)])
        elif op == 12:
            key in cache  # noqa: B015
            cache.get(key, -1)
        elif op == 13:
            for _ in cache.items():
                pass
        elif op == 14:
            assert len(cache) <= capacity
        else:
            with suppress(KeyError):
                del cache[key]
        size = cache.weighted_size()
        assert size <= capacity, f"weighted_size() {size} > capacity {capacity} at step {step}"


def run_accounting(policy: str, threads: int, ops: int, *, weigher: bool, seed: int) -> int:
    capacity = 60
    books = Books()
    cache: Moka[Any, int] = Moka(
        capacity,
        ttl=0.5,
        eviction_listener=books.listener,
        policy=policy,
        weigher=(lambda k, v: 1 + v % 3) if weigher else None,
    )
    run_threads(
        [
            lambda s=s: accounting_worker(cache, books, capacity, seed * 1000 + s, ops, 240)
            for s in range(threads)
        ],
        timeout=120,
    )
    assert cache.weighted_size() <= capacity
    books.check_balanced(cache)
    # The run did exercise every way out of the cache.
    assert {"replaced", "explicit", "size"} <= set(books.causes), books.causes
    return threads * ops


@pytest.mark.parametrize("weigher", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("policy", POLICIES)
def test_every_value_is_present_or_reported_once(policy: str, weigher: bool) -> None:
    run_accounting(policy, threads=6, ops=1500, weigher=weigher, seed=1)


@pytest.mark.stress
@pytest.mark.parametrize("weigher", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("policy", POLICIES)
def test_every_value_is_present_or_reported_once_stress(policy: str, weigher: bool) -> None:
    for seed in range(2):
        run_accounting(policy, threads=12, ops=6000, weigher=weigher, seed=seed)


def run_same_keys(policy: str, threads: int, ops: int, listener: bool) -> None:
    # Few keys, all colliding, compared by an `__eq__` that switches threads: writes of
    # equal keys race between their lookup and their insert, which must re-check.
    books = Books()
    cache: Moka[Any, int] = Moka(
        1000, policy=policy, eviction_listener=books.listener if listener else None
    )

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(ops):
            key = YieldingKey(rng.randrange(12))
            op = rng.randrange(5)
            if op < 3:
                cache.set(key, books.fresh())
            elif op == 3:
                cache.remove(key)
            else:
                cache.get_with(key, books.fresh)

    run_threads([lambda s=s: worker(s) for s in range(threads)], timeout=120)
    keys = [k.n for k in cache]
    assert len(keys) == len(set(keys)), f"one key stored twice: {sorted(keys)}"
    assert len(cache) == len(keys) <= 12
    for n in keys:
        assert cache.get(YieldingKey(n)) is not None
    if listener:
        books.check_balanced(cache)


@pytest.mark.parametrize("listener", [False, True], ids=["plain", "listener"])
@pytest.mark.parametrize("policy", POLICIES)
def test_racing_writes_of_equal_keys_never_store_a_key_twice(policy: str, listener: bool) -> None:
    run_same_keys(policy, threads=6, ops=600, listener=listener)


@pytest.mark.stress
@pytest.mark.thread_unsafe(reason="changes the interpreter-wide switch interval")
@pytest.mark.parametrize("listener", [False, True], ids=["plain", "listener"])
@pytest.mark.parametrize("policy", POLICIES)
def test_racing_writes_of_equal_keys_never_store_a_key_twice_stress(
    policy: str, listener: bool
) -> None:
    with fast_switching():
        run_same_keys(policy, threads=12, ops=4000, listener=listener)


def run_same_hash_pair(rounds: int, listener: bool) -> None:
    # Two distinct keys of one hash (-1 and -2 hash alike), written at the same moment
    # into an empty cache, both want probe 0 of that hash. The second writer must see
    # the first one's entry and take the next probe; taking the same slot would drop the
    # first key and report it "replaced". With a GIL the two writes cannot interleave;
    # a free-threaded build runs them truly at once, which is what this checks there.
    assert hash(-1) == hash(-2)  # on every interpreter we support, as test_keys checks
    causes: list[str] = []
    cache: Moka[int, int] = Moka(
        100, eviction_listener=(lambda k, v, cause: causes.append(cause)) if listener else None
    )
    lost: list[tuple[int, tuple[Any, Any]]] = []
    state = {"round": 0}

    def check_and_clear() -> None:
        # Runs in one thread once both writers finished the round.
        r = state["round"]
        got = (cache.get(-1), cache.get(-2))
        if got != (r, r):
            lost.append((r, got))
        cache.clear()
        state["round"] = r + 1

    start = threading.Barrier(2, timeout=60)
    done = threading.Barrier(2, action=check_and_clear, timeout=60)

    def writer(key: int) -> None:
        for r in range(rounds):
            start.wait()
            cache.set(key, r)
            done.wait()

    run_threads([lambda: writer(-1), lambda: writer(-2)], timeout=120)
    assert state["round"] == rounds
    assert lost == [], f"a key written beside another of its hash was lost: {lost[:5]}"
    assert "replaced" not in causes
    if listener:
        assert causes.count("explicit") == 2 * rounds


@pytest.mark.parametrize("listener", [False, True], ids=["plain", "listener"])
def test_keys_of_one_hash_written_at_once_both_stay(listener: bool) -> None:
    run_same_hash_pair(rounds=2000, listener=listener)


@pytest.mark.stress
@pytest.mark.parametrize("listener", [False, True], ids=["plain", "listener"])
def test_keys_of_one_hash_written_at_once_both_stay_stress(listener: bool) -> None:
    run_same_hash_pair(rounds=50_000, listener=listener)


@contextmanager
def fast_switching() -> Iterator[None]:
    """Makes the GIL change hands far more often, for more interleavings."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


# ----- hostile callbacks -----------------------------------------------------------


class Injected(Exception):
    """Raised on purpose by a misbehaving callback."""


class Hostility:
    """What every callback does when it runs: usually nothing, sometimes call back
    into the cache, take a lock that other threads hold around cache calls, sleep,
    or raise. Decisions come from a per-thread seeded generator."""

    def __init__(self, cache_ref: list[Moka[Any, Any]], raising: bool) -> None:
        self.cache_ref = cache_ref
        self.raising = raising
        self.lock = threading.RLock()
        self.local = threading.local()
        self.calls = 0
        self.enabled = True

    def rng(self) -> random.Random:
        rng: random.Random | None = getattr(self.local, "rng", None)
        if rng is None:
            rng = self.local.rng = random.Random(threading.get_ident())
            self.local.depth = 0
        return rng

    def act(self, where: str) -> None:
        rng = self.rng()
        if not self.enabled:
            return
        self.calls += 1
        choice = rng.randrange(20)
        if choice == 0 and self.raising:
            raise Injected(where)
        if choice == 1:
            time.sleep(0.0002)
        elif choice == 2:
            time.sleep(0)
        elif choice == 3:
            with self.lock:
                pass
        elif choice in (4, 5) and self.local.depth == 0:
            self.local.depth += 1
            try:
                self.reenter(rng)
            except Injected:
                pass
            finally:
                self.local.depth -= 1

    def reenter(self, rng: random.Random) -> None:
        cache = self.cache_ref[0]
        side = f"side-{rng.randrange(8)}"
        op = rng.randrange(6)
        if op == 0:
            cache.get(side)
        elif op == 1:
            cache.set(side, Value(-1, self))
        elif op == 2:
            cache.remove(side)
        elif op == 3:
            len(cache)
        elif op == 4:
            cache.get_with(f"{side}-{threading.get_ident()}", lambda: Value(-2, self))
        else:
            side in cache  # noqa: B015


class HostileKey:
    __slots__ = ("hostility", "n")

    def __init__(self, n: int, hostility: Hostility) -> None:
        self.n = n
        self.hostility = hostility

    def __hash__(self) -> int:
        self.hostility.act("hash")
        return self.n % 7

    def __eq__(self, other: object) -> bool:
        self.hostility.act("eq")
        return isinstance(other, HostileKey) and other.n == self.n


class Value:
    """A value whose release runs Python code (`__del__`) that may use the cache."""

    __slots__ = ("hostility", "n")

    def __init__(self, n: int, hostility: Hostility) -> None:
        self.n = n
        self.hostility = hostility

    def __del__(self) -> None:
        # Never raises from __del__ (that is the unraisable hook's business) and
        # never writes (a write may release more values: an endless chain).
        if self.hostility.rng().randrange(8) == 0 and self.hostility.local.depth == 0:
            self.hostility.local.depth += 1
            try:
                self.hostility.cache_ref[0].get(f"side-{self.n % 8}")
            finally:
                self.hostility.local.depth -= 1


class HostileExpiry:
    def __init__(self, hostility: Hostility) -> None:
        self.hostility = hostility

    def expire_after_create(self, key: Any, value: Any) -> float | None:
        self.hostility.act("expire_after_create")
        return 0.2 if isinstance(key, HostileKey) else None

    def expire_after_read(self, key: Any, value: Any, remaining: float | None) -> float | None:
        self.hostility.act("expire_after_read")
        return None

    def expire_after_update(self, key: Any, value: Any, remaining: float | None) -> float | None:
        self.hostility.act("expire_after_update")
        return 0.3


def run_hostile(
    policy: str, threads: int, ops: int, *, raising: bool, expiry: bool, unraisable: list[Any]
) -> None:
    cache_ref: list[Moka[Any, Any]] = []
    hostility = Hostility(cache_ref, raising)
    reported: collections.Counter[str] = collections.Counter()
    reported_lock = threading.Lock()

    def listener(key: Any, value: Any, cause: str) -> None:
        with reported_lock:
            reported[cause] += 1
        hostility.act("listener")

    def weigher(key: Any, value: Any) -> int:
        hostility.act("weigher")
        return 1 + (hash(key) & 1)

    capacity = 40
    cache: Moka[Any, Any] = Moka(
        capacity,
        tti=2,
        eviction_listener=listener,
        policy=policy,
        weigher=weigher,
        expiry=HostileExpiry(hostility) if expiry else None,
    )
    cache_ref.append(cache)
    caught: collections.Counter[str] = collections.Counter()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(ops):
            key = HostileKey(rng.randrange(60), hostility)
            op = rng.randrange(10)
            # Half the calls are made holding the lock that callbacks also take; not
            # get_with, which may wait for an initializer that takes it (a deadlock of
            # the caller's making, as with any single-flight loader).
            guard: AbstractContextManager[Any] = (
                hostility.lock if op != 7 and rng.randrange(2) else nullcontext()
            )
            try:
                with guard:
                    if op < 3:
                        cache.set(key, Value(op, hostility))
                    elif op < 6:
                        cache.get(key)
                    elif op == 6:
                        cache.remove(key)
                    elif op == 7:

                        def initializer() -> Value:
                            hostility.act("initializer")
                            return Value(7, hostility)

                        cache.get_with(key, initializer)
                    elif op == 8:
                        assert len(cache) <= capacity
                    else:
                        cache.items()
            except Injected as exc:
                caught[str(exc)] += 1
            assert cache.weighted_size() <= capacity

    run_threads([lambda s=s: worker(s) for s in range(threads)], timeout=120)
    hostility.enabled = False
    # Usable afterwards, with the bound intact and its contents coherent.
    assert cache.weighted_size() <= capacity
    keys = [getattr(k, "n", k) for k in cache]
    assert len(keys) == len(set(keys)), f"one key stored twice: {keys}"
    assert len(cache) <= capacity
    cache.clear()
    assert len(cache) == 0
    cache.set("after", 1)
    assert cache.get("after") == 1
    assert hostility.calls > threads * ops
    if raising:
        # Exceptions from key methods, weigher and initializer reached the callers;
        # the listener's went to the unraisable hook.
        assert {"hash", "weigher"} <= set(caught), caught
        assert any(isinstance(u.exc_value, Injected) for u in unraisable)
        unexpected = [u.exc_value for u in unraisable if not isinstance(u.exc_value, Injected)]
        assert not unexpected, unexpected[:3]


@pytest.mark.thread_unsafe(reason="the unraisable fixture replaces sys.unraisablehook")
@pytest.mark.parametrize("expiry", [False, True], ids=["ttl", "expiry"])
@pytest.mark.parametrize("policy", POLICIES)
def test_hostile_callbacks_never_deadlock(policy: str, expiry: bool, unraisable: list[Any]) -> None:
    run_hostile(policy, threads=6, ops=400, raising=True, expiry=expiry, unraisable=unraisable)


@pytest.mark.parametrize("policy", POLICIES)
def test_reentrant_callbacks_that_never_raise(policy: str) -> None:
    # The same without exceptions, so it needs no global hook and runs in parallel too.
    run_hostile(policy, threads=4, ops=300, raising=False, expiry=True, unraisable=[])


@pytest.mark.stress
@pytest.mark.thread_unsafe(reason="replaces sys.unraisablehook and the switch interval")
@pytest.mark.parametrize("expiry", [False, True], ids=["ttl", "expiry"])
@pytest.mark.parametrize("policy", POLICIES)
def test_hostile_callbacks_never_deadlock_stress(
    policy: str, expiry: bool, unraisable: list[Any]
) -> None:
    with fast_switching():
        run_hostile(
            policy, threads=12, ops=3000, raising=True, expiry=expiry, unraisable=unraisable
        )


# ----- single flight ---------------------------------------------------------------


def run_single_flight(threads: int, ops: int) -> int:
    """Initializers of one key never overlap, every caller gets a value its key's
    initializer produced, and removals racing with loads lose nothing."""
    cache: Moka[Any, tuple[int, int]] = Moka(50, policy="lru")
    running: set[int] = set()
    running_lock = threading.Lock()
    overlaps: list[int] = []
    generation = itertools.count()
    loads = 0
    requests = 0

    def initializer(n: int) -> tuple[int, int]:
        nonlocal loads
        with running_lock:
            if n in running:
                overlaps.append(n)
            running.add(n)
            loads += 1
        time.sleep(0.0005)
        with running_lock:
            running.discard(n)
        return (n, next(generation))

    def worker(seed: int) -> None:
        nonlocal requests
        rng = random.Random(seed)
        for _ in range(ops):
            n = rng.randrange(20)
            key: Any = PyKey(n) if n % 2 else n
            if rng.randrange(6) == 0:
                cache.remove(key)
            else:
                with running_lock:
                    requests += 1
                value = cache.get_with(key, lambda n=n: initializer(n))
                assert value[0] == n, f"{key!r} got the value of key {value[0]}"

    run_threads([lambda s=s: worker(s) for s in range(threads)], timeout=120)
    assert not overlaps, f"initializers of one key ran concurrently: {overlaps[:10]}"
    stats = cache.stats()
    assert stats.load_successes == loads
    assert stats.hits + stats.misses == requests
    return loads


def test_single_flight_under_churn() -> None:
    assert run_single_flight(threads=6, ops=300) > 20


@pytest.mark.stress
def test_single_flight_under_churn_stress() -> None:
    assert run_single_flight(threads=16, ops=3000) > 100


# ----- async callers on many threads and loops -------------------------------------


def run_async_threads(threads: int, rounds: int, *, cancel: bool) -> None:
    """Threads, each with its own event loop, await the same keys. Without
    cancellations one key is never computed twice at once; with them (a cancelled
    computation may still be winding down when the next one starts) nothing hangs,
    no computation is left running, and every await that was not cancelled gets
    its key's value."""
    cache: Moka[Any, Any] = Moka(100)
    running: collections.Counter[int] = collections.Counter()
    overlaps: list[int] = []
    lock = threading.Lock()
    completed = 0

    async def factory(n: int) -> tuple[int, str]:
        with lock:
            if running[n]:
                overlaps.append(n)
            running[n] += 1
        try:
            await asyncio.sleep(0.001)
        finally:
            with lock:
                running[n] -= 1
        return (n, "computed")

    def worker(seed: int) -> None:
        rng = random.Random(seed)

        async def one_round() -> None:
            nonlocal completed
            keys = [rng.randrange(8) for _ in range(6)]
            tasks = [
                asyncio.ensure_future(cache.aget_with(k, lambda k=k: factory(k))) for k in keys
            ]
            await asyncio.sleep(0)
            for task in tasks:
                if cancel and rng.randrange(4) == 0:
                    task.cancel()
            for key, task in zip(keys, tasks):
                try:
                    assert await task == (key, "computed")
                except asyncio.CancelledError:
                    assert cancel
                else:
                    with lock:
                        completed += 1
            if rng.randrange(3) == 0:
                cache.remove(rng.randrange(8))

        async def main() -> None:
            for _ in range(rounds):
                await one_round()

        asyncio.run(main())

    run_threads([lambda s=s: worker(s) for s in range(threads)], timeout=120)
    if not cancel:
        assert not overlaps, f"one key computed twice at once: {overlaps[:10]}"
        assert completed == threads * rounds * 6
    assert not +running, f"computations left running: {+running}"
    assert all(cache.get(k) in (None, (k, "computed")) for k in range(8))
    assert cache.stats().load_successes >= 1


@pytest.mark.thread_unsafe(reason="each worker thread runs its own event loop")
@pytest.mark.parametrize("cancel", [False, True], ids=["shared", "cancelled"])
def test_aget_with_across_threads_and_loops(cancel: bool) -> None:
    run_async_threads(threads=4, rounds=30, cancel=cancel)


@pytest.mark.stress
@pytest.mark.thread_unsafe(reason="each worker thread runs its own event loop")
@pytest.mark.parametrize("cancel", [False, True], ids=["shared", "cancelled"])
def test_aget_with_across_threads_and_loops_stress(cancel: bool) -> None:
    run_async_threads(threads=12, rounds=400, cancel=cancel)


# ----- whole-cache operations racing with writers ----------------------------------


def run_whole_cache_ops(threads: int, ops: int) -> None:
    import copy
    import pickle

    books = Books()
    cache: Moka[Any, int] = Moka(80, eviction_listener=books.listener, ttl=1)

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(ops):
            cache.set(key_for(rng.randrange(200)), books.fresh())

    def janitor(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(ops // 10):
            op = rng.randrange(5)
            if op == 0:
                cache.clear()
            elif op == 1:
                cache.invalidate_if(lambda k, v: v % 3 == 0)
            elif op == 2:
                clone = copy.copy(cache)
                assert len(clone) <= 80
                clone.clear()  # its listener is ours: the clone's departures count too
            elif op == 3:
                snapshot = pickle.loads(pickle.dumps(Moka(10, ttl=1)))
                assert len(snapshot) == 0
            else:
                cache.run_pending_tasks()
                cache.stats()

    targets: list[Callable[[], None]] = [lambda s=s: writer(s) for s in range(threads)]
    targets += [lambda: janitor(99), lambda: janitor(98)]
    run_threads(targets, timeout=120)
    assert cache.weighted_size() <= 80
    keys = cache.keys()
    assert len(keys) == len(cache)


def test_clear_copy_and_invalidate_if_racing_with_writers() -> None:
    run_whole_cache_ops(threads=4, ops=1500)


@pytest.mark.stress
def test_clear_copy_and_invalidate_if_racing_with_writers_stress() -> None:
    run_whole_cache_ops(threads=12, ops=12000)


# ----- threads that come and go ---------------------------------------------------------


class Stored:
    """A value whose release the test can observe."""

    __slots__ = ("__weakref__", "gen", "i")

    def __init__(self, gen: int, i: int) -> None:
        self.gen, self.i = gen, i


def run_short_lived_threads(generations: int, per_generation: int, ops: int) -> None:
    """Threads that write, remove and exit while a long-lived reader keeps looking up the
    same colliding keys. moka frees removed entries through crossbeam-epoch, whose
    thread-exit handler may run those frees on the exiting thread without the GIL; the
    lookups compare against the removed entries' keys meanwhile, and what such a thread
    frees must still be released (by another thread) once it is gone."""
    cache: Moka[Any, Stored] = Moka(64)
    keys: list[Any] = [PyKey(n) for n in range(48)] + [f"s{n}" for n in range(48)]
    stop = threading.Event()
    seen: list[tuple[int, int]] = []
    refs: list[weakref.ref[Stored]] = []

    def reader() -> None:
        rng = random.Random(0)
        while not stop.is_set():
            value = cache.get(rng.choice(keys))
            if value is not None:
                seen.append((value.gen, value.i))

    def worker(gen: int, w: int) -> None:
        rng = random.Random(gen * 1000 + w)
        for i in range(ops):
            key = rng.choice(keys)
            if rng.random() < 0.5:
                value = Stored(gen, i)
                refs.append(weakref.ref(value))
                cache.set(key, value)
                del value
            else:
                cache.remove(key)

    reading = threading.Thread(target=reader, daemon=True)
    reading.start()
    try:
        for gen in range(generations):
            run_threads([lambda gen=gen, w=w: worker(gen, w) for w in range(per_generation)])
    finally:
        stop.set()
        reading.join(60)
    assert not reading.is_alive()
    assert all(0 <= gen < generations and 0 <= i < ops for gen, i in seen)
    present = {key: cache.get(key) for key in keys if key in cache}
    assert len(present) == len(cache) <= 64
    assert all(value is not None for value in present.values())
    del present
    cache.clear()
    settle(cache)
    held = [ref() for ref in refs if ref() is not None]
    assert not held, f"{len(held)} removed values never released"


def test_threads_that_exit_while_entries_are_removed() -> None:
    run_short_lived_threads(generations=30, per_generation=4, ops=300)


@pytest.mark.stress
def test_threads_that_exit_while_entries_are_removed_stress() -> None:
    run_short_lived_threads(generations=400, per_generation=6, ops=500)
