"""The `@cached` decorator: plumbing around the native `CachedFunction`.

Sync functions are wrapped by `CachedFunction`, whose `__call__` builds the key and
looks it up in one native call. Async functions get an `async def` wrapper (so
`inspect.iscoroutinefunction` is true for it) that calls the same native lookup.

The typed signature (overloads preserving the decorated function's parameters) is in
`_cached.pyi`; this module stays importable on Python 3.9 without typing_extensions.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from moka_py import _aio
from moka_py._moka_py import CachedFunction, Moka

_MISSING: Any = object()


def cached(
    maxsize: Any = 128,
    typed: bool = False,
    *,
    ttl: float | None = None,
    tti: float | None = None,
    wait_concurrent: bool = False,
    policy: str = "tiny_lfu",
    weigher: Callable[[Any, Any], int] | None = None,
    key: Callable[..., Any] | None = None,
) -> Any:
    """Caches a function's results, like `functools.lru_cache`, in a `Moka` cache.

    Every use of `lru_cache` works with `cached` and means the same: `@cached`,
    `@cached()`, `@cached(256)`, `maxsize=None` (unbounded), `maxsize=0` (no
    caching, calls still counted), `typed=True`, and the wrapper's `cache_info()`,
    `cache_clear()`, `cache_parameters()` and `__wrapped__`. In addition:

    - `ttl` / `tti`: seconds to live / to stay unread before an entry expires;
    - `policy`: `"tiny_lfu"` (default) or `"lru"` (`lru_cache`'s eviction order);
    - `weigher(key, value) -> int`: entry weights, bounded in total by `maxsize`;
    - `key(*args, **kwargs) -> hashable`: replaces the default key;
    - `wait_concurrent=True`: concurrent calls with equal arguments run the
      function once and all get its result (or its exception, never cached).

    Async functions (`async def`) are supported: the wrapper is a coroutine function,
    results are cached once they complete, and exceptions or cancellations are never
    cached. `wrapper.cache` is the underlying `Moka`; each decorated function gets
    its own cache.
    """
    if key is not None and not callable(key):
        raise TypeError(f"key must be callable or None, not {type(key).__name__}")
    func = None
    if isinstance(maxsize, int):
        # A negative maxsize means no caching, as in lru_cache.
        maxsize = max(maxsize, 0)
    elif callable(maxsize) and isinstance(typed, bool):  # pyright: ignore[reportUnnecessaryIsInstance]
        # The bare form `@cached`, where `maxsize` is the function itself.
        func, maxsize = maxsize, 128
    elif maxsize is not None:
        raise TypeError("Expected first argument to be an integer, a callable, or None")
    # A bad ttl, policy, weigher or maxsize is reported here, where the decorator is
    # written, rather than when it is applied.
    Moka._for_cached(_capacity(maxsize), ttl, tti, policy, weigher)

    def decorating_function(func: Callable[..., Any]) -> Any:
        return _decorate(func, maxsize, typed, ttl, tti, wait_concurrent, policy, weigher, key)

    if func is not None:
        return decorating_function(func)
    return decorating_function


def _capacity(maxsize: int | None) -> int | None:
    """The engine's bound for `maxsize`: `lru_cache` takes any int, the engine counts in
    64 bits, and no cache can hold 2**64 entries, so larger sizes are unbounded."""
    if maxsize is not None and maxsize >= _ENGINE_LIMIT:
        return None
    return maxsize


_ENGINE_LIMIT = 2**64


def _decorate(
    func: Callable[..., Any],
    maxsize: int | None,
    typed: bool,
    ttl: float | None,
    tti: float | None,
    wait_concurrent: bool,
    policy: str,
    weigher: Callable[[Any, Any], int] | None,
    key: Callable[..., Any] | None,
) -> Any:
    if not callable(func):
        raise TypeError(
            f"the first argument must be callable (the function to cache), "
            f"not {type(func).__name__}"
        )
    # Each decorated function gets a cache of its own, even from one decorator object.
    cache = Moka._for_cached(_capacity(maxsize), ttl, tti, policy, weigher)
    core = CachedFunction(func, cache, maxsize, bool(typed), key, bool(wait_concurrent))
    if not inspect.iscoroutinefunction(func):
        return functools.update_wrapper(core, func)
    return _async_wrapper(func, core, cache, maxsize, bool(wait_concurrent))


def _async_wrapper(
    func: Callable[..., Any],
    core: CachedFunction[..., Any],
    cache: Moka[Any, Any],
    maxsize: int | None,
    wait_concurrent: bool,
) -> Any:
    lookup = core._lookup
    if maxsize == 0:
        # As for sync functions: no key is built, nothing is cached, misses counted.
        count_miss = core._count_miss

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            count_miss()
            return await func(*args, **kwargs)

    elif wait_concurrent:

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            key, hash_, value = lookup(args, kwargs, _MISSING)
            if value is not _MISSING:
                return value
            slot = _aio.WrapperSlot(core, key, hash_)
            return await _aio.join(cache, slot, lambda: func(*args, **kwargs))

    else:
        remember = core._remember

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            key, hash_, value = lookup(args, kwargs, _MISSING)
            if value is not _MISSING:
                return value
            value = await func(*args, **kwargs)
            remember(key, hash_, value)
            return value

    functools.update_wrapper(wrapper, func)
    wrapper.cache_info = core.cache_info  # type: ignore[attr-defined]
    wrapper.cache_clear = core.cache_clear  # type: ignore[attr-defined]
    wrapper.cache_parameters = core.cache_parameters  # type: ignore[attr-defined]
    wrapper.cache = cache  # type: ignore[attr-defined]
    return wrapper


cached.__module__ = "moka_py"
