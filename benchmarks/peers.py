"""The libraries under test, each behind one small adapter interface.

A case asks an adapter for a cache and for the *bound* callable that performs
one operation (``cache.get``, ``cache.__setitem__``, ...), plus the extra
positional arguments the call takes after the key. The timing loop then calls
``fn(key, *extra)`` directly, so no adapter code runs inside a timed loop
unless a library lacks the operation and the adapter says so with a note
(for example "Python loop of get").

moka-py 0.5.0 is installed from PyPI into ``benchmarks/.peers/`` and imported
as ``moka_py_050`` so that it can sit in the same process as this tree's
``moka_py``. The other peers come from the ``bench`` dependency group in
pyproject.toml, where their versions are pinned.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

BASELINE_VERSION = "0.5.0"
BASELINE_MODULE = "moka_py_050"
PEERS_DIR = Path(__file__).resolve().parent / ".peers"
# Only ``lib/`` goes on sys.path: ``_install/`` still holds a package named
# ``moka_py`` that would shadow this tree's build.
PEERS_LIB = PEERS_DIR / "lib"

# The module imported as "this tree". Overridable so the harness can be
# developed against 0.5.0 before the new core exists.
OURS_ENV = "MOKA_BENCH_OURS"

MISS = object()


class Unsupported(Exception):
    """The library has no such operation (the reason is shown in the report)."""


@dataclass
class Call:
    """A bound operation: the loop calls ``fn(item, *args)``."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    note: str = ""


def _identity(x: Any) -> Any:
    return x


async def _aidentity(x: Any) -> Any:
    return x


@dataclass
class Adapter:
    """Uniform face of one library. Subclasses override what they support."""

    id: str
    label: str
    version: str = ""
    module: Any = None
    notes: list[str] = field(default_factory=list)

    # -- construction -----------------------------------------------------
    def make(self, capacity: int, *, ttl: float | None = None, tti: float | None = None) -> Any:
        raise Unsupported("no cache object")

    def fill(
        self, cache: Any, keys: Iterable[Hashable], value: Any, ttl: float | None = None
    ) -> None:
        """Insert untimed. ``ttl`` matters only where expiration is per entry."""
        setter = self.op_set(cache, value)
        for k in keys:
            setter.fn(k, *setter.args)

    # -- operations (each returns a Call) ---------------------------------
    def op_get(self, cache: Any) -> Call:
        raise Unsupported("no get")

    def op_set(self, cache: Any, value: Any) -> Call:
        raise Unsupported("no set")

    def op_set_ttl(self, cache: Any, value: Any, ttl: float) -> Call:
        raise Unsupported("no per-entry ttl")

    def make_ttl_entries(self, capacity: int) -> Any:
        """Cache able to take a per-entry ttl (same object as make() for most)."""
        return self.make(capacity)

    def op_get_with(self, cache: Any, init: Callable[[], Any]) -> Call:
        raise Unsupported("no get-or-insert-with")

    def op_remove(self, cache: Any) -> Call:
        raise Unsupported("no remove")

    def op_get_many(self, cache: Any) -> list[tuple[str, Call]]:
        get = self.op_get(cache)
        return [("", _get_many_loop(get))]

    def op_set_many(self, cache: Any, value: Any) -> list[tuple[str, Call]]:
        setter = self.op_set(cache, value)
        return [("", _set_many_loop(setter))]

    # -- decorators -------------------------------------------------------
    def decorate(
        self, fn: Callable[..., Any], maxsize: int, *, wait_concurrent: bool = False
    ) -> tuple[Callable[..., Any], str]:
        raise Unsupported("no decorator")

    # -- hit-ratio policies -----------------------------------------------
    def policies(self) -> list[tuple[str, Callable[[int], Callable[[Hashable], bool]]]]:
        """(policy label, factory(capacity) -> access(key) -> hit?)."""
        return []

    # -- threads ----------------------------------------------------------
    def thread_ops(
        self, cache: Any, value: Any
    ) -> tuple[Callable[..., Any], Callable[..., Any], str]:
        """(get(key), set(key, value), note) safe to call from several threads."""
        get = self.op_get(cache)
        setter = self.op_set(cache, value)
        return _unary(get), setter.fn, ""


def _unary(call: Call) -> Callable[[Any], Any]:
    if not call.args:
        return call.fn
    fn, args = call.fn, call.args
    return lambda k: fn(k, *args)


def _get_many_loop(get: Call) -> Call:
    fn = get.fn
    if get.args:
        raise Unsupported("get needs extra arguments")
    miss = MISS

    def get_many(keys: list[Hashable]) -> dict[Hashable, Any]:
        return {k: v for k in keys if (v := fn(k, miss)) is not miss}

    return Call(get_many, note="Python loop of get")


def _set_many_loop(setter: Call) -> Call:
    fn, args = setter.fn, setter.args

    def set_many(mapping: dict[Hashable, Any]) -> None:
        for k, v in mapping.items():
            fn(k, v, *args[1:])

    return Call(set_many, note="Python loop of set")


def _access_via_get_set(
    get: Callable[..., Any], put: Callable[[Any, Any], Any]
) -> Callable[[Hashable], bool]:
    miss = MISS

    def access(k: Hashable) -> bool:
        if get(k, miss) is miss:
            put(k, k)
            return False
        return True

    return access


# ---------------------------------------------------------------------------
# moka-py (this tree and 0.5.0 share one adapter; features are detected)
# ---------------------------------------------------------------------------


class MokaAdapter(Adapter):
    def make(self, capacity: int, *, ttl: float | None = None, tti: float | None = None) -> Any:
        return self.module.Moka(capacity, ttl=ttl, tti=tti)

    def op_get(self, cache: Any) -> Call:
        return Call(cache.get)

    def op_set(self, cache: Any, value: Any) -> Call:
        return Call(cache.set, (value,))

    def op_set_ttl(self, cache: Any, value: Any, ttl: float) -> Call:
        return Call(cache.set, (value, ttl))

    def op_get_with(self, cache: Any, init: Callable[[], Any]) -> Call:
        return Call(cache.get_with, (init,))

    def op_remove(self, cache: Any) -> Call:
        return Call(cache.remove)

    def op_get_many(self, cache: Any) -> list[tuple[str, Call]]:
        loop = _get_many_loop(self.op_get(cache))
        if hasattr(cache, "get_many"):
            return [("", Call(cache.get_many, note="native get_many")), ("loop", loop)]
        return [("", loop)]

    def op_set_many(self, cache: Any, value: Any) -> list[tuple[str, Call]]:
        loop = _set_many_loop(self.op_set(cache, value))
        if hasattr(cache, "set_many"):
            return [("", Call(cache.set_many, note="native set_many")), ("loop", loop)]
        return [("", loop)]

    def decorate(
        self, fn: Callable[..., Any], maxsize: int, *, wait_concurrent: bool = False
    ) -> tuple[Callable[..., Any], str]:
        return self.module.cached(maxsize, wait_concurrent=wait_concurrent)(fn), ""

    def policies(self) -> list[tuple[str, Callable[[int], Callable[[Hashable], bool]]]]:
        def factory(policy: str) -> Callable[[int], Callable[[Hashable], bool]]:
            def make(capacity: int) -> Callable[[Hashable], bool]:
                c = self.module.Moka(capacity, policy=policy)
                return _access_via_get_set(c.get, c.set)

            return make

        return [("TinyLFU", factory("tiny_lfu")), ("LRU", factory("lru"))]

    def has(self, method: str) -> bool:
        return hasattr(self.module.Moka(1), method)


# ---------------------------------------------------------------------------
# cachebox
# ---------------------------------------------------------------------------


class CacheboxAdapter(Adapter):
    def make(self, capacity: int, *, ttl: float | None = None, tti: float | None = None) -> Any:
        cb = self.module
        if ttl is not None:
            return cb.TTLCache(capacity, ttl)
        return cb.LRUCache(capacity)

    def make_ttl_entries(self, capacity: int) -> Any:
        return self.module.VTTLCache(capacity)

    def op_get(self, cache: Any) -> Call:
        return Call(cache.get)

    def op_set(self, cache: Any, value: Any) -> Call:
        return Call(cache.insert, (value,))

    def op_set_ttl(self, cache: Any, value: Any, ttl: float) -> Call:
        return Call(cache.insert, (value, ttl), note="VTTLCache")

    def op_get_with(self, cache: Any, init: Callable[[], Any]) -> Call:
        return Call(cache.setdefault_with, (init,), note="setdefault_with (no single-flight)")

    def op_remove(self, cache: Any) -> Call:
        return Call(cache.pop)

    def op_set_many(self, cache: Any, value: Any) -> list[tuple[str, Call]]:
        return [("", Call(cache.update, note="native update"))]

    def decorate(
        self, fn: Callable[..., Any], maxsize: int, *, wait_concurrent: bool = False
    ) -> tuple[Callable[..., Any], str]:
        # postprocess=None returns the cached object itself, as lru_cache and
        # moka-py do (the default copies dict/list/set results).
        cache = self.module.LRUCache(maxsize)
        wrapped = self.module.cached(cache, lock=wait_concurrent, postprocess=None)(fn)
        return wrapped, "LRUCache, lock=True" if wait_concurrent else "LRUCache, lock=False"

    def policies(self) -> list[tuple[str, Callable[[int], Callable[[Hashable], bool]]]]:
        def factory(cls_name: str) -> Callable[[int], Callable[[Hashable], bool]]:
            def make(capacity: int) -> Callable[[Hashable], bool]:
                c = getattr(self.module, cls_name)(capacity)
                return _access_via_get_set(c.get, c.insert)

            return make

        return [
            ("LRU", factory("LRUCache")),
            ("LFU", factory("LFUCache")),
            ("FIFO", factory("FIFOCache")),
            ("Random", factory("RRCache")),
        ]


# ---------------------------------------------------------------------------
# cachetools (pure Python, not thread-safe: threads take a lock)
# ---------------------------------------------------------------------------


class CachetoolsAdapter(Adapter):
    def make(self, capacity: int, *, ttl: float | None = None, tti: float | None = None) -> Any:
        ct = self.module
        if ttl is not None:
            return ct.TTLCache(capacity, ttl)
        return ct.LRUCache(capacity)

    def make_ttl_entries(self, capacity: int) -> Any:
        # Per-entry lifetimes in cachetools come from a ttu(key, value, now)
        # callback run on every insert.
        return self.module.TLRUCache(capacity, lambda _k, _v, now: now + 3600.0)

    def op_get(self, cache: Any) -> Call:
        return Call(cache.get)

    def op_set(self, cache: Any, value: Any) -> Call:
        return Call(cache.__setitem__, (value,))

    def op_set_ttl(self, cache: Any, value: Any, ttl: float) -> Call:
        return Call(cache.__setitem__, (value,), note="TLRUCache, ttl from a ttu callback")

    def op_remove(self, cache: Any) -> Call:
        return Call(cache.pop)

    def op_set_many(self, cache: Any, value: Any) -> list[tuple[str, Call]]:
        return [("", Call(cache.update, note="MutableMapping.update"))]

    def decorate(
        self, fn: Callable[..., Any], maxsize: int, *, wait_concurrent: bool = False
    ) -> tuple[Callable[..., Any], str]:
        import inspect

        if inspect.iscoroutinefunction(fn):
            raise Unsupported("no async support in cached()")
        cache = self.module.LRUCache(maxsize)
        if wait_concurrent:
            cond = threading.Condition()
            return self.module.cached(cache, condition=cond)(fn), "LRUCache, condition="
        return self.module.cached(cache)(fn), "LRUCache, no lock"

    def policies(self) -> list[tuple[str, Callable[[int], Callable[[Hashable], bool]]]]:
        def factory(cls_name: str) -> Callable[[int], Callable[[Hashable], bool]]:
            def make(capacity: int) -> Callable[[Hashable], bool]:
                c = getattr(self.module, cls_name)(capacity)
                return _access_via_get_set(c.get, c.__setitem__)

            return make

        return [("LRU", factory("LRUCache")), ("LFU", factory("LFUCache"))]

    def thread_ops(
        self, cache: Any, value: Any
    ) -> tuple[Callable[..., Any], Callable[..., Any], str]:
        lock = threading.Lock()
        cget, cset = cache.get, cache.__setitem__

        def get(k: Hashable) -> Any:
            with lock:
                return cget(k)

        def put(k: Hashable, v: Any) -> None:
            with lock:
                cset(k, v)

        return get, put, "behind a threading.Lock (not thread-safe alone)"


# ---------------------------------------------------------------------------
# lru-dict
# ---------------------------------------------------------------------------


class LruDictAdapter(Adapter):
    def make(self, capacity: int, *, ttl: float | None = None, tti: float | None = None) -> Any:
        if ttl is not None or tti is not None:
            raise Unsupported("no expiration")
        return self.module.LRU(capacity)

    def op_get(self, cache: Any) -> Call:
        return Call(cache.get)

    def op_set(self, cache: Any, value: Any) -> Call:
        return Call(cache.__setitem__, (value,))

    def op_remove(self, cache: Any) -> Call:
        return Call(cache.pop)

    def op_set_many(self, cache: Any, value: Any) -> list[tuple[str, Call]]:
        return [("", Call(cache.update, note="native update"))]

    def policies(self) -> list[tuple[str, Callable[[int], Callable[[Hashable], bool]]]]:
        def make(capacity: int) -> Callable[[Hashable], bool]:
            c = self.module.LRU(capacity)
            return _access_via_get_set(c.get, c.__setitem__)

        return [("LRU", make)]


# ---------------------------------------------------------------------------
# theine (W-TinyLFU; get returns (value, found))
# ---------------------------------------------------------------------------


class TheineAdapter(Adapter):
    def make(self, capacity: int, *, ttl: float | None = None, tti: float | None = None) -> Any:
        # theine has no cache-wide ttl/tti: fill() gives each entry the ttl.
        return self.module.Cache(capacity)

    def fill(
        self, cache: Any, keys: Iterable[Hashable], value: Any, ttl: float | None = None
    ) -> None:
        td = timedelta(seconds=ttl) if ttl is not None else None
        for k in keys:
            cache.set(k, value, td)

    def op_get(self, cache: Any) -> Call:
        return Call(cache.get, note="returns (value, found)")

    def op_set(self, cache: Any, value: Any) -> Call:
        return Call(cache.set, (value,))

    def op_set_ttl(self, cache: Any, value: Any, ttl: float) -> Call:
        return Call(cache.set, (value, timedelta(seconds=ttl)), note="ttl as a timedelta")

    def op_remove(self, cache: Any) -> Call:
        return Call(cache.delete)

    def op_get_many(self, cache: Any) -> list[tuple[str, Call]]:
        get = cache.get

        def get_many(keys: list[Hashable]) -> dict[Hashable, Any]:
            out = {}
            for k in keys:
                v, ok = get(k)
                if ok:
                    out[k] = v
            return out

        return [("", Call(get_many, note="Python loop of get"))]

    def decorate(
        self, fn: Callable[..., Any], maxsize: int, *, wait_concurrent: bool = False
    ) -> tuple[Callable[..., Any], str]:
        return self.module.Memoize(maxsize, None)(fn), "Memoize (always single-flight)"

    def policies(self) -> list[tuple[str, Callable[[int], Callable[[Hashable], bool]]]]:
        def make(capacity: int) -> Callable[[Hashable], bool]:
            c = self.module.Cache(capacity)
            get, put = c.get, c.set

            def access(k: Hashable) -> bool:
                if get(k)[1]:
                    return True
                put(k, k)
                return False

            access.keepalive = c  # type: ignore[attr-defined]
            return access

        return [("W-TinyLFU", make)]

    def thread_ops(
        self, cache: Any, value: Any
    ) -> tuple[Callable[..., Any], Callable[..., Any], str]:
        return cache.get, cache.set, ""


# ---------------------------------------------------------------------------
# functools.lru_cache: a cache only through a wrapped function
# ---------------------------------------------------------------------------


class LruCacheAdapter(Adapter):
    def make(self, capacity: int, *, ttl: float | None = None, tti: float | None = None) -> Any:
        if ttl is not None or tti is not None:
            raise Unsupported("no expiration")
        return functools.lru_cache(maxsize=capacity)(_identity)

    def fill(
        self, cache: Any, keys: Iterable[Hashable], value: Any, ttl: float | None = None
    ) -> None:
        for k in keys:
            cache(k)

    def op_get(self, cache: Any) -> Call:
        return Call(cache, note="call of an lru_cache-wrapped function (hit)")

    def decorate(
        self, fn: Callable[..., Any], maxsize: int, *, wait_concurrent: bool = False
    ) -> tuple[Callable[..., Any], str]:
        import inspect

        if inspect.iscoroutinefunction(fn):
            raise Unsupported("caches the coroutine object, which can be awaited once")
        note = "no single-flight" if wait_concurrent else ""
        return functools.lru_cache(maxsize=maxsize)(fn), note

    def policies(self) -> list[tuple[str, Callable[[int], Callable[[Hashable], bool]]]]:
        def make(capacity: int) -> Callable[[Hashable], bool]:
            f = functools.lru_cache(maxsize=capacity)(_identity)
            info = f.cache_info

            def access(k: Hashable) -> bool:
                before = info().hits
                f(k)
                return info().hits != before

            return access

        return [("LRU", make)]

    def op_get_many(self, cache: Any) -> list[tuple[str, Call]]:
        raise Unsupported("no get")

    def thread_ops(
        self, cache: Any, value: Any
    ) -> tuple[Callable[..., Any], Callable[..., Any], str]:
        return cache, (lambda k, v: cache(k)), "no set: the write slot is a call too (a hit)"


# ---------------------------------------------------------------------------
# dict: the floor (unbounded, no eviction, no expiration)
# ---------------------------------------------------------------------------


class DictAdapter(Adapter):
    def make(self, capacity: int, *, ttl: float | None = None, tti: float | None = None) -> Any:
        if ttl is not None or tti is not None:
            raise Unsupported("no expiration")
        return {}

    def op_get(self, cache: Any) -> Call:
        return Call(cache.get)

    def op_set(self, cache: Any, value: Any) -> Call:
        return Call(cache.__setitem__, (value,))

    def op_get_with(self, cache: Any, init: Callable[[], Any]) -> Call:
        return Call(cache.setdefault, (init,), note="setdefault (eager, no factory call)")

    def op_remove(self, cache: Any) -> Call:
        return Call(cache.pop)

    def op_set_many(self, cache: Any, value: Any) -> list[tuple[str, Call]]:
        return [("", Call(cache.update, note="dict.update"))]


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _install_baseline() -> None:
    """pip-install moka-py 0.5.0 into .peers/_install and copy it as moka_py_050."""
    target = PEERS_DIR / "_install"
    spec = f"moka-py=={BASELINE_VERSION}"
    if importlib.util.find_spec("pip") is not None:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            spec,
        ]
    elif shutil.which("uv"):
        cmd = [
            "uv",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--python",
            sys.executable,
            "--target",
            str(target),
            spec,
        ]
    else:
        raise RuntimeError(f"neither pip nor uv is available to install {spec}")
    print(f"installing {spec} into {target} ...", flush=True)
    if target.exists():
        shutil.rmtree(target)
    subprocess.run(cmd, check=True)
    dest = PEERS_LIB / BASELINE_MODULE
    if dest.exists():
        shutil.rmtree(dest)
    PEERS_LIB.mkdir(parents=True, exist_ok=True)
    # The extension keeps its file name (_moka_py.*.so), so its init symbol
    # PyInit__moka_py still matches; only the package directory is renamed.
    shutil.copytree(target / "moka_py", dest, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "VERSION.txt").write_text(BASELINE_VERSION + "\n")


def load_baseline() -> Any:
    marker = PEERS_LIB / BASELINE_MODULE / "VERSION.txt"
    if not marker.exists() or marker.read_text().strip() != BASELINE_VERSION:
        _install_baseline()
    if str(PEERS_LIB) not in sys.path:
        sys.path.insert(0, str(PEERS_LIB))
    return importlib.import_module(BASELINE_MODULE)


def ours_module_name() -> str:
    return os.environ.get(OURS_ENV, "moka_py")


def load_ours() -> tuple[Any, str]:
    name = ours_module_name()
    if name == BASELINE_MODULE:
        mod = load_baseline()
        return mod, f"{mod.VERSION} (stand-in: {BASELINE_MODULE})"
    mod = importlib.import_module(name)
    if not hasattr(mod.Moka(1), "get"):
        raise SystemExit(
            f"{name}.Moka has no get(): this tree's core is not built yet. "
            f"Build it (maturin develop --release) or pass --ours-module {BASELINE_MODULE}."
        )
    version = getattr(mod, "__version__", None) or getattr(mod, "VERSION", "?")
    return mod, f"{version} (this tree)"


ALL_IDS = ("ours", "moka050", "cachebox", "cachetools", "lrudict", "theine", "lru_cache", "dict")


def load(ids: Iterable[str] = ALL_IDS) -> list[Adapter]:
    """Adapters for the requested libraries, in report order."""
    wanted = list(ids)
    out: list[Adapter] = []
    for lid in ALL_IDS:
        if lid not in wanted:
            continue
        out.append(load_one(lid))
    return out


def load_one(lid: str) -> Adapter:
    if lid == "ours":
        mod, version = load_ours()
        return MokaAdapter("ours", "moka-py", version, mod)
    if lid == "moka050":
        mod = load_baseline()
        return MokaAdapter("moka050", f"moka-py {BASELINE_VERSION}", mod.VERSION, mod)
    if lid == "cachebox":
        return CacheboxAdapter(
            "cachebox", "cachebox", _dist_version("cachebox"), importlib.import_module("cachebox")
        )
    if lid == "cachetools":
        return CachetoolsAdapter(
            "cachetools",
            "cachetools",
            _dist_version("cachetools"),
            importlib.import_module("cachetools"),
        )
    if lid == "lrudict":
        return LruDictAdapter(
            "lrudict", "lru-dict", _dist_version("lru-dict"), importlib.import_module("lru")
        )
    if lid == "theine":
        return TheineAdapter(
            "theine", "theine", _dist_version("theine"), importlib.import_module("theine")
        )
    if lid == "lru_cache":
        return LruCacheAdapter("lru_cache", "functools.lru_cache", "stdlib", functools)
    if lid == "dict":
        return DictAdapter("dict", "dict (floor)", "builtin", dict)
    raise KeyError(lid)


def versions(adapters: Iterable[Adapter]) -> dict[str, str]:
    return {a.label: a.version for a in adapters}
