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
  afresh too, and so does a call that finds a computation whose loop was closed
  under it.
- A call for a key from inside that key's own computation (directly or through a
  task or thread started with its context) would wait for itself: `aget_with`
  raises RuntimeError, as `get_with` does, and an async `@cached` function computes
  again, as a sync one (and `lru_cache`) does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moka_py._moka_py import CachedFunction, Moka

_MISSING: Any = object()

# The computations the current context is part of: a computation's task, and every
# task or thread it starts with a copy of its context. A call for one of these keys
# would wait for itself.
_COMPUTING: contextvars.ContextVar[frozenset[tuple[AsyncState, Slot]]] = contextvars.ContextVar(
    "moka_py_computing", default=frozenset()
)


class AsyncState:
    """The in-flight computations of one cache, by key."""

    __slots__ = ("flights", "lock")

    def __init__(self) -> None:
        self.flights: dict[Slot, _Flight] = {}
        # Reentrant: a key's __eq__ runs under it and might call aget_with.
        self.lock = threading.RLock()


class Slot:
    """Where one computation's result goes: a key of one cache.

    Slots are the keys of `AsyncState.flights`; they carry the key's hash so that the
    registry never hashes the key again.
    """

    __slots__ = ("hash", "key")

    def __init__(self, key: Any, hash_: int) -> None:
        self.key = key
        self.hash = hash_

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Slot):
            return NotImplemented
        return self.key is other.key or bool(self.key == other.key)

    def peek(self) -> Any:
        """The cached value, or `_MISSING`; counts no hit or miss."""
        raise NotImplementedError

    def store(self, value: Any) -> None:
        """Caches the computed value."""
        raise NotImplementedError

    async def reenter(self, factory: Callable[[], Awaitable[Any]]) -> Any:
        """A call for this key from inside its own computation."""
        raise NotImplementedError


class CacheSlot(Slot):
    """A key of `Moka.aget_with`."""

    __slots__ = ("cache", "tti", "ttl")

    def __init__(
        self, cache: Moka[Any, Any], key: Any, ttl: float | None, tti: float | None
    ) -> None:
        super().__init__(key, hash(key))
        self.cache = cache
        self.ttl = ttl
        self.tti = tti

    def peek(self) -> Any:
        return self.cache._peek(self.key, _MISSING)

    def store(self, value: Any) -> None:
        self.cache.set(self.key, value, self.ttl, self.tti)

    async def reenter(self, factory: Callable[[], Awaitable[Any]]) -> Any:
        # As get_with does for its initializer.
        raise RuntimeError(
            "aget_with() was called for a key from inside its own factory (or a task it "
            "started), which would wait for itself forever"
        )


class WrapperSlot(Slot):
    """A key built by an async `@cached` wrapper, with the hash it computed."""

    __slots__ = ("core",)

    def __init__(self, core: CachedFunction[..., Any], key: Any, hash_: int) -> None:
        super().__init__(key, hash_)
        self.core = core

    def peek(self) -> Any:
        return self.core._peek(self.key, self.hash, _MISSING)

    def store(self, value: Any) -> None:
        self.core._remember(self.key, self.hash, value)

    async def reenter(self, factory: Callable[[], Awaitable[Any]]) -> Any:
        # The function called itself with the same arguments: like lru_cache (and
        # like a sync @cached function), compute again.
        value = await factory()
        self.store(value)
        return value


class _Flight:
    __slots__ = ("future", "task", "waiters")

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.task: asyncio.Task[None] | None = None
        self.waiters = 0

    def orphaned(self) -> bool:
        """Whether the computation can never finish: its loop was closed under it."""
        task = self.task
        return task is not None and not self.future.done() and task.get_loop().is_closed()


async def aget_with(
    cache: Moka[Any, Any],
    key: Any,
    factory: Callable[[], Awaitable[Any]],
    ttl: float | None = None,
    tti: float | None = None,
) -> Any:
    """`Moka.aget_with`: the cached value of `key`, computed by `await factory()` once."""
    value = cache.get(key, _MISSING)
    if value is not _MISSING:
        return value
    return await join(cache, CacheSlot(cache, key, ttl, tti), factory)


async def join(cache: Moka[Any, Any], slot: Slot, factory: Callable[[], Awaitable[Any]]) -> Any:
    """Joins (or starts) the computation for `slot`, after a miss was counted."""
    state: AsyncState = cache._async_state()
    loop = asyncio.get_running_loop()
    computing = _COMPUTING.get()
    while True:
        orphan = None
        owner = False
        with state.lock:
            flight = state.flights.get(slot)
            if flight is not None and flight.future.done():
                # Published but never unregistered (a key's __eq__ failed in `_land`).
                flight = None
            reentrant = flight is not None and (state, slot) in computing
            if not reentrant:
                if flight is not None and flight.orphaned():
                    orphan, flight = flight, None
                owner = flight is None
                if flight is None:
                    flight = _Flight()
                    state.flights[slot] = flight
                flight.waiters += 1
        if reentrant:
            return await slot.reenter(factory)
        assert flight is not None
        if orphan is not None:
            # Its remaining awaiters (on other loops) start afresh as well.
            _publish(orphan, cancelled=True)
        if owner:
            try:
                # A computation that finished between our miss and now cached it.
                value = slot.peek()
                if value is _MISSING:
                    flight.task = loop.create_task(_compute(cache, state, slot, flight, factory))
            except BaseException:
                # (A key's __eq__ failed.) Whoever joined meanwhile tries on its own.
                _land(state, slot, flight, cancelled=True)
                raise
            if value is not _MISSING:
                _land(state, slot, flight, value=value)
        try:
            await _wait(flight.future, loop)
        except asyncio.CancelledError:
            _leave(state, slot, flight)
            raise
        with state.lock:
            flight.waiters -= 1
        if flight.future.cancelled():
            # The computation was cancelled under the other awaiters: start afresh.
            continue
        return flight.future.result()


async def _compute(
    cache: Moka[Any, Any],
    state: AsyncState,
    slot: Slot,
    flight: _Flight,
    factory: Callable[[], Awaitable[Any]],
) -> None:
    _COMPUTING.set(_COMPUTING.get() | {(state, slot)})  # this task's own context
    started = time.perf_counter()
    try:
        value = await factory()
        slot.store(value)
    except asyncio.CancelledError:
        cache._record_load(False, time.perf_counter() - started)
        _land_from_task(state, slot, flight, cancelled=True)
        raise
    except BaseException as exc:
        cache._record_load(False, time.perf_counter() - started)
        _land_from_task(state, slot, flight, exception=exc)
    else:
        cache._record_load(True, time.perf_counter() - started)
        _land_from_task(state, slot, flight, value=value)


def _land_from_task(state: AsyncState, slot: Slot, flight: _Flight, **outcome: Any) -> None:
    """`_land`, from the computation's own task, which no caller awaits.

    The awaiters hear the outcome whatever happens (`_land` publishes it last). Should
    unregistering fail (a key's `__eq__` raised), that error goes to the loop's
    exception handler now, rather than whenever the garbage collector finds the task
    (on PyPy, possibly never).
    """
    try:
        _land(state, slot, flight, **outcome)
    except Exception as exc:
        # No "task" in the context: since 3.12 the loop would run the handler in the
        # task's context, which is the one running this very code.
        asyncio.get_running_loop().call_exception_handler(
            {
                "message": "moka_py: a finished aget_with computation could not be unregistered",
                "exception": exc,
            }
        )


def _land(
    state: AsyncState,
    slot: Slot,
    flight: _Flight,
    *,
    value: Any = None,
    exception: BaseException | None = None,
    cancelled: bool = False,
) -> None:
    """Unregisters the flight, then publishes its outcome."""
    try:
        with state.lock:
            if state.flights.get(slot) is flight:
                del state.flights[slot]
    finally:
        # Finding the flight compares keys of the same hash, and a key's __eq__ may
        # raise: the awaiters must hear the outcome all the same (`join` skips a
        # published flight left in the table).
        _publish(flight, value=value, exception=exception, cancelled=cancelled)


def _publish(
    flight: _Flight,
    *,
    value: Any = None,
    exception: BaseException | None = None,
    cancelled: bool = False,
) -> None:
    future = flight.future
    if future.done():
        return
    try:
        if cancelled:
            future.cancel()
        elif exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(value)
    except concurrent.futures.InvalidStateError:  # another thread published first
        pass


def _leave(state: AsyncState, slot: Slot, flight: _Flight) -> None:
    """An awaiter was cancelled; the last one to leave cancels the computation.

    The flight stays registered until the cancelled computation has unwound: a call
    arriving meanwhile waits for that, then starts afresh, so two computations of one
    key never overlap.
    """
    with state.lock:
        flight.waiters -= 1
        abandoned = flight.waiters == 0 and not flight.future.done()
    if not abandoned:
        return
    task = flight.task
    if task is None:
        _land(state, slot, flight, cancelled=True)
        return
    try:
        task.get_loop().call_soon_threadsafe(task.cancel)
    except RuntimeError:  # its loop is already closed: the task is gone with it
        _land(state, slot, flight, cancelled=True)


async def _wait(future: concurrent.futures.Future[Any], loop: asyncio.AbstractEventLoop) -> None:
    """Waits on this loop until `future` is done, without consuming its outcome."""
    if future.done():
        return
    waiter = loop.create_future()

    def wake(_: concurrent.futures.Future[Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the waiting loop was closed meanwhile
            loop.call_soon_threadsafe(_resolve, waiter)

    future.add_done_callback(wake)
    await waiter


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
