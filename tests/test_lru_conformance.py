"""CPython's own `lru_cache` tests, run against `moka_py.cached`.

The `TestLRU` cases of the running interpreter's `test.test_functools` are the judge
of "drop-in replacement for `functools.lru_cache`": they are imported, not copied, and
run with `self.module` pointing at a namespace whose `lru_cache` is `cached` with the
`"lru"` policy (several cases count hits and misses under a given eviction order).

Some builds ship without the `test` package (Debian splits it into
`libpython3.X-testsuite`); there the cases are skipped and the skip says why.
"""

from __future__ import annotations

import functools
import platform
import types
import unittest
from typing import Any, Callable

import pytest

import moka_py

# The cases swap builtins.len, set the switch interval and start threads of their own:
# they cannot run alongside copies of themselves (pytest-run-parallel).
pytestmark = pytest.mark.thread_unsafe(reason="the stdlib cases change interpreter-wide state")


def lru_cache(maxsize: Any = 128, typed: bool = False) -> Any:
    """`functools.lru_cache`'s signature, backed by `moka_py.cached(policy="lru")`."""
    return moka_py.cached(maxsize, typed, policy="lru")


# What `TestLRU` reads from `self.module`.
moka_functools = types.SimpleNamespace(
    lru_cache=lru_cache,
    _CacheInfo=moka_py.CacheInfo,
    WRAPPER_ASSIGNMENTS=functools.WRAPPER_ASSIGNMENTS,
    partial=functools.partial,
)


# `test_pickle` pickles this by name, so it must live at module level.
@lru_cache()
def moka_cached_func(x: int, y: int) -> int:
    return 3 * x + y


def _load_stdlib_cases() -> tuple[Any, str]:
    """`test.test_functools.TestLRU`, or `None` and the reason it cannot be used."""
    if platform.python_implementation() != "CPython":
        return None, (
            f"TestLRU is CPython's conformance suite for lru_cache; "
            f"{platform.python_implementation()} is not checked against it"
        )
    try:
        from test import test_functools
    except Exception as exc:  # any failure means the suite is unusable here
        return None, (
            f"this interpreter's build has no usable test.test_functools "
            f"({type(exc).__name__}: {exc}); on Debian it comes with libpython3.X-testsuite"
        )
    return test_functools.TestLRU, ""


_TestLRU, _SKIP_REASON = _load_stdlib_cases()

if _TestLRU is not None:

    class TestLRUMoka(_TestLRU, unittest.TestCase):  # type: ignore[misc,valid-type]
        """Every `TestLRU` case, with `lru_cache` replaced by `moka_py.cached`."""

        module = moka_functools
        cached_func = (moka_cached_func,)

        @module.lru_cache()
        def cached_meth(self, x: int, y: int) -> int:
            return 3 * x + y

        @staticmethod
        @module.lru_cache()
        def cached_staticmeth(x: int, y: int) -> int:
            return 3 * x + y

else:

    @pytest.mark.skip(reason=_SKIP_REASON)
    def test_lru_conformance() -> None:
        """Stands for the stdlib cases where they cannot be imported."""


def test_namespace_lru_cache_is_moka() -> None:
    # Guards the harness itself: the cases above must exercise moka_py, not functools.
    wrapper: Callable[..., Any] = lru_cache(maxsize=4)(abs)
    assert isinstance(wrapper, moka_py.CachedFunction)
    assert wrapper.cache.policy == "lru"  # type: ignore[attr-defined]
    assert lru_cache(abs).cache_parameters() == {"maxsize": 128, "typed": False}
