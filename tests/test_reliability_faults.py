"""Fault injection: user code raising at every point where the cache calls it.

A scenario of operations is run once to count the calls into user code (key
`__hash__`/`__eq__`, weigher, listener, expiry hooks, initializer, `invalidate_if`
predicate, values' `__deepcopy__` and `__del__`), then once more for each of those
calls, making exactly that call raise. Each time the exception must reach the caller
(or `sys.unraisablehook` for the listener and `__del__`), the failed operation must
leave the cache as it was, and the cache must stay usable.

The same is done for `aget_with`, and for interrupts: a `KeyboardInterrupt` raised
by an initializer or delivered by a real SIGINT while `get_with` waits.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import gc
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import pytest

from moka_py import Moka
from tests.conftest import run_threads

# Every scenario here replaces sys.unraisablehook (through the `unraisable` fixture).
pytestmark = pytest.mark.thread_unsafe(reason="faults are counted across the whole test")


class Fault(Exception):
    """The exception injected at one call into user code."""

    def __init__(self, point: str, serial: int) -> None:
        super().__init__(f"injected fault #{serial} in {point}")
        self.point = point


class Faults:
    """Counts calls into user code and makes call number `trip_at` raise."""

    # Faults raised here can only reach sys.unraisablehook, never the caller.
    UNRAISABLE = frozenset({"listener", "del"})

    def __init__(self, trip_at: int = 0) -> None:
        self.trip_at = trip_at
        self.count = 0
        self.paused = 0
        self.raised: Fault | None = None
        self.seen: collections.Counter[str] = collections.Counter()

    def point(self, name: str) -> None:
        if self.paused:
            return
        self.count += 1
        self.seen[name] += 1
        if self.count == self.trip_at:
            self.raised = Fault(name, self.count)
            raise self.raised

    def __deepcopy__(self, memo: dict[int, Any]) -> Faults:
        # Deep copies of keys, values and hooks keep reporting to the same counter.
        return self

    @contextmanager
    def pause(self) -> Iterator[None]:
        self.paused += 1
        try:
            yield
        finally:
            self.paused -= 1


class FKey:
    """A key whose `__hash__` and `__eq__` are fault points. Keys of one `group` share
    a hash, so finding one compares it with the others."""

    def __init__(self, faults: Faults, name: str, group: int) -> None:
        self.faults = faults
        self.name = name
        self.group = group

    def __hash__(self) -> int:
        self.faults.point("hash")
        return self.group

    def __eq__(self, other: object) -> bool:
        self.faults.point("eq")
        return isinstance(other, FKey) and other.name == self.name

    def __repr__(self) -> str:
        return f"FKey({self.name})"


class FValue:
    """A value whose deep copy and release are fault points."""

    def __init__(self, faults: Faults, n: int) -> None:
        self.faults = faults
        self.n = n

    def __deepcopy__(self, memo: dict[int, Any]) -> FValue:
        self.faults.point("deepcopy")
        return FValue(self.faults, self.n)

    if sys.implementation.name == "cpython":
        # Only where reference counting makes the moment of release deterministic.
        def __del__(self) -> None:
            self.faults.point("del")

    def __repr__(self) -> str:
        return f"FValue({self.n})"


class FExpiry:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def expire_after_create(self, key: Any, value: Any) -> float:
        self.faults.point("expire_after_create")
        return 3600.0

    def expire_after_read(self, key: Any, value: Any, remaining: float | None) -> None:
        self.faults.point("expire_after_read")

    def expire_after_update(self, key: Any, value: Any, remaining: float | None) -> float:
        self.faults.point("expire_after_update")
        return 3600.0


CONFIGS = {
    # A plain engine (no listener, no expiry): updates swap values in place.
    "plain": {"policy": "tiny_lfu", "weigher": True},
    "listener-lru": {"policy": "lru", "weigher": True, "listener": True},
    "listener-expiry": {"policy": "tiny_lfu", "weigher": True, "listener": True, "expiry": True},
}


def build(
    faults: Faults, config: str, capacity: int = 1000
) -> tuple[Moka[FKey, FValue], list[Any]]:
    options = CONFIGS[config]
    reported: list[Any] = []

    def listener(key: FKey, value: FValue, cause: str) -> None:
        reported.append((key.name, value.n, cause))
        faults.point("listener")

    def weigher(key: FKey, value: FValue) -> int:
        faults.point("weigher")
        return 1

    cache: Moka[FKey, FValue] = Moka(
        capacity,
        policy=options["policy"],
        weigher=weigher if options.get("weigher") else None,
        eviction_listener=listener if options.get("listener") else None,
        expiry=FExpiry(faults) if options.get("expiry") else None,
    )
    return cache, reported


class Scenario:
    """A fixed sequence of operations with a model of the contents they produce."""

    def __init__(self, faults: Faults, config: str) -> None:
        self.faults = faults
        self.cache, self.reported = build(faults, config)
        self.model: dict[str, int] = {}
        self.keys = {
            name: FKey(faults, name, group)
            for name, group in [("a", 0), ("b", 0), ("c", 1), ("d", 0), ("e", 2), ("f", 1)]
        }
        self.serial = 0

    def value(self) -> FValue:
        self.serial += 1
        return FValue(self.faults, self.serial)

    def contents(self) -> dict[str, int]:
        with self.faults.pause():
            items = self.cache.items()
            assert len(self.cache) == len(items)
            found = {k.name: v.n for k, v in items}
            assert len(found) == len(items), f"a key is stored twice: {items}"
            for name, n in found.items():
                assert self.cache.get(self.keys[name]).n == n
            return found

    def operations(self) -> list[tuple[str, Callable[[], Any], Callable[[], None]]]:
        """(name, call, what it does to the model when it succeeds). Bulk operations
        give one model step per item (a list): a failure may leave any prefix applied."""
        cache, k, model = self.cache, self.keys, self.model

        def setting(name: str, **kw: Any) -> tuple[Callable[[], Any], Callable[[], None]]:
            v = self.value()
            return (lambda: cache.set(k[name], v, **kw)), (lambda: model.__setitem__(name, v.n))

        def loading(name: str) -> tuple[Callable[[], Any], Callable[[], None]]:
            v = self.value()

            def initializer() -> FValue:
                self.faults.point("initializer")
                return v

            return (lambda: cache.get_with(k[name], initializer)), (
                lambda: model.setdefault(name, v.n) and None
            )

        def predicate(key: FKey, value: FValue) -> bool:
            self.faults.point("predicate")
            return key.name == "c"

        def nothing() -> None:
            pass

        v6, v7 = self.value(), self.value()
        setitem_value = self.value()

        def delete(name: str) -> Callable[[], None]:
            return lambda: model.pop(name, None) and None

        def delete_item(name: str) -> None:
            # An earlier injected fault may have kept the key out: KeyError is right then.
            try:
                del cache[k[name]]
            except KeyError:
                assert name not in model, f"del found no {name!r} but it is there"

        def independent_copy(deep: bool) -> None:
            clone = copy.deepcopy(cache) if deep else copy.copy(cache)
            with self.faults.pause():
                assert {key.name for key in clone} == set(model)

        return [
            ("set a", *setting("a")),
            ("set b", *setting("b")),
            ("set c", *setting("c")),
            ("get a", lambda: cache.get(k["a"]), nothing),
            ("replace a", *setting("a")),
            ("get_with d (miss)", *loading("d")),
            ("get_with a (hit)", *loading("a")),
            ("remove b", lambda: cache.remove(k["b"]), delete("b")),
            (
                "set_many b, e",
                lambda: cache.set_many([(k["b"], v6), (k["e"], v7)]),
                [lambda: model.__setitem__("b", v6.n), lambda: model.__setitem__("e", v7.n)],
            ),
            ("get_many", lambda: cache.get_many([k["a"], k["b"], k["e"], k["f"]]), nothing),
            ("contains c", lambda: k["c"] in cache, nothing),
            ("copy", lambda: independent_copy(deep=False), nothing),
            (
                "invalidate_if",
                lambda: cache.invalidate_if(predicate),
                delete("c"),
            ),
            ("del e", lambda: delete_item("e"), delete("e")),
            (
                "setitem f",
                lambda: cache.__setitem__(k["f"], setitem_value),
                lambda: model.__setitem__("f", setitem_value.n),
            ),
            ("deepcopy", lambda: independent_copy(deep=True), nothing),
            ("replace a with ttl", *setting("a", ttl=3600)),
            (
                "remove_many",
                lambda: cache.remove_many([k["f"], k["d"]]),
                [delete("f"), delete("d")],
            ),
            ("clear", cache.clear, model.clear),
        ]

    def run(self) -> list[tuple[str, Fault | None]]:
        """Runs every operation; returns which ones raised which fault."""
        outcomes: list[tuple[str, Fault | None]] = []
        for name, call, apply in self.operations():
            steps = apply if isinstance(apply, list) else [apply]
            before = self.contents()
            assert before == self.model, f"before {name}: {before} != model {self.model}"
            try:
                call()
            except Fault as fault:
                outcomes.append((name, fault))
                self.check_partial(name, fault, steps[:-1])
            else:
                outcomes.append((name, None))
                for step in steps:
                    step()
        assert self.contents() == self.model
        return outcomes

    def check_partial(self, name: str, fault: Fault, steps: list[Callable[[], None]]) -> None:
        """A failed operation changed nothing; a failed bulk operation stopped at the
        failing item, after applying the items before it (`steps`)."""
        after = self.contents()
        allowed = [dict(self.model)]
        for step in steps:
            step()
            allowed.append(dict(self.model))
        assert after in allowed, f"{name} failed with {fault}, leaving {after}"
        self.model.clear()
        self.model.update(after)


def count_points(config: str) -> collections.Counter[str]:
    faults = Faults()
    scenario = Scenario(faults, config)
    scenario.run()
    faults.paused += 1  # values released from here on are not part of the scenario
    return faults.seen


def check_usable(cache: Moka[FKey, FValue], faults: Faults) -> None:
    key = FKey(faults, "after", 0)
    cache.set(key, FValue(faults, -1))
    assert cache.get(key).n == -1
    assert cache.get_with(FKey(faults, "after2", 0), lambda: FValue(faults, -2)).n == -2
    assert len(cache) == 2
    cache.clear()


def run_with_every_fault(config: str, unraisable: list[Any]) -> int:
    total = sum(count_points(config).values())
    assert total > 50
    for trip_at in range(1, total + 1):
        faults = Faults(trip_at)
        unraisable.clear()
        scenario = Scenario(faults, config)
        outcomes = scenario.run()
        faults.paused += 1
        fault = faults.raised
        assert fault is not None, f"fault #{trip_at} was never reached"
        raised = [f for _, f in outcomes if f is not None]
        hooked = [u.exc_value for u in unraisable if isinstance(u.exc_value, Fault)]
        expected = ([], [fault]) if fault.point in Faults.UNRAISABLE else ([fault], [])
        assert (raised, hooked) == expected, f"{fault} went to the wrong place"
        # Still usable: a fresh round trip through every kind of call.
        with faults.pause():
            check_usable(scenario.cache, faults)
    return total


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_a_fault_at_any_call_into_user_code(config: str, unraisable: list[Any]) -> None:
    points = count_points(config)
    expected = {"hash", "eq", "weigher", "initializer", "predicate", "deepcopy"}
    if sys.implementation.name == "cpython":
        expected.add("del")
    if CONFIGS[config].get("listener"):
        expected.add("listener")
    if CONFIGS[config].get("expiry"):
        expected |= {"expire_after_create", "expire_after_read", "expire_after_update"}
    assert expected <= set(points), points
    run_with_every_fault(config, unraisable)


# ----- faults under eviction pressure ------------------------------------------------


def run_random_faults(seed: int, ops: int, unraisable: list[Any]) -> int:
    """Random operations on a small cache, each user call failing with probability 1/8;
    afterwards the bound held, the contents are coherent, and every value is present
    or was reported exactly once."""
    rng = random.Random(seed)

    class Chance(Faults):
        def point(self, name: str) -> None:
            if self.paused:
                return
            self.count += 1
            self.seen[name] += 1
            if rng.randrange(8) == 0:
                raise Fault(name, self.count)

    faults = Chance()
    cache, reported = build(faults, "listener-lru" if seed % 2 else "listener-expiry", capacity=5)
    keys = [FKey(faults, str(i), i % 3) for i in range(12)]
    inserted: set[int] = set()
    injected = 0
    for serial in range(1, ops + 1):
        key = rng.choice(keys)
        value = FValue(faults, serial)
        op = rng.randrange(5)
        try:
            if op < 2:
                cache.set(key, value)
                inserted.add(serial)
            elif op == 2:

                def initializer(value: FValue = value) -> FValue:
                    faults.point("initializer")
                    inserted.add(value.n)
                    return value

                cache.get_with(key, initializer)
            elif op == 3:
                cache.get(key)
            else:
                cache.remove(key)
        except Fault:
            injected += 1
            if op == 2:
                # The initializer returned but storing its value failed.
                inserted.discard(serial)
        del value
        with faults.pause():
            assert cache.weighted_size() <= 5
    with faults.pause():
        cache.run_pending_tasks()
        present = {v.n for v in cache.values()}
        gone = [n for _, n, _ in reported]
        assert len(gone) == len(set(gone)), "a value was reported twice"
        assert not present & set(gone)
        cache.clear()
        gone = [n for _, n, _ in reported]
        assert sorted(gone) == sorted(inserted)
    faults.paused += 1  # values released after the run are not part of it
    injected += sum(isinstance(u.exc_value, Fault) for u in unraisable)
    return injected


def test_random_faults_under_eviction(unraisable: list[Any]) -> None:
    assert run_random_faults(seed=1, ops=1500, unraisable=unraisable) > 100
    unraisable.clear()
    assert run_random_faults(seed=2, ops=1500, unraisable=unraisable) > 100


@pytest.mark.stress
def test_random_faults_under_eviction_stress(unraisable: list[Any]) -> None:
    for seed in range(60):
        unraisable.clear()
        run_random_faults(seed=seed, ops=20000, unraisable=unraisable)


# ----- aget_with -----------------------------------------------------------------------


def run_async_scenario(faults: Faults) -> tuple[list[str], list[str]]:
    """aget_with of colliding keys, two awaiters sharing each key. Returns what the
    awaiters raised, and what reached the event loop's exception handler (a failure
    in the bookkeeping of a computation that has no awaiter to go to). An awaiter
    still waiting after 5 s counts as a hang."""
    caches: list[Moka[FKey, Any]] = [Moka(100)]
    keys = [FKey(faults, name, 0) for name in "xyz"]
    errors: list[BaseException] = []
    handled: list[BaseException] = []

    async def factory(n: int) -> tuple[int, str]:
        faults.point("factory")
        # Later keys finish first, so each lands while the others are still registered.
        for _ in range(len(keys) - n):
            await asyncio.sleep(0)
        faults.point("factory-after-await")
        return (n, "loaded")

    async def attempt(key: FKey, n: int) -> Any:
        return await caches[0].aget_with(key, lambda: factory(n))

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: handled.append(context["exception"])
        )
        # Every key at once, so that their flights (same hash) meet in one table.
        attempts = [attempt(key, i) for i, key in enumerate(keys) for _ in range(2)]
        try:
            outcomes = await asyncio.wait_for(asyncio.gather(*attempts, return_exceptions=True), 5)
        except asyncio.TimeoutError:
            pytest.fail(f"aget_with hung after {faults.raised}")
        errors.extend(o for o in outcomes if isinstance(o, BaseException))
        # Nothing left behind: with faults paused every key loads (or is cached) promptly.
        with faults.pause():
            for i, key in enumerate(keys):
                try:
                    value = await asyncio.wait_for(attempt(key, i), 5)
                except asyncio.TimeoutError:
                    pytest.fail(f"aget_with({key!r}) hangs for good after fault {faults.raised}")
                assert value == (i, "loaded")

    asyncio.run(main())
    # A failed task reports its exception when it is collected, which the fault's
    # traceback (it refers to the task's frames) would prevent: compare by message.
    faults.raised = None
    texts = [str(e) for e in errors]
    errors.clear()
    caches.clear()
    gc.collect()
    return texts, [str(e) for e in handled]


def test_a_fault_at_any_point_of_aget_with() -> None:
    counting = Faults()
    counting_points: list[str] = []
    counting.point = lambda name: None if counting.paused else counting_points.append(name)  # type: ignore[method-assign]
    run_async_scenario(counting)
    total = len(counting_points)
    counting.seen.update(counting_points)
    assert {"hash", "eq", "factory", "factory-after-await"} <= set(counting.seen)
    for trip_at in range(1, total + 1):
        faults = Faults(trip_at)
        fault = f"injected fault #{trip_at} in {counting_points[trip_at - 1]}"
        errors, handled = run_async_scenario(faults)
        # The fault reached the awaiter that hit it (both, if it came from the shared
        # factory) and nothing else failed; or, raised while a finished computation
        # was being unregistered, it reached the loop's exception handler while the
        # awaiters got their values.
        assert all(e == fault for e in errors + handled), (fault, errors, handled)
        assert len(errors) + len(handled) >= 1, f"{fault} went nowhere"
        if " in factory" in fault:
            assert len(errors) == 2


@pytest.mark.asyncio
async def test_factory_raising_before_returning_an_awaitable() -> None:
    cache: Moka[str, int] = Moka(10)

    def factory() -> Any:
        raise LookupError("no coroutine today")

    with pytest.raises(LookupError, match="no coroutine today"):
        await cache.aget_with("k", factory)
    assert "k" not in cache

    async def fine() -> int:
        return 1

    assert await cache.aget_with("k", fine) == 1
    stats = cache.stats()
    assert (stats.load_failures, stats.load_successes) == (1, 1)


# ----- KeyboardInterrupt ----------------------------------------------------------------


def test_initializer_interrupted_leaves_the_cache_usable() -> None:
    cache: Moka[str, int] = Moka(10, eviction_listener=lambda k, v, c: None)
    cache.set("other", 1)

    def interrupted() -> int:
        raise KeyboardInterrupt

    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):
            cache.get_with("k", interrupted)
    assert "k" not in cache
    assert cache.get("other") == 1
    assert cache.get_with("k", lambda: 2) == 2
    assert cache.stats().load_failures == 3


@contextmanager
def sigint_after(delay: float) -> Iterator[None]:
    """Delivers a real SIGINT to this process after `delay` seconds."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")

    def send() -> None:
        if hasattr(signal, "pthread_kill"):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        else:  # Windows
            import _thread

            _thread.interrupt_main()

    timer = threading.Timer(delay, send)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_waiting_for_another_threads_initializer() -> None:
    cache: Moka[str, str] = Moka(10)
    started = threading.Event()
    release = threading.Event()

    def slow() -> str:
        started.set()
        assert release.wait(30)
        return "computed"

    owner = threading.Thread(target=lambda: cache.get_with("k", slow), daemon=True)
    owner.start()
    assert started.wait(10)
    began = time.monotonic()
    with sigint_after(0.2), pytest.raises(KeyboardInterrupt):
        cache.get_with("k", lambda: "never")
    # The waiter noticed within its signal-check interval (generous margin).
    assert time.monotonic() - began < 10
    release.set()
    owner.join(10)
    assert not owner.is_alive()
    assert cache.get_with("k", lambda: "never") == "computed"


def test_ctrl_c_inside_the_owners_initializer_lets_waiters_take_over() -> None:
    cache: Moka[str, str] = Moka(10)
    started = threading.Event()
    results: list[str] = []

    def interruptible() -> str:
        started.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.005)  # Python code: the signal handler runs here
        return "never"

    def waiter() -> None:
        assert started.wait(10)
        results.append(cache.get_with("k", lambda: "by a waiter"))

    waiters = [threading.Thread(target=waiter, daemon=True) for _ in range(3)]
    for t in waiters:
        t.start()
    with sigint_after(0.3), pytest.raises(KeyboardInterrupt):
        cache.get_with("k", interruptible)
    for t in waiters:
        t.join(10)
    assert not any(t.is_alive() for t in waiters)
    assert results == ["by a waiter"] * 3
    assert cache.get("k") == "by a waiter"


def test_ctrl_c_storm_on_waiters() -> None:
    # Many interrupts in a row while waiting: each one surfaces, none breaks the flight.
    cache: Moka[int, str] = Moka(10)
    release = threading.Event()
    started = threading.Event()

    def slow() -> str:
        started.set()
        assert release.wait(30)
        return "done"

    owner = threading.Thread(target=lambda: cache.get_with(1, slow), daemon=True)
    owner.start()
    assert started.wait(10)
    for _ in range(5):
        with sigint_after(0.05), pytest.raises(KeyboardInterrupt):
            cache.get_with(1, lambda: "never")
    release.set()
    owner.join(10)
    assert cache.get(1) == "done"


@pytest.mark.skipif(sys.platform == "win32", reason="uses os.kill with SIGINT semantics of POSIX")
def test_ctrl_c_in_a_subprocess_waiting_on_get_with_exits_cleanly(tmp_path: Any) -> None:
    # The interrupt reaches the program as a KeyboardInterrupt, and the process exits
    # normally afterwards (no hang at shutdown with a flight still open).
    import subprocess

    script = tmp_path / "waiter.py"
    script.write_text(
        "import threading, time\n"
        "from moka_py import Moka\n"
        "cache = Moka(10)\n"
        "started = threading.Event()\n"
        "def slow():\n"
        "    started.set()\n"
        "    time.sleep(3600)\n"
        "threading.Thread(target=lambda: cache.get_with('k', slow), daemon=True).start()\n"
        "started.wait()\n"
        "print('waiting', flush=True)\n"
        "try:\n"
        "    cache.get_with('k', lambda: 1)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "waiting"
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the interrupted process hung")
    assert out.strip() == "interrupted", err
    assert proc.returncode == 0, err


def test_interrupted_waiters_do_not_disturb_other_threads() -> None:
    # Threads waiting on the same flight from other threads are not affected by the
    # main thread being interrupted.
    cache: Moka[str, str] = Moka(10)
    release = threading.Event()
    started = threading.Event()
    got: list[str] = []

    def slow() -> str:
        started.set()
        assert release.wait(30)
        return "v"

    def waiter() -> None:
        assert started.wait(10)
        got.append(cache.get_with("k", lambda: "x"))

    def owner_then_waiters() -> None:
        run_threads([lambda: cache.get_with("k", slow), waiter, waiter], timeout=60)

    runner = threading.Thread(target=owner_then_waiters, daemon=True)
    runner.start()
    assert started.wait(10)
    with sigint_after(0.1), pytest.raises(KeyboardInterrupt):
        cache.get_with("k", lambda: "x")
    release.set()
    runner.join(60)
    assert got == ["v", "v"]


@pytest.mark.asyncio
async def test_eq_failing_while_a_computation_lands_does_not_strand_its_awaiters() -> None:
    # Two keys of one hash, each with a computation in flight. When the second lands,
    # unregistering its flight compares it with the first: a key whose __eq__ raises
    # there must not leave the awaiters waiting forever, nor block later calls.
    armed = False

    class Touchy:
        def __init__(self, name: str) -> None:
            self.name = name

        def __hash__(self) -> int:
            return 0

        def __eq__(self, other: object) -> bool:
            if armed:
                raise LookupError("eq failed")
            return isinstance(other, Touchy) and other.name == self.name

    handled: list[BaseException] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda loop, context: handled.append(context["exception"])
    )
    cache: Moka[Touchy, str] = Moka(10)
    first, second = Touchy("first"), Touchy("second")
    gate = asyncio.Event()

    async def slow() -> str:
        await gate.wait()
        return "first"

    async def quick() -> str:
        nonlocal armed
        armed = True
        return "second"

    held = asyncio.ensure_future(cache.aget_with(first, slow))
    await asyncio.sleep(0)
    try:
        landed = await asyncio.wait_for(cache.aget_with(second, quick), 5)
    except asyncio.TimeoutError:
        pytest.fail("the awaiter of a landed computation was never woken")
    except LookupError:
        landed = "eq failed"
    armed = False
    assert landed in ("second", "eq failed")
    assert await asyncio.wait_for(cache.aget_with(second, quick), 5) == "second"
    gate.set()
    assert await asyncio.wait_for(held, 5) == "first"
    # The error had no awaiter to go to: it reached the loop's exception handler.
    del cache, held
    gc.collect()
    assert landed == "eq failed" or [type(e) for e in handled] == [LookupError]
