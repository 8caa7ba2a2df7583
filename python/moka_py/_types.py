"""Result types: `CacheInfo` (as functools.lru_cache reports it) and `CacheStats`."""

from __future__ import annotations

from typing import NamedTuple


class CacheInfo(NamedTuple):
    """Hit and miss counts of a `@cached` function, as `functools.lru_cache` reports them.

    `maxsize` is `None` for an unbounded cache; `currsize` is the exact number of
    cached entries.
    """

    hits: int
    misses: int
    maxsize: int | None
    currsize: int


class CacheStats(NamedTuple):
    """A snapshot of a cache's statistics, returned by `Moka.stats()`.

    - `hits` / `misses`: lookups that found / did not find their key (`get`,
      `get_with`, `aget_with`, `cache[key]`, `get_many`). A `get_with` that runs or
      waits for an initializer counts as a miss.
    - `hit_rate`: `hits / (hits + misses)`, `0.0` before any lookup.
    - `evictions`: entries removed to respect the capacity (listener cause "size").
    - `expirations`: entries removed because their ttl/tti passed ("expired").
    - `load_successes` / `load_failures`: initializer runs of `get_with`/`aget_with`
      that returned / raised (or were cancelled).
    - `total_load_time`: seconds spent in those initializers.
    """

    hits: int
    misses: int
    hit_rate: float
    evictions: int
    expirations: int
    load_successes: int
    load_failures: int
    total_load_time: float


CacheInfo.__module__ = "moka_py"
CacheStats.__module__ = "moka_py"
