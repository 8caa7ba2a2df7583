"""`@cached` on `async def` functions (SPEC §3, with the `aget_with` guarantees).

As in test_aget_with.py, the loop is stepped with events and counters, not sleeps.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import gc
import inspect
import pickle
import threading
import time
import weakref
from typing import Any, Callable

import pytest

from moka_py import CacheInfo, Moka, cached
from tests.conftest import run_threads

pytestmark = pytest.mark.thread_unsafe(reason="each test drives its own event loops")

TIMEOUT = 30.0


async def until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)


@cached(maxsize=32)
async def module_level(x: int) -> int:
    return x


class Probe:
    """Counts the runs of an async function and can hold them at a gate."""

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0
        self.cancelled = 0
        self.gate: asyncio.Event | None = None
        self.error: BaseException | None = None

    def hold(self) -> Probe:
        self.gate = asyncio.Event()
        return self

    def release(self) -> None:
        assert self.gate is not None
        self.gate.set()

    async def run(self, result: Any) -> Any:
        self.started += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        self.finished += 1
        return result


def decorate(probe: Probe, **options: Any) -> Any:
    @cached(**options)
    async def fetch(x: Any, *rest: Any, **kwargs: Any) -> Any:
        """Fetches x."""
        return await probe.run(("result", x))

    return fetch


BOTH = pytest.mark.parametrize("wait_concurrent", [False, True])


# ----- the wrapper ------------------------------------------------------------------------


@BOTH
def test_wrapper_is_a_coroutine_function_with_lru_cache_attributes(wait_concurrent: bool) -> None:
    async def fetch(x: int) -> int:
        """Docs."""
        return x

    wrapper = cached(maxsize=8, typed=True, wait_concurrent=wait_concurrent)(fetch)
    assert inspect.iscoroutinefunction(wrapper)
    assert wrapper.__wrapped__ is fetch
    assert wrapper.__name__ == "fetch"
    assert wrapper.__doc__ == "Docs."
    assert inspect.signature(wrapper) == inspect.signature(fetch)
    assert wrapper.cache_parameters() == {"maxsize": 8, "typed": True}
    assert wrapper.cache_info() == CacheInfo(0, 0, 8, 0)
    assert isinstance(wrapper.cache, Moka)
    assert wrapper.cache.capacity == 8


def test_bare_form_and_copy_weakref_pickle() -> None:
    @cached
    async def fetch(x: int) -> int:
        return x

    assert inspect.iscoroutinefunction(fetch)
    assert fetch.cache_parameters() == {"maxsize": 128, "typed": False}
    assert copy.copy(fetch) is fetch
    assert copy.deepcopy(fetch) is fetch
    ref = weakref.ref(fetch)
    del fetch
    gc.collect()
    assert ref() is None
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(module_level, protocol)) is module_level


def test_detected_through_partial() -> None:
    async def add(x: int, y: int) -> int:
        return x + y

    wrapper = cached(functools.partial(add, 1))
    assert inspect.iscoroutinefunction(wrapper)
    assert asyncio.run(wrapper(2)) == 3


def test_usable_with_asyncio_run_across_loops() -> None:
    probe = Probe()
    fetch = decorate(probe)
    assert asyncio.run(fetch(1)) == ("result", 1)
    assert asyncio.run(fetch(1)) == ("result", 1)
    assert probe.started == 1
    assert fetch.cache_info() == (1, 1, 128, 1)


# ----- caching ------------------------------------------------------------------------


@pytest.mark.asyncio
@BOTH
async def test_caches_results_with_lru_cache_keys(wait_concurrent: bool) -> None:
    probe = Probe()
    fetch = decorate(probe, wait_concurrent=wait_concurrent)
    await fetch(1)
    await fetch(1)
    await fetch(1.0)  # another key, as with lru_cache
    await fetch(1, y=2, z=3)
    await fetch(1, z=3, y=2)  # keyword order matters
    await fetch(x=1)
    assert probe.started == 5
    assert fetch.cache_info() == (1, 5, 128, 5)
    fetch.cache_clear()
    assert fetch.cache_info() == (0, 0, 128, 0)
    await fetch(1)
    assert probe.started == 6


@pytest.mark.asyncio
@BOTH
async def test_typed(wait_concurrent: bool) -> None:
    probe = Probe()
    fetch = decorate(probe, typed=True, wait_concurrent=wait_concurrent)
    for value in (3, 3.0, True, 1):
        await fetch(value)
    assert probe.started == 4


@pytest.mark.asyncio
@BOTH
async def test_key_function(wait_concurrent: bool) -> None:
    probe = Probe()
    fetch = decorate(probe, key=lambda x, *rest, **kwargs: x, wait_concurrent=wait_concurrent)
    await fetch(1, 2)
    assert await fetch(1, 3) == ("result", 1)
    assert probe.started == 1
    assert fetch.cache.keys() == [1]


@pytest.mark.asyncio
@BOTH
async def test_result_is_cached_only_after_it_completed(wait_concurrent: bool) -> None:
    probe = Probe().hold()
    fetch = decorate(probe, wait_concurrent=wait_concurrent)
    first = asyncio.ensure_future(fetch(1))
    await until(lambda: probe.started == 1)
    assert len(fetch.cache) == 0
    second = asyncio.ensure_future(fetch(1))
    await asyncio.sleep(0)
    # Without single flight the second call runs too; with it, it joins the first.
    assert probe.started == (1 if wait_concurrent else 2)
    probe.release()
    assert await first == await second == ("result", 1)
    assert len(fetch.cache) == 1
    await fetch(1)
    assert fetch.cache_info().hits == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("maxsize", [0, -3])
@BOTH
async def test_maxsize_zero_runs_every_call(maxsize: int, wait_concurrent: bool) -> None:
    probe = Probe()
    fetch = decorate(probe, maxsize=maxsize, wait_concurrent=wait_concurrent)
    for _ in range(3):
        await fetch(1)
    await fetch([1])  # no key is built: unhashable arguments are fine, as in lru_cache
    assert probe.started == 4
    assert fetch.cache_info() == (0, 4, 0, 0)


@pytest.mark.asyncio
async def test_unbounded() -> None:
    probe = Probe()
    fetch = decorate(probe, maxsize=None)
    for x in range(500):
        await fetch(x)
    assert fetch.cache_info() == (0, 500, None, 500)


@pytest.mark.asyncio
@BOTH
async def test_each_argument_hashed_once_per_call(wait_concurrent: bool) -> None:
    class Counting:
        def __init__(self) -> None:
            self.hashes = 0

        def __hash__(self) -> int:
            self.hashes += 1
            return 7

    probe = Probe()
    fetch = decorate(probe, wait_concurrent=wait_concurrent)
    arg = Counting()
    await fetch(arg, 1)  # a miss
    assert arg.hashes == 1
    await fetch(arg, 1)  # a hit
    assert arg.hashes == 2
    await fetch(x=arg)
    assert arg.hashes == 3


@pytest.mark.asyncio
@BOTH
async def test_methods(wait_concurrent: bool) -> None:
    class Service:
        def __init__(self, name: str) -> None:
            self.name = name
            self.calls = 0

        @cached(wait_concurrent=wait_concurrent)
        async def describe(self, suffix: str) -> str:
            self.calls += 1
            return self.name + suffix

        @classmethod
        @cached(wait_concurrent=wait_concurrent)
        async def kind(cls) -> str:
            return cls.__name__

        @staticmethod
        @cached(wait_concurrent=wait_concurrent)
        async def double(x: int) -> int:
            return 2 * x

    a = Service("a")
    assert [await a.describe("!"), await a.describe("!")] == ["a!", "a!"]
    assert a.calls == 1
    assert await Service("b").describe("!") == "b!"
    assert Service.describe.cache_info() == (1, 2, 128, 2)
    assert await Service.kind() == "Service"
    assert await a.double(4) == await Service.double(4) == 8


@pytest.mark.asyncio
@BOTH
@pytest.mark.parametrize("through_a_task", [False, True])
async def test_function_awaiting_itself_with_the_same_arguments(
    wait_concurrent: bool, through_a_task: bool
) -> None:
    # As with a sync function (and lru_cache): the inner call runs the function again.
    # With wait_concurrent it must not wait for the computation it is part of.
    depth = 0

    @cached(wait_concurrent=wait_concurrent)
    async def once_more(x: int) -> str:
        nonlocal depth
        depth += 1
        if depth == 1:
            inner = once_more(x)
            if through_a_task:
                (inner_value,) = await asyncio.gather(inner)
            else:
                inner_value = await inner
            return "outer saw " + inner_value
        return "inner"

    assert await asyncio.wait_for(once_more(1), TIMEOUT) == "outer saw inner"
    assert await once_more(1) == "outer saw inner"
    assert depth == 2


# ----- failures are never cached ------------------------------------------------------


@pytest.mark.asyncio
@BOTH
async def test_exceptions_are_not_cached(wait_concurrent: bool) -> None:
    probe = Probe()
    probe.error = KeyError("nope")
    fetch = decorate(probe, wait_concurrent=wait_concurrent)
    for attempt in (1, 2):
        with pytest.raises(KeyError, match="nope"):
            await fetch(1)
        assert probe.started == attempt
    probe.error = None
    assert await fetch(1) == ("result", 1)
    assert probe.started == 3
    assert fetch.cache_info() == (0, 3, 128, 1)
    if wait_concurrent:
        stats = fetch.cache.stats()
        assert (stats.load_successes, stats.load_failures) == (1, 2)


@pytest.mark.asyncio
@BOTH
async def test_cancellations_are_not_cached(wait_concurrent: bool) -> None:
    probe = Probe().hold()
    fetch = decorate(probe, wait_concurrent=wait_concurrent)
    task = asyncio.ensure_future(fetch(1))
    await until(lambda: probe.started == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: probe.cancelled == 1)
    assert len(fetch.cache) == 0
    probe.release()
    assert await fetch(1) == ("result", 1)
    assert probe.started == 2


# ----- single flight ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_wait_concurrent_awaiters_share_one_computation() -> None:
    probe = Probe().hold()
    fetch = decorate(probe, wait_concurrent=True)
    tasks = [asyncio.ensure_future(fetch(1)) for _ in range(8)]
    await until(lambda: probe.started == 1)
    probe.release()
    results = await asyncio.gather(*tasks)
    assert all(r is results[0] for r in results)
    assert probe.started == 1
    assert fetch.cache_info() == (0, 8, 128, 1)
    stats = fetch.cache.stats()
    assert (stats.hits, stats.misses, stats.load_successes) == (0, 8, 1)


@pytest.mark.asyncio
async def test_wait_concurrent_exception_reaches_every_awaiter() -> None:
    probe = Probe().hold()
    probe.error = ValueError("shared")
    fetch = decorate(probe, wait_concurrent=True)
    tasks = [asyncio.ensure_future(fetch(1)) for _ in range(4)]
    await until(lambda: probe.started == 1)
    probe.release()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(o is probe.error for o in outcomes)
    assert probe.started == 1
    assert len(fetch.cache) == 0


@pytest.mark.asyncio
async def test_wait_concurrent_many_awaiters_many_keys() -> None:
    probe = Probe().hold()
    fetch = decorate(probe, wait_concurrent=True, maxsize=None)
    tasks = [asyncio.ensure_future(fetch(k)) for _ in range(100) for k in range(20)]
    await until(lambda: probe.started == 20)
    probe.release()
    results = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    assert results == [("result", k) for _ in range(100) for k in range(20)]
    assert probe.started == 20
    assert fetch.cache_info() == (0, 2000, None, 20)


@pytest.mark.asyncio
async def test_cancelling_one_awaiter_does_not_cancel_the_shared_work() -> None:
    probe = Probe().hold()
    fetch = decorate(probe, wait_concurrent=True)
    tasks = [asyncio.ensure_future(fetch(1)) for _ in range(3)]
    await until(lambda: probe.started == 1)
    tasks[0].cancel()  # the awaiter that started the computation
    tasks[1].cancel()
    await asyncio.sleep(0)
    probe.release()
    assert await asyncio.wait_for(tasks[2], TIMEOUT) == ("result", 1)
    assert probe.cancelled == 0
    assert len(fetch.cache) == 1
    for task in tasks[:2]:
        assert task.cancelled()


@pytest.mark.asyncio
async def test_cancelling_the_last_awaiter_cancels_the_work_and_a_later_call_restarts() -> None:
    probe = Probe().hold()
    fetch = decorate(probe, wait_concurrent=True)
    tasks = [asyncio.ensure_future(fetch(1)) for _ in range(3)]
    await until(lambda: probe.started == 1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await until(lambda: probe.cancelled == 1)
    assert len(fetch.cache) == 0
    probe.release()
    assert await fetch(1) == ("result", 1)
    assert probe.started == 2
    assert fetch.cache.stats().load_failures == 1


def test_two_threads_each_with_asyncio_run() -> None:
    started = threading.Event()
    joined = threading.Event()
    runs = 0

    @cached(wait_concurrent=True)
    async def fetch(x: int) -> list[int]:
        nonlocal runs
        runs += 1
        started.set()
        await until(joined.is_set)
        return [x]

    results: list[list[int]] = []

    def owner() -> None:
        results.append(asyncio.run(fetch(1)))

    def joiner() -> None:
        async def main() -> list[int]:
            assert started.wait(TIMEOUT)
            task = asyncio.ensure_future(fetch(1))
            await asyncio.sleep(0)  # the task has joined the computation
            joined.set()
            return await task

        results.append(asyncio.run(main()))

    run_threads([owner, joiner])
    assert runs == 1
    assert results[0] is results[1]


@BOTH
def test_threads_and_loops_racing(wait_concurrent: bool) -> None:
    @cached(maxsize=64, wait_concurrent=wait_concurrent)
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x * 3

    def worker() -> None:
        async def main() -> None:
            for round_number in range(40):
                keys = [round_number % 10 + i for i in range(4)]
                results = await asyncio.gather(*(fetch(k) for k in keys * 3))
                assert results == [k * 3 for k in keys * 3]

        asyncio.run(main())

    run_threads([worker] * 4)
    info = fetch.cache_info()
    assert info.hits + info.misses == 4 * 40 * 12


def test_each_decoration_has_its_own_cache() -> None:
    decorator = cached(maxsize=4, wait_concurrent=True)

    async def one() -> int:
        return 1

    async def two() -> int:
        return 2

    first, second = decorator(one), decorator(two)
    assert first.cache is not second.cache
    assert asyncio.run(first()) == 1
    assert asyncio.run(second()) == 2
