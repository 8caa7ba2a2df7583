"""Static typing of `Moka`: checked by mypy --strict and pyright (strict), never run.

Lines that must be rejected carry both checkers' ignore comments with the error code;
both checkers also fail on an ignore comment that no longer hides an error, so each
such line proves the stubs reject the misuse.
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import assert_type

from moka_py import CacheStats, Moka


def listener(
    key: str, value: list[int], cause: Literal["explicit", "size", "expired", "replaced"]
) -> None:
    pass


def weigher(key: str, value: list[int]) -> int:
    return len(value)


def check_generic_cache() -> None:
    cache: Moka[str, list[int]] = Moka(
        100, ttl=10, tti=2.5, eviction_listener=listener, weigher=weigher
    )
    cache.set("a", [1])
    cache.set("a", [1], ttl=1.0, tti=2)
    assert_type(cache.get("a"), "list[int] | None")
    assert_type(cache.get("a", None), "list[int] | None")
    assert_type(cache.get("a", 0), "list[int] | int")
    assert_type(cache.get_with("a", lambda: [2]), list[int])
    assert_type(cache.remove("a"), "list[int] | None")
    assert_type(cache.remove("a", "gone"), "list[int] | str")
    assert_type(cache.get("a", []), list[int])
    assert_type(cache.get_many(["a"]), dict[str, list[int]])
    assert_type(cache.keys(), list[str])
    assert_type(cache.values(), list[list[int]])
    assert_type(cache.items(), list[tuple[str, list[int]]])
    assert_type(len(cache), int)
    assert_type(cache.count(), int)
    assert_type(cache.invalidate_if(lambda k, v: not v), int)
    assert_type(cache.stats(), CacheStats)
    assert_type(cache.stats().hit_rate, float)
    assert_type(cache.capacity, "int | None")
    assert_type(cache.policy, Literal["tiny_lfu", "lru"])
    for key in cache:
        assert_type(key, str)
    cache.set_many({"b": [2]})
    cache.set_many([("c", [3])], ttl=5)


async def use_aget_with(cache: Moka[str, int]) -> None:
    async def load() -> int:
        return 1

    assert_type(await cache.aget_with("a", load), int)


def check_misuse_is_rejected() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set(1, 1)  # type: ignore[arg-type]
    cache.set("a", "one")  # type: ignore[arg-type]
    cache.get_with("a", lambda: "one")  # type: ignore[arg-type,return-value]
    Moka(10, policy="fifo")  # type: ignore[arg-type]
    Moka("10")  # type: ignore[arg-type]
    Moka[str, int](10, weigher=lambda k, v: "heavy")  # type: ignore[arg-type,return-value]


def check_listener_causes_are_literals() -> None:
    def wrong(key: str, value: int, cause: Literal["evicted"]) -> None:
        pass

    Moka[str, int](10, eviction_listener=wrong)  # type: ignore[arg-type]
