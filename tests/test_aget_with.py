"""`Moka.aget_with`: the async twin of `get_with` (SPEC §2).

The tests step the event loop explicitly (events and counters, not sleeps) to put
awaiters where they need them: `asyncio.sleep(0)` lets every ready task run up to
its next suspension.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
import time
from collections.abc import Awaitable
from typing import Any, Callable

import pytest

from moka_py import Moka
from tests.conftest import run_threads

# pytest-asyncio gives each test its own loop; these tests start the threads they need.
pytestmark = pytest.mark.thread_unsafe(reason="each test drives its own event loops")

TIMEOUT = 30.0


async def until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Lets the loop run until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)


class Factory:
    """An async factory that counts its runs and can be held at a gate."""

    def __init__(self, value: Any = "value", error: BaseException | None = None) -> None:
        self.value = value
        self.error = error
        self.started = 0
        self.cancelled = 0
        self.gate: asyncio.Event | None = None

    def hold(self) -> Factory:
        self.gate = asyncio.Event()
        return self

    def release(self) -> None:
        assert self.gate is not None
        self.gate.set()

    async def run(self) -> Any:
        self.started += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return self.value

    def __call__(self) -> Awaitable[Any]:
        return self.run()


# ----- a coroutine, usable everywhere ---------------------------------------------------


def test_returns_a_coroutine() -> None:
    cache: Moka[str, int] = Moka(10)

    async def one() -> int:
        return 1

    pending = cache.aget_with("k", one)
    assert inspect.iscoroutine(pending)
    pending.close()  # never awaited: nothing ran, nothing cached
    assert "k" not in cache


def test_works_with_asyncio_run() -> None:
    cache: Moka[str, str] = Moka(10)
    factory = Factory("v")
    assert asyncio.run(cache.aget_with("k", factory)) == "v"
    assert asyncio.run(cache.aget_with("k", factory)) == "v"
    assert factory.started == 1
    assert cache.get("k") == "v"


@pytest.mark.asyncio
async def test_works_with_await_and_gather() -> None:
    cache: Moka[str, str] = Moka(10)
    first, second = Factory("a"), Factory("b")
    assert await cache.aget_with("a", first) == "a"
    results = await asyncio.gather(
        cache.aget_with("a", first), cache.aget_with("b", second), cache.aget_with("b", second)
    )
    assert results == ["a", "b", "b"]
    assert (first.started, second.started) == (1, 1)


@pytest.mark.asyncio
async def test_existing_value_is_returned_without_calling_the_factory() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set("k", 5)
    factory = Factory()
    assert await cache.aget_with("k", factory) == 5
    assert factory.started == 0


def test_bad_arguments_fail_at_the_call() -> None:
    cache: Moka[Any, Any] = Moka(10)
    with pytest.raises(TypeError, match="unhashable"):
        cache.aget_with([1], Factory())
    with pytest.raises(TypeError, match="factory"):
        cache.aget_with("k", 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        cache.aget_with("k", Factory(), ttl=-1)


@pytest.mark.asyncio
async def test_factory_that_returns_no_awaitable() -> None:
    cache: Moka[str, Any] = Moka(10)
    with pytest.raises(TypeError):
        await cache.aget_with("k", lambda: 42)  # type: ignore[arg-type,return-value]
    assert "k" not in cache


@pytest.mark.asyncio
async def test_per_entry_ttl() -> None:
    cache: Moka[str, str] = Moka(10)
    factory = Factory("v")
    await cache.aget_with("k", factory, ttl=0.05)
    await asyncio.sleep(0.3)
    assert "k" not in cache
    await cache.aget_with("k", factory)
    assert factory.started == 2


# ----- failures are never cached ----------------------------------------------------


@pytest.mark.asyncio
async def test_exception_reaches_every_awaiter_and_is_not_cached() -> None:
    cache: Moka[str, str] = Moka(10)
    error = LookupError("boom")
    factory = Factory(error=error).hold()
    tasks = [asyncio.ensure_future(cache.aget_with("k", factory)) for _ in range(5)]
    await until(lambda: factory.started == 1)
    factory.release()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert outcomes == [error] * 5
    assert all(o is error for o in outcomes)
    assert factory.started == 1
    assert "k" not in cache
    factory.error = None
    assert await cache.aget_with("k", factory) == "value"
    assert factory.started == 2
    stats = cache.stats()
    assert (stats.load_successes, stats.load_failures) == (1, 1)


@pytest.mark.asyncio
async def test_cancelling_the_only_awaiter_cancels_the_work_and_caches_nothing() -> None:
    cache: Moka[str, str] = Moka(10)
    factory = Factory().hold()
    task = asyncio.ensure_future(cache.aget_with("k", factory))
    await until(lambda: factory.started == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: factory.cancelled == 1)
    assert "k" not in cache
    # A later call starts afresh.
    fresh = Factory("fresh")
    assert await cache.aget_with("k", fresh) == "fresh"
    assert fresh.started == 1
    assert cache.stats().load_failures == 1


# ----- single flight ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_concurrent_awaiters_share_one_computation() -> None:
    cache: Moka[str, object] = Moka(10)
    shared = object()
    factory = Factory(shared).hold()
    tasks = [asyncio.ensure_future(cache.aget_with("k", factory)) for _ in range(10)]
    await until(lambda: factory.started == 1)
    factory.release()
    results = await asyncio.gather(*tasks)
    assert all(r is shared for r in results)
    assert factory.started == 1
    assert cache.get("k") is shared


@pytest.mark.asyncio
async def test_many_concurrent_awaiters() -> None:
    cache: Moka[int, int] = Moka(100)
    factories = {key: Factory(key * 10).hold() for key in range(10)}
    tasks = [
        asyncio.ensure_future(cache.aget_with(key, factories[key]))
        for _ in range(200)
        for key in range(10)
    ]
    await until(lambda: all(f.started == 1 for f in factories.values()))
    for factory in factories.values():
        factory.release()
    results = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    assert results == [key * 10 for _ in range(200) for key in range(10)]
    assert all(f.started == 1 for f in factories.values())
    stats = cache.stats()
    assert stats.load_successes == 10
    assert stats.hits + stats.misses == 2000


@pytest.mark.asyncio
@pytest.mark.parametrize("cancelled", [0, 1, 3])
async def test_cancelling_some_awaiters_leaves_the_work_running(cancelled: int) -> None:
    # Awaiter 0 started the computation; cancelling it (or others) must not stop it
    # while someone still waits.
    cache: Moka[str, str] = Moka(10)
    factory = Factory("done").hold()
    tasks = [asyncio.ensure_future(cache.aget_with("k", factory)) for _ in range(4)]
    await until(lambda: factory.started == 1)
    for task in tasks[:cancelled]:
        task.cancel()
    await asyncio.sleep(0)
    factory.release()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes[:cancelled])
    assert outcomes[cancelled:] == ["done"] * (4 - cancelled)
    assert factory.cancelled == 0
    assert factory.started == 1
    assert cache.get("k") == "done"


@pytest.mark.asyncio
async def test_cancelling_every_awaiter_cancels_the_work_then_a_call_starts_afresh() -> None:
    cache: Moka[str, str] = Moka(10)
    factory = Factory().hold()
    tasks = [asyncio.ensure_future(cache.aget_with("k", factory)) for _ in range(3)]
    await until(lambda: factory.started == 1)
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
    await until(lambda: factory.cancelled == 1)
    assert "k" not in cache
    fresh = Factory("again")
    assert await cache.aget_with("k", fresh) == "again"
    assert fresh.started == 1


@pytest.mark.asyncio
async def test_a_call_right_after_the_last_cancellation_never_overlaps_the_old_work() -> None:
    # The cancelled computation still has to unwind (here: an asynchronous cleanup);
    # a call arriving before that is done waits for it, then starts afresh.
    cache: Moka[str, str] = Moka(10)
    running = 0
    most_running = 0
    gate = asyncio.Event()

    async def factory() -> str:
        nonlocal running, most_running
        running += 1
        most_running = max(most_running, running)
        try:
            await gate.wait()
            return "value"
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # e.g. closing a connection
            raise
        finally:
            running -= 1

    first = asyncio.ensure_future(cache.aget_with("k", factory))
    await until(lambda: running == 1)
    first.cancel()
    await asyncio.sleep(0)  # `first` leaves; the cancellation of the work is queued
    second = asyncio.ensure_future(cache.aget_with("k", factory))
    await until(lambda: running == 1 and first.done())
    gate.set()
    assert await asyncio.wait_for(second, TIMEOUT) == "value"
    assert first.cancelled()
    assert most_running == 1


@pytest.mark.asyncio
async def test_awaiter_joining_while_the_last_one_leaves_still_gets_a_value() -> None:
    cache: Moka[str, str] = Moka(10)
    first = Factory("first").hold()
    task = asyncio.ensure_future(cache.aget_with("k", first))
    await until(lambda: first.started == 1)
    task.cancel()
    second = Factory("second")
    late = asyncio.ensure_future(cache.aget_with("k", second))
    assert await asyncio.wait_for(late, TIMEOUT) in {"first", "second"}
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.asyncio
async def test_stats() -> None:
    cache: Moka[str, str] = Moka(10)
    factory = Factory("v").hold()

    async def slow_release() -> None:
        await until(lambda: factory.started == 1)
        await asyncio.sleep(0.05)
        factory.release()

    results = await asyncio.gather(
        cache.aget_with("k", factory), cache.aget_with("k", factory), slow_release()
    )
    assert results[:2] == ["v", "v"]
    await cache.aget_with("k", factory)
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (1, 2)
    assert (stats.load_successes, stats.load_failures) == (1, 0)
    assert stats.total_load_time >= 0.04  # the factory was held for at least 0.05 s


@pytest.mark.asyncio
@pytest.mark.parametrize("through_a_task", [False, True])
async def test_factory_asking_for_its_own_key_raises_instead_of_waiting_forever(
    through_a_task: bool,
) -> None:
    # The async twin of get_with's RuntimeError for an initializer that re-enters.
    cache: Moka[str, str] = Moka(10)

    async def factory() -> str:
        inner = cache.aget_with("k", factory)
        if through_a_task:
            (value,) = await asyncio.gather(inner)
            return value
        return await inner

    with pytest.raises(RuntimeError, match="aget_with"):
        await asyncio.wait_for(cache.aget_with("k", factory), TIMEOUT)
    assert "k" not in cache
    assert await cache.aget_with("k", Factory("fine")) == "fine"


@pytest.mark.asyncio
async def test_factory_may_ask_for_other_keys() -> None:
    cache: Moka[int, int] = Moka(10)

    async def factorial(n: int) -> int:
        if n <= 1:
            return 1
        return n * await cache.aget_with(n - 1, lambda: factorial(n - 1))

    assert await cache.aget_with(10, lambda: factorial(10)) == 3628800
    assert cache.get(5) == 120


# ----- several event loops ------------------------------------------------------------


def test_two_threads_with_their_own_loops_share_one_computation() -> None:
    cache: Moka[str, object] = Moka(10)
    shared = object()
    started = threading.Event()
    joined = threading.Event()
    calls = 0

    async def factory() -> object:
        nonlocal calls
        calls += 1
        started.set()
        await until(joined.is_set)
        return shared

    results: list[object] = []

    def owner() -> None:
        results.append(asyncio.run(cache.aget_with("k", factory)))

    def joiner() -> None:
        async def main() -> object:
            assert started.wait(TIMEOUT)
            task = asyncio.ensure_future(cache.aget_with("k", factory))
            await asyncio.sleep(0)  # the task has run up to its wait: it has joined
            joined.set()
            return await task

        results.append(asyncio.run(main()))

    run_threads([owner, joiner])
    assert calls == 1
    assert results == [shared, shared]


def test_many_threads_and_loops_racing_on_the_same_keys() -> None:
    # No "attached to a different loop", no stale task, every caller gets its value.
    cache: Moka[int, int] = Moka(1000)

    async def compute(key: int) -> int:
        await asyncio.sleep(0.001)
        return key * 2

    def worker() -> None:
        async def main() -> None:
            for round_number in range(30):
                keys = [round_number * 5 + i for i in range(5)]
                values = await asyncio.gather(
                    *(cache.aget_with(k, lambda k=k: compute(k)) for k in keys * 3)
                )
                assert values == [k * 2 for k in keys * 3]

        asyncio.run(main())

    run_threads([worker] * 4)
    assert cache.stats().load_failures == 0


def test_exception_reaches_awaiters_on_other_loops() -> None:
    cache: Moka[str, str] = Moka(10)
    started = threading.Event()
    joined = threading.Event()
    error = RuntimeError("shared failure")

    async def factory() -> str:
        started.set()
        await until(joined.is_set)
        raise error

    outcomes: list[BaseException] = []

    def owner() -> None:
        try:
            asyncio.run(cache.aget_with("k", factory))
        except RuntimeError as exc:
            outcomes.append(exc)

    def joiner() -> None:
        async def main() -> str:
            assert started.wait(TIMEOUT)
            task = asyncio.ensure_future(cache.aget_with("k", factory))
            await asyncio.sleep(0)
            joined.set()
            return await task

        try:
            asyncio.run(main())
        except RuntimeError as exc:
            outcomes.append(exc)

    run_threads([owner, joiner])
    assert outcomes == [error, error]
    assert "k" not in cache


def test_awaiters_on_other_loops_restart_when_the_owning_loop_shuts_down() -> None:
    # The owner's asyncio.run ends (its only awaiter was cancelled) and cancels the
    # computation; the awaiter on the other loop starts afresh instead of hanging.
    cache: Moka[str, str] = Moka(10)
    started = threading.Event()
    joined = threading.Event()
    runs: list[str] = []

    async def owner_factory() -> str:
        runs.append("owner")
        started.set()
        await asyncio.sleep(3600)
        return "never"

    async def joiner_factory() -> str:
        runs.append("joiner")
        return "joiner's"

    def owner() -> None:
        async def main() -> None:
            task = asyncio.ensure_future(cache.aget_with("k", owner_factory))
            await until(joined.is_set)
            task.cancel()  # leaves the computation to the other awaiter...
            await asyncio.sleep(0)
            # ...until this loop shuts down, cancelling it.

        asyncio.run(main())

    result: list[str] = []

    def joiner() -> None:
        async def main() -> str:
            assert started.wait(TIMEOUT)
            task = asyncio.ensure_future(cache.aget_with("k", joiner_factory))
            await asyncio.sleep(0)
            joined.set()
            return await asyncio.wait_for(task, TIMEOUT)

        result.append(asyncio.run(main()))

    run_threads([owner, joiner])
    assert result == ["joiner's"]
    assert runs == ["owner", "joiner"]
    assert cache.get("k") == "joiner's"


def test_a_computation_orphaned_by_a_closed_loop_does_not_block_later_calls() -> None:
    cache: Moka[str, str] = Moka(10)
    factory = Factory("orphan")
    loop = asyncio.new_event_loop()

    async def start() -> asyncio.Future[str]:
        factory.hold()
        task = asyncio.ensure_future(cache.aget_with("k", factory))
        await until(lambda: factory.started == 1)
        return task

    abandoned = loop.run_until_complete(start())
    for task in asyncio.all_tasks(loop):
        # Pending forever by design: spare the "Task was destroyed" log at exit.
        task._log_destroy_pending = False  # type: ignore[attr-defined]
    loop.close()  # closed with the computation still pending: it can never finish

    async def later() -> str:
        return await asyncio.wait_for(cache.aget_with("k", Factory("fresh")), TIMEOUT)

    assert asyncio.run(later()) == "fresh"
    assert not abandoned.done()
    del loop, abandoned
    gc.collect()
