"""Type stubs for the native module `moka_py._moka_py`."""

from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Mapping
from types import GenericAlias
from typing import (
    Any,
    Final,
    Generic,
    Literal,
    Protocol,
    SupportsIndex,
    TypeVar,
    final,
    overload,
    type_check_only,
)

from typing_extensions import Concatenate, ParamSpec, Self, TypeAlias, disjoint_base

from moka_py._types import CacheInfo, CacheStats

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")
_D = TypeVar("_D")
_P = ParamSpec("_P")
_R = TypeVar("_R", covariant=True)
_Q = ParamSpec("_Q")
_S = TypeVar("_S")
_T = TypeVar("_T")

_Cause: TypeAlias = Literal["explicit", "size", "expired", "replaced"]
_Policy: TypeAlias = Literal["tiny_lfu", "lru"]
_Seconds: TypeAlias = int | float

VERSION: Final[str]
__all__ = ["VERSION", "CachedFunction", "Moka"]

@disjoint_base
class Moka(Generic[_K, _V]):
    """A thread-safe in-memory cache backed by the Rust `moka` crate.

    `capacity` bounds the total weight of the entries (each entry weighs 1 unless a
    `weigher(key, value) -> int` is given). When a call returns, the cache holds at
    most `capacity`, and every entry that left it was reported to `eviction_listener`.

    `ttl` (time to live) and `tti` (time to idle) are in seconds: an entry expires
    `ttl` seconds after it was written, or `tti` seconds after it was last read or
    written. `policy` is `"tiny_lfu"` (default: keeps the entries used most often,
    and may refuse a new one) or `"lru"` (evicts the least recently used).

    `eviction_listener(key, value, cause)` is called after each entry leaves, with
    `cause` one of `"explicit"`, `"replaced"`, `"size"` or `"expired"`, on the thread
    whose call caused it and outside any internal lock; an exception it raises goes
    to `sys.unraisablehook`. `expiry` is an optional object with
    `expire_after_create`, `expire_after_read` and/or `expire_after_update` methods
    giving each entry its own lifetime.
    """

    def __init__(
        self,
        capacity: int,
        ttl: _Seconds | None = None,
        tti: _Seconds | None = None,
        eviction_listener: Callable[[_K, _V, _Cause], object] | None = None,
        policy: _Policy = "tiny_lfu",
        weigher: Callable[[_K, _V], int] | None = None,
        expiry: object | None = None,
    ) -> None: ...
    def __class_getitem__(cls, key: Any) -> GenericAlias: ...
    def set(
        self, key: _K, value: _V, ttl: _Seconds | None = None, tti: _Seconds | None = None
    ) -> None:
        """Stores `value` under `key`, replacing any previous value.

        `ttl`/`tti` (seconds) give this entry its own time to live / time to idle;
        they can shorten, never extend, the cache-wide ones.
        """
    @overload
    def get(self, key: _K, default: None = None) -> _V | None:
        """Returns the value of `key`, or `default` if it is absent (or expired)."""
    @overload
    def get(self, key: _K, default: _D) -> _V | _D: ...
    def get_with(
        self,
        key: _K,
        initializer: Callable[[], _V],
        ttl: _Seconds | None = None,
        tti: _Seconds | None = None,
    ) -> _V:
        """Returns the value of `key`; if absent, stores and returns `initializer()`'s result.

        Concurrent callers for the same key run one initializer: the others wait
        (releasing the GIL) and get its result, or its exception, which is not
        cached. Calling `get_with` for the same key from inside its own initializer
        raises `RuntimeError`.
        """
    def aget_with(
        self,
        key: _K,
        factory: Callable[[], Awaitable[_V]],
        ttl: _Seconds | None = None,
        tti: _Seconds | None = None,
    ) -> Awaitable[_V]:
        """The async twin of `get_with`: `await cache.aget_with(key, factory)`.

        `factory()` must return an awaitable. Concurrent awaiters of one key (across
        tasks, threads and event loops) share one computation, whose result is cached
        and whose exception or cancellation is not. Cancelling one awaiter leaves the
        computation running for the others; cancelling the last one cancels it.
        """
    @overload
    def remove(self, key: _K, default: None = None) -> _V | None:
        """Removes `key` and returns its value, or `default` if it was absent."""
    @overload
    def remove(self, key: _K, default: _D) -> _V | _D: ...
    def clear(self) -> None:
        """Removes every entry (each is reported to the listener as "explicit")."""
    def count(self) -> int:
        """The number of entries, cheaply but approximately.

        It is moka's running count, brought up to date by the cache's lazy
        maintenance: it may still include entries that expired or were evicted, and
        may not yet include the latest inserts. `len(cache)` is exact.
        """
    def weighted_size(self) -> int:
        """The total weight of the entries (their count, without a weigher).

        Like `count()`, it is cheap and kept up to date lazily; call
        `run_pending_tasks()` first for an exact figure.
        """
    def run_pending_tasks(self) -> None:
        """Applies pending maintenance (evictions, expirations, listener calls) now."""
    def stats(self) -> CacheStats:
        """A snapshot of the cache's statistics (see `CacheStats`)."""
    def invalidate_if(self, predicate: Callable[[_K, _V], object]) -> int:
        """Removes the entries for which `predicate(key, value)` is true; returns how many.

        The listener sees them as "explicit". The predicate sees a snapshot; if it
        raises, nothing is removed.
        """
    def get_many(self, keys: Iterable[_K]) -> dict[_K, _V]:
        """The values of the `keys` that are present, as a dict (each read is recorded)."""
    def set_many(
        self,
        items: Mapping[_K, _V] | Iterable[tuple[_K, _V]],
        ttl: _Seconds | None = None,
        tti: _Seconds | None = None,
    ) -> None:
        """Stores every pair of a mapping or an iterable of `(key, value)` pairs.

        `ttl`/`tti` apply to each of them, as with `set`.
        """
    def remove_many(self, keys: Iterable[_K]) -> int:
        """Removes the keys that are present; returns how many."""
    def keys(self) -> list[_K]:
        """A list of the live keys (a snapshot; no read is recorded)."""
    def values(self) -> list[_V]:
        """A list of the live values (a snapshot; no read is recorded)."""
    def items(self) -> list[tuple[_K, _V]]:
        """A list of the live `(key, value)` pairs (a snapshot; no read is recorded)."""
    def __iter__(self) -> Iterator[_K]:
        """Iterates over a snapshot of the live keys (idle timers are not reset)."""
    def __len__(self) -> int:
        """The exact number of live entries (pending maintenance is applied first)."""
    def __contains__(self, key: object, /) -> bool:
        """Whether `key` is present; no read is recorded and its idle timer is not reset."""
    def __getitem__(self, key: _K, /) -> _V:
        """The value of `key`; raises `KeyError` if it is absent."""
    def __setitem__(self, key: _K, value: _V, /) -> None:
        """Stores `value` under `key`, like `set(key, value)`."""
    def __delitem__(self, key: _K, /) -> None:
        """Removes `key`; raises `KeyError` if it is absent."""
    @property
    def capacity(self) -> int | None:
        """The maximum total weight (`None` only for `cached(maxsize=None)`)."""
    @property
    def ttl(self) -> float | None:
        """The cache-wide time to live, in seconds."""
    @property
    def tti(self) -> float | None:
        """The cache-wide time to idle, in seconds."""
    @property
    def policy(self) -> _Policy:
        """The eviction policy."""
    @property
    def eviction_listener(self) -> Callable[[_K, _V, _Cause], object] | None:
        """The eviction listener."""
    @property
    def weigher(self) -> Callable[[_K, _V], int] | None:
        """The weigher."""
    @property
    def expiry(self) -> object | None:
        """The per-entry expiry policy object."""
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: dict[int, Any], /) -> Self: ...
    def __reduce_ex__(self, protocol: SupportsIndex, /) -> tuple[Any, ...]: ...
    def __setstate__(self, state: tuple[Any, Any, Any, Any], /) -> None: ...
    @staticmethod
    def _for_cached(
        capacity: int | None,
        ttl: _Seconds | None,
        tti: _Seconds | None,
        policy: str,
        weigher: Callable[[Any, Any], int] | None,
    ) -> Moka[Any, Any]: ...
    def _peek(self, key: _K, default: _D | None = None) -> _V | _D | None: ...
    def _async_state(self) -> Any: ...
    def _record_load(self, ok: bool, seconds: float) -> None: ...

@type_check_only
class CachedMethod(Protocol[_P, _R]):
    """A `@cached` function bound to an instance (for type checkers only).

    At runtime it is a `types.MethodType`; its attributes are the wrapper's.
    """

    @property
    def __self__(self) -> object: ...
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...
    def cache_info(self) -> CacheInfo: ...
    def cache_clear(self) -> None: ...
    def cache_parameters(self) -> dict[str, Any]: ...
    @property
    def cache(self) -> Moka[Any, Any]: ...

@final
class CachedFunction(Generic[_P, _R]):
    """The wrapper `@cached` returns for a regular (sync) function."""

    __wrapped__: Callable[_P, _R]
    def __new__(
        cls,
        func: Callable[_P, _R],
        cache: Moka[Any, Any],
        maxsize: int | None,
        typed: bool,
        key: Callable[..., Hashable] | None,
        wait_concurrent: bool,
    ) -> Self: ...
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...
    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...
    @overload
    def __get__(
        self: Callable[Concatenate[_T, _Q], _S],
        instance: _T,
        owner: type[Any] | None = None,
        /,
    ) -> CachedMethod[_Q, _S]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None, /) -> Self: ...
    def cache_info(self) -> CacheInfo:
        """`CacheInfo(hits, misses, maxsize, currsize)`, as `lru_cache` reports it."""
    def cache_clear(self) -> None:
        """Empties the cache and resets the hit/miss counts."""
    def cache_parameters(self) -> dict[str, Any]:
        """`{'maxsize': ..., 'typed': ...}`, as `lru_cache` reports it."""
    @property
    def cache(self) -> Moka[Any, _R]:
        """The underlying `Moka`."""
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: Any, /) -> Self: ...
    def __reduce__(self) -> str: ...
    def _lookup(
        self, args: tuple[Any, ...], kwargs: dict[str, Any] | None, missing: Any
    ) -> tuple[Hashable, int, Any]: ...
    def _peek(self, key: Hashable, hash: int, missing: Any) -> Any: ...
    def _remember(self, key: Hashable, hash: int, value: Any) -> None: ...
    def _count_miss(self) -> None: ...
