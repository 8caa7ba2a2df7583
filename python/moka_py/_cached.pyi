"""Types of `moka_py.cached`: the decorated function keeps its parameters and result.

The runtime (`_cached.py`) is untyped plumbing; these overloads say what it returns:
a `CachedFunction[P, R]` for a regular function and an `AsyncCachedFunction[P, R]`
(a coroutine function with `lru_cache`'s attributes) for an `async def` one, in the
bare (`@cached`) and the called (`@cached(...)`) forms alike.
"""

from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, Literal, Protocol, TypeVar, overload, type_check_only

from typing_extensions import Concatenate, ParamSpec, Self, TypeAlias

from moka_py._moka_py import CachedFunction, CachedMethod, Moka
from moka_py._types import CacheInfo

_P = ParamSpec("_P")
_Q = ParamSpec("_Q")
_R = TypeVar("_R")
_S = TypeVar("_S")
_T = TypeVar("_T")

_Policy: TypeAlias = Literal["tiny_lfu", "lru"]
_Weigher: TypeAlias = Callable[[Any, Any], int]
_KeyFunction: TypeAlias = Callable[..., Hashable]

@type_check_only
class AsyncCachedFunction(Generic[_P, _R]):
    """What `@cached` returns for an `async def` function (for type checkers only).

    At runtime it is an `async def` function (`inspect.iscoroutinefunction` is true)
    carrying `cache_info`, `cache_clear`, `cache_parameters`, `cache` and
    `__wrapped__`.
    """

    @property
    def __wrapped__(self) -> Callable[_P, Coroutine[Any, Any, _R]]: ...
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> Coroutine[Any, Any, _R]: ...
    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...
    @overload
    def __get__(
        self: Callable[Concatenate[_T, _Q], Coroutine[Any, Any, _S]],
        instance: _T,
        owner: type[Any] | None = None,
        /,
    ) -> CachedMethod[_Q, Coroutine[Any, Any, _S]]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None, /) -> Self: ...
    def cache_info(self) -> CacheInfo: ...
    def cache_clear(self) -> None: ...
    def cache_parameters(self) -> dict[str, Any]: ...
    @property
    def cache(self) -> Moka[Any, _R]: ...

@type_check_only
class CachedDecorator(Protocol):
    """What `cached(...)` returns: applied to a function, the cached wrapper."""

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: Callable[_P, Coroutine[Any, Any, _R]], /
    ) -> AsyncCachedFunction[_P, _R]: ...
    @overload
    def __call__(self, func: Callable[_P, _R], /) -> CachedFunction[_P, _R]: ...

@overload
def cached(  # type: ignore[overload-overlap]
    maxsize: Callable[_P, Coroutine[Any, Any, _R]],
    typed: bool = False,
    *,
    ttl: float | None = None,
    tti: float | None = None,
    wait_concurrent: bool = False,
    policy: _Policy = "tiny_lfu",
    weigher: _Weigher | None = None,
    key: _KeyFunction | None = None,
) -> AsyncCachedFunction[_P, _R]: ...
@overload
def cached(
    maxsize: Callable[_P, _R],
    typed: bool = False,
    *,
    ttl: float | None = None,
    tti: float | None = None,
    wait_concurrent: bool = False,
    policy: _Policy = "tiny_lfu",
    weigher: _Weigher | None = None,
    key: _KeyFunction | None = None,
) -> CachedFunction[_P, _R]: ...
@overload
def cached(
    maxsize: int | None = 128,
    typed: bool = False,
    *,
    ttl: float | None = None,
    tti: float | None = None,
    wait_concurrent: bool = False,
    policy: _Policy = "tiny_lfu",
    weigher: _Weigher | None = None,
    key: _KeyFunction | None = None,
) -> CachedDecorator:
    """Caches a function's results, like `functools.lru_cache`, in a `Moka` cache.

    `@cached`, `@cached()`, `@cached(256)`, `@cached(maxsize=None)` and everything
    else `lru_cache` accepts, plus `ttl`/`tti` (seconds), `policy` (`"tiny_lfu"` or
    `"lru"`), `weigher(key, value) -> int`, `key(*args, **kwargs) -> hashable` and
    `wait_concurrent=True` (equal concurrent calls run the function once). Async
    functions get a coroutine-function wrapper. `wrapper.cache` is the `Moka`.
    """
