"""Single flight for coroutines: the engine of `Moka.aget_with` and async `@cached`.

Concurrent awaiters of one key share one computation, whichever task, thread or
event loop they run on:

- The first awaiter (the owner) starts the computation as a task on its own loop.
  Its outcome is published through a thread-safe `concurrent.futures.Future`, and
  every awaiter waits on a future of *its own* loop that is resolved from there, so
  no awaiter ever touches another loop's objects ("attached to a different loop").
- A result is cached before it is published; an exception reaches every awaiter
  and is not cached.
- Cancelling one awaiter leaves the computation running for the others; cancelling
  the last one cancels it, and the next call starts afresh. If the computation is
  cancelled from elsewhere (e.g. its loop shuts down), the remaining awaiters start
  afresh too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

if TYPE_CHECKING:
    from moka_py._moka_py import Moka

_MISSING: Any = object()


class AsyncState:
    """The in-flight computations of one cache, by key."""

    __slots__ = ("flights", "lock")

    def __init__(self) -> None:
        self.flights: dict[Any, _Flight] = {}
        # Reentrant: a key's __eq__/__hash__ runs under it and might call aget_with.
        self.lock = threading.RLock()


class _Flight:
    __slots__ = ("future", "task", "waiters")

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.task: Optional[asyncio.Task[None]] = None
        self.waiters = 0


async def aget_with(
    cache: Moka,
    key: Any,
    factory: Callable[[], Awaitable[Any]],
    ttl: Optional[float] = None,
    tti: Optional[float] = None,
) -> Any:
    """`Moka.aget_with`: the cached value of `key`, computed by `await factory()` once."""
    value = cache.get(key, _MISSING)
    if value is not _MISSING:
        return value
    return await join(cache, key, factory, ttl, tti)


async def join(
    cache: Moka,
    key: Any,
    factory: Callable[[], Awaitable[Any]],
    ttl: Optional[float],
    tti: Optional[float],
) -> Any:
    """Joins (or starts) the computation of `key`, after a miss was counted."""
    state: AsyncState = cache._async_state()
    loop = asyncio.get_running_loop()
    while True:
        with state.lock:
            flight = state.flights.get(key)
            owner = flight is None
            if flight is None:
                flight = _Flight()
                state.flights[key] = flight
            flight.waiters += 1
        if owner:
            # A computation that finished between our miss and now already cached it.
            value = cache._peek(key, _MISSING)
            if value is not _MISSING:
                _land(state, key, flight, value=value)
            else:
                flight.task = loop.create_task(
                    _compute(cache, state, key, flight, factory, ttl, tti)
                )
        try:
            await _wait(flight.future, loop)
        except asyncio.CancelledError:
            _leave(state, key, flight)
            raise
        with state.lock:
            flight.waiters -= 1
        if flight.future.cancelled():
            # The computation was cancelled under the other awaiters: start afresh.
            continue
        return flight.future.result()


async def _compute(
    cache: Moka,
    state: AsyncState,
    key: Any,
    flight: _Flight,
    factory: Callable[[], Awaitable[Any]],
    ttl: Optional[float],
    tti: Optional[float],
) -> None:
    started = time.perf_counter()
    try:
        value = await factory()
        cache.set(key, value, ttl, tti)
    except asyncio.CancelledError:
        cache._record_load(False, time.perf_counter() - started)
        _land(state, key, flight, cancelled=True)
        raise
    except BaseException as exc:
        cache._record_load(False, time.perf_counter() - started)
        _land(state, key, flight, exception=exc)
    else:
        cache._record_load(True, time.perf_counter() - started)
        _land(state, key, flight, value=value)


def _land(
    state: AsyncState,
    key: Any,
    flight: _Flight,
    *,
    value: Any = None,
    exception: Optional[BaseException] = None,
    cancelled: bool = False,
) -> None:
    """Unregisters the flight, then publishes its outcome."""
    with state.lock:
        if state.flights.get(key) is flight:
            del state.flights[key]
    if flight.future.done():
        return
    if cancelled:
        flight.future.cancel()
    elif exception is not None:
        flight.future.set_exception(exception)
    else:
        flight.future.set_result(value)


def _leave(state: AsyncState, key: Any, flight: _Flight) -> None:
    """An awaiter was cancelled; the last one to leave cancels the computation."""
    with state.lock:
        flight.waiters -= 1
        abandoned = flight.waiters == 0 and not flight.future.done()
        if abandoned and state.flights.get(key) is flight:
            del state.flights[key]
    task = flight.task
    if abandoned and task is not None:
        try:
            task.get_loop().call_soon_threadsafe(task.cancel)
        except RuntimeError:  # its loop is already closed: the task is gone with it
            pass


async def _wait(future: concurrent.futures.Future[Any], loop: asyncio.AbstractEventLoop) -> None:
    """Waits on this loop until `future` is done, without consuming its outcome."""
    if future.done():
        return
    waiter = loop.create_future()

    def wake(_: concurrent.futures.Future[Any]) -> None:
        try:
            loop.call_soon_threadsafe(_resolve, waiter)
        except RuntimeError:  # the waiting loop was closed meanwhile
            pass

    future.add_done_callback(wake)
    await waiter


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
