"""Single-thread operations, each written once against the adapter interface.

Every case works on a cache of ``capacity`` (10,000) entries with string keys
(hashes computed before timing, as they are for any ``str`` used twice) and
times loops of ``ops`` (10,000) calls. A builder returns one or more
``Runner``s per library, or raises ``Unsupported`` with the reason.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from .peers import Adapter, Call, Unsupported
from .timing import Runner, empty_loop, time_await, time_call

VALUE = 314159  # one shared value object: the cost of values is not under test
TTL = 3600.0


@dataclass
class Params:
    capacity: int = 10_000
    ops: int = 10_000
    batch: int = 100
    seed: int = 20240601
    # 0: every key of the cache is drawn alike (the main tables). n > 0: lookups go
    # to n keys only, a working set that stays in the CPU's caches (see HOT_SET).
    hot: int = 0
    _fresh: count = field(default_factory=count)

    def __post_init__(self) -> None:
        self.keys = str_keys("key:", self.capacity)
        self.absent = str_keys("absent:", self.ops)

    def order(self, keys: list[str]) -> list[str]:
        """A seeded shuffle of ``ops`` keys drawn from ``keys`` (from its first ``hot``)."""
        pool = keys[: self.hot] if self.hot else keys
        out = [pool[i % len(pool)] for i in range(self.ops)]
        random.Random(self.seed).shuffle(out)
        return out

    def fresh_keys(self) -> list[str]:
        """Keys never seen before by any cache in this process."""
        return str_keys(f"new{next(self._fresh)}:", self.ops)


def str_keys(prefix: str, n: int) -> list[str]:
    keys = [f"{prefix}{i}" for i in range(n)]
    for k in keys:
        hash(k)  # str caches its hash: every library gets pre-hashed keys
    return keys


# The hot-set section: lookups spread over 100 of the 10,000 entries. A random walk
# over all 10,000 touches about a dozen cold cache lines per lookup in every library,
# and on a small VM those stalls (about 1 µs) dwarf the binding's own work; 100 hot
# entries show the binding's cost alone, the regime that short loops over a few
# distinct arguments (the usual `timeit` of `cache.get("k")`) measure.
HOT_SET = 100
HOT_CASES = (
    "get_hit",
    "get_hit_ttl",
    "get_with_hit",
    "set_existing",
    "get_miss",
    "cached_hit",
    "cached_wait_hit",
)


@dataclass
class Case:
    name: str
    title: str
    group: str  # "cache", "decorator", "bulk"
    build: Callable[[Adapter, Params], list[tuple[str, Runner]]]
    detail: str = ""
    headline: bool = False  # one of the required comparisons against 0.5.0


# -- helpers -----------------------------------------------------------------


def _hit_fraction(call: Call, keys: list[str], expect_hit: bool) -> float:
    hits = 0
    for k in keys:
        r = call.fn(k, *call.args)
        # theine answers (value, found); the others the value or None
        hits += bool(r[1]) if isinstance(r, tuple) else r is not None
    frac = hits / len(keys)
    return frac if expect_hit else 1.0 - frac


def _checked(call: Call, keys: list[str], expect_hit: bool) -> str:
    ok = _hit_fraction(call, keys, expect_hit)
    if ok < 0.99:
        what = "hits" if expect_hit else "misses"
        return f"only {ok:.0%} {what}"
    return ""


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _timed(call: Call, items: list[Any], ops: int | None = None) -> Callable[[], tuple[int, int]]:
    n = len(items) if ops is None else ops
    return lambda: (time_call(call, items), n)


# -- cache operations --------------------------------------------------------


def build_get_hit(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    cache = ad.make(p.capacity)
    ad.fill(cache, p.keys, VALUE)
    call = ad.op_get(cache)
    order = p.order(p.keys)
    note = _join(call.note, _checked(call, p.keys, True))
    return [("", Runner(_timed(call, order), note=note))]


def build_get_hit_ttl(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    cache = ad.make(p.capacity, ttl=TTL, tti=TTL)
    ad.fill(cache, p.keys, VALUE, ttl=TTL)
    call = ad.op_get(cache)
    order = p.order(p.keys)
    kind = {
        "cachebox": "TTLCache, ttl only",
        "cachetools": "TTLCache, ttl only",
        "theine": "per-entry ttl, no tti",
    }.get(ad.id, "")
    note = _join(kind, call.note, _checked(call, p.keys, True))
    return [("", Runner(_timed(call, order), note=note))]


def build_get_miss(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    if ad.id == "lru_cache":
        raise Unsupported("a miss runs the function (see @cached miss)")
    cache = ad.make(p.capacity)
    ad.fill(cache, p.keys, VALUE)
    call = ad.op_get(cache)
    order = p.order(p.absent)
    note = _join(call.note, _checked(call, p.absent, False))
    return [("", Runner(_timed(call, order), note=note))]


def build_set_existing(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    cache = ad.make(p.capacity)
    ad.fill(cache, p.keys, VALUE)
    call = ad.op_set(cache, VALUE + 1)
    return [("", Runner(_timed(call, p.order(p.keys)), note=call.note))]


def build_set_new_full(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    cache = ad.make(p.capacity)
    ad.fill(cache, p.keys, VALUE)
    call = ad.op_set(cache, VALUE)
    state: dict[str, list[str]] = {"keys": []}
    unbounded = ad.id == "dict"

    def prepare() -> None:
        if unbounded:  # keep the dict at its starting size between rounds
            for k in state["keys"]:
                cache.pop(k, None)
        state["keys"] = p.fresh_keys()

    def measure() -> tuple[int, int]:
        return time_call(call, state["keys"]), len(state["keys"])

    note = _join(call.note, "unbounded: no eviction" if unbounded else "")
    return [("", Runner(measure, prepare, note=note))]


def build_get_with_hit(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    cache = ad.make(p.capacity)
    ad.fill(cache, p.keys, VALUE)
    call = ad.op_get_with(cache, lambda: VALUE)
    return [("", Runner(_timed(call, p.order(p.keys)), note=call.note))]


def build_remove(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    cache = ad.make(p.capacity)
    call = ad.op_remove(cache)
    order = list(p.keys)
    random.Random(p.seed).shuffle(order)

    flush = getattr(cache, "run_pending_tasks", None)

    def prepare() -> None:
        ad.fill(cache, p.keys, VALUE)  # untimed refill
        if flush is not None:  # the refill's own maintenance is not a removal's cost
            flush()

    return [
        (
            "",
            Runner(
                _timed(call, order),
                prepare,
                note=_join(call.note, "refilled untimed before each loop"),
            ),
        )
    ]


def build_set_ttl(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    cache = ad.make_ttl_entries(p.capacity)
    ad.fill(cache, p.keys, VALUE)
    call = ad.op_set_ttl(cache, VALUE, TTL)
    return [("", Runner(_timed(call, p.order(p.keys)), note=call.note))]


# -- decorators ----------------------------------------------------------------


def _sync_fn() -> Callable[[Any], Any]:
    def compute(x: Any) -> Any:
        return x

    return compute


def _decorated(
    ad: Adapter, p: Params, *, wait_concurrent: bool = False
) -> tuple[Callable[..., Any], str]:
    f, note = ad.decorate(_sync_fn(), p.capacity, wait_concurrent=wait_concurrent)
    for k in p.keys:
        f(k)
    return f, note


def build_cached_hit(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    f, note = _decorated(ad, p)
    return [("", Runner(_timed(Call(f), p.order(p.keys)), note=note))]


def build_cached_wait_hit(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    f, note = _decorated(ad, p, wait_concurrent=True)
    return [("", Runner(_timed(Call(f), p.order(p.keys)), note=note))]


def build_cached_miss(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    f, note = _decorated(ad, p)
    call = Call(f)
    state: dict[str, list[str]] = {"keys": []}

    def prepare() -> None:
        state["keys"] = p.fresh_keys()

    def measure() -> tuple[int, int]:
        return time_call(call, state["keys"]), len(state["keys"])

    return [("", Runner(measure, prepare, note=_join(note, "full cache: every call evicts")))]


def build_cached_async_hit(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    async def compute(x: Any) -> Any:
        return x

    f, note = ad.decorate(compute, p.capacity)
    loop = asyncio.new_event_loop()

    async def fill() -> None:
        for k in p.keys:
            await f(k)

    loop.run_until_complete(fill())
    order = p.order(p.keys)

    def measure() -> tuple[int, int]:
        return loop.run_until_complete(time_await(f, order)), len(order)

    return [("", Runner(measure, note=_join(note, "await inside one running event loop")))]


# -- bulk ----------------------------------------------------------------------


def _batches(p: Params) -> list[list[str]]:
    order = p.order(p.keys)
    return [order[i : i + p.batch] for i in range(0, len(order), p.batch)]


def build_get_many(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    cache = ad.make(p.capacity)
    ad.fill(cache, p.keys, VALUE)
    batches = _batches(p)
    out = []
    for suffix, call in ad.op_get_many(cache):
        got = call.fn(batches[0], *call.args)
        note = (
            call.note
            if len(got) == len(set(batches[0]))
            else _join(call.note, f"found {len(got)}/{p.batch}")
        )
        out.append((suffix, Runner(_timed(call, batches, p.ops), note=note)))
    return out


def build_set_many(ad: Adapter, p: Params) -> list[tuple[str, Runner]]:
    cache = ad.make(p.capacity)
    ad.fill(cache, p.keys, VALUE)
    mappings = [dict.fromkeys(b, VALUE + 1) for b in _batches(p)]
    ops = sum(len(m) for m in mappings)
    return [
        (suffix, Runner(_timed(call, mappings, ops), note=call.note))
        for suffix, call in ad.op_set_many(cache, VALUE)
    ]


# -- the harness's own cost -------------------------------------------------------


def floor_runners(p: Params) -> dict[str, Runner]:
    """What the loop costs without any cache: shown as its own rows."""
    order = p.order(p.keys)
    return {
        "empty loop (for k in keys: pass)": Runner(lambda: (empty_loop(order), len(order))),
        "loop + builtin call (id(k))": Runner(_timed(Call(id), order)),
        "loop + 2-arg builtin call (isinstance(k, str))": Runner(
            _timed(Call(isinstance, (str,)), order)
        ),
    }


CASES: list[Case] = [
    Case("get_hit", "get, hit", "cache", build_get_hit, headline=True),
    Case("get_hit_ttl", "get, hit, cache with ttl+tti", "cache", build_get_hit_ttl, headline=True),
    Case("get_with_hit", "get_with, hit", "cache", build_get_with_hit, headline=True),
    Case("set_existing", "set, existing key", "cache", build_set_existing, headline=True),
    Case("get_miss", "get, miss", "cache", build_get_miss, headline=True),
    Case(
        "set_new_full", "set, new key into a full cache", "cache", build_set_new_full, headline=True
    ),
    Case("remove", "remove, present key", "cache", build_remove),
    Case("set_ttl", "set with per-entry ttl, existing key", "cache", build_set_ttl),
    Case("cached_hit", "@cached sync, hit", "decorator", build_cached_hit),
    Case("cached_miss", "@cached sync, miss (evicting)", "decorator", build_cached_miss),
    Case("cached_async_hit", "@cached async, hit", "decorator", build_cached_async_hit),
    Case(
        "cached_wait_hit", "@cached(wait_concurrent=True), hit", "decorator", build_cached_wait_hit
    ),
    Case("get_many", "get_many, batches of 100 (per key)", "bulk", build_get_many),
    Case("set_many", "set_many, batches of 100 (per key)", "bulk", build_set_many),
]

CASE_NAMES = [c.name for c in CASES]
