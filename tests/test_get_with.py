"""`get_with`: one initializer per key at a time across threads, shared outcomes,
re-entry detection, and waiters that release the GIL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from moka_py import Moka
from tests.conftest import run_threads


def test_returns_cached_value_without_calling() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set("a", 1)
    assert cache.get_with("a", lambda: pytest.fail("initializer ran")) == 1


def test_initializes_and_caches() -> None:
    cache: Moka[str, list[int]] = Moka(10)
    value = cache.get_with("a", lambda: [1])
    assert cache.get("a") is value
    assert cache.get_with("a", lambda: [2]) is value


def test_concurrent_callers_share_one_initializer() -> None:
    cache: Moka[str, int] = Moka(10)
    calls = 0
    started = threading.Event()
    release = threading.Event()
    results: list[int] = []

    def slow() -> int:
        nonlocal calls
        calls += 1
        started.set()
        assert release.wait(10)
        return 42

    def caller() -> None:
        results.append(cache.get_with("k", slow))

    def releaser() -> None:
        assert started.wait(10)
        time.sleep(0.2)  # let the other callers reach the wait
        release.set()

    run_threads([caller] * 8 + [releaser])
    assert calls == 1
    assert results == [42] * 8


def test_initializer_exception_reaches_every_waiter_and_is_not_cached() -> None:
    cache: Moka[str, int] = Moka(10)
    started = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []
    calls = 0

    def failing() -> int:
        nonlocal calls
        calls += 1
        started.set()
        assert release.wait(10)
        raise KeyError("upstream down")

    def caller() -> None:
        try:
            cache.get_with("k", failing)
        except KeyError as exc:
            errors.append(exc)

    def releaser() -> None:
        assert started.wait(10)
        time.sleep(0.2)
        release.set()

    run_threads([caller] * 5 + [releaser])
    assert calls == 1
    assert len(errors) == 5
    assert all(e is errors[0] for e in errors)
    assert "k" not in cache
    assert cache.get_with("k", lambda: 7) == 7


def test_same_key_reentry_raises_instead_of_deadlocking() -> None:
    cache: Moka[str, int] = Moka(10)

    def recursive() -> int:
        return cache.get_with("k", lambda: 1) + 1

    with pytest.raises(RuntimeError, match="already running on this thread"):
        cache.get_with("k", recursive)
    assert "k" not in cache
    assert cache.get_with("k", lambda: 5) == 5


def test_nested_get_with_of_other_keys_works() -> None:
    cache: Moka[int, int] = Moka(100)

    def fib(n: int) -> int:
        if n < 2:
            return n
        return cache.get_with(n - 1, lambda: fib(n - 1)) + cache.get_with(n - 2, lambda: fib(n - 2))

    assert cache.get_with(30, lambda: fib(30)) == 832040


def test_waiters_release_the_gil() -> None:
    # While one thread initializes and others wait, a pure-Python thread keeps
    # running: waiters do not hold the GIL.
    cache: Moka[str, int] = Moka(10)
    release = threading.Event()
    started = threading.Event()
    ticks = 0

    def slow() -> int:
        started.set()
        assert release.wait(10)
        return 1

    def counter() -> None:
        nonlocal ticks
        assert started.wait(10)
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            ticks += 1
        release.set()

    run_threads([lambda: cache.get_with("k", slow)] * 4 + [counter])
    assert ticks > 1000


def test_ttl_and_tti_apply_to_the_initialized_entry() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.get_with("a", lambda: 1, ttl=0.2)
    time.sleep(0.6)
    assert cache.get("a") is None


def test_initializer_must_be_callable() -> None:
    cache: Moka[str, int] = Moka(10)
    with pytest.raises(TypeError, match="initializer must be callable"):
        cache.get_with("a", 3)  # type: ignore[arg-type]


def test_base_exception_lets_waiters_retry() -> None:
    # A KeyboardInterrupt in the owner's initializer is the owner's business: the
    # waiters run the initializer themselves instead of inheriting it.
    cache: Moka[str, Any] = Moka(10)
    started = threading.Event()
    release = threading.Event()
    outcomes: list[Any] = []

    def interrupted() -> int:
        started.set()
        assert release.wait(10)
        raise KeyboardInterrupt

    def owner() -> None:
        try:
            cache.get_with("k", interrupted)
        except KeyboardInterrupt:
            outcomes.append("interrupted")

    def waiter() -> None:
        assert started.wait(10)
        outcomes.append(cache.get_with("k", lambda: "recomputed"))

    def releaser() -> None:
        assert started.wait(10)
        time.sleep(0.2)
        release.set()

    run_threads([owner, waiter, releaser])
    assert sorted(outcomes) == ["interrupted", "recomputed"]
