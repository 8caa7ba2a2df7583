"""Shared fixtures: a recording eviction listener, a deadlock-aware thread runner, and
`settle`, which lets moka free what it removed."""

from __future__ import annotations

import faulthandler
import gc
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest


class Events:
    """An eviction listener that records `(key, value, cause)` calls, thread-safely."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any, str]] = []
        self._lock = threading.Lock()

    def __call__(self, key: Any, value: Any, cause: str) -> None:
        with self._lock:
            self.calls.append((key, value, cause))

    def causes(self) -> list[str]:
        with self._lock:
            return [cause for _, _, cause in self.calls]

    def keys(self, cause: str | None = None) -> list[Any]:
        with self._lock:
            return [k for k, _, c in self.calls if cause is None or c == cause]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()


@pytest.fixture
def events() -> Events:
    return Events()


def settle(cache: Any = None) -> None:
    """Lets moka free the entries it removed (and the collector run), so that what the
    cache no longer holds has been released."""
    if cache is not None:
        # Each call lets crossbeam's epoch advance and frees a bounded batch of what
        # moka removed; a few calls free everything pending.
        for _ in range(8):
            cache.run_pending_tasks()
    gc.collect()


def run_threads(targets: list[Callable[[], None]], timeout: float = 60.0) -> None:
    """Runs each target in its own thread; fails (naming the stuck threads, with their
    stacks) if any has not finished within `timeout`, and re-raises the first error."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [
        threading.Thread(target=guarded(t), name=f"worker-{i}", daemon=True)
        for i, t in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        pytest.fail(f"threads did not finish within {timeout}s (deadlock?): {stuck}")
    if errors:
        raise errors[0]


@pytest.fixture
def unraisable() -> Iterator[list[Any]]:
    """Collects what reaches `sys.unraisablehook` during the test."""
    seen: list[Any] = []
    previous = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        yield seen
    finally:
        sys.unraisablehook = previous
