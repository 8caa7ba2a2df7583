"""moka-py: a fast, thread-safe in-memory cache backed by the Rust moka crate.

`Moka` is the cache; `cached` is a drop-in replacement for `functools.lru_cache`
with ttl/tti, eviction policies, weighers and single-flight loading.
"""

from moka_py._cached import cached
from moka_py._moka_py import VERSION, CachedFunction, Moka
from moka_py._types import CacheInfo, CacheStats

__version__: str = VERSION

__all__ = ["VERSION", "CacheInfo", "CacheStats", "CachedFunction", "Moka", "__version__", "cached"]
