"""Time several builds of the extension side by side, in one process, against 0.5.0.

A change to the hot path moves a `get` by a few nanoseconds, less than this machine's
drift between two runs, so comparing two runs of ``run.py`` cannot show it. This loads the
extension module of each build (a ``_moka_py*.so`` built from any tree) under its own name
and times them in interleaved rounds, as ``run.py`` times libraries::

    # on the tree before the change, then again after it with /tmp/after
    maturin build --release -o /tmp/before && unzip -q -d /tmp/before /tmp/before/*.whl
    python benchmarks/builds.py before=/tmp/before/moka_py after=/tmp/after/moka_py

Each build is named ``name=directory`` (the directory holding the ``.so``). Only the
native module is loaded, so ``Moka`` and its methods are the build's own while the
``moka_py`` package's Python files are not involved. Prints the median ns per operation
for a hot set (100 keys) and a random walk (10,000 keys) and the ratio of 0.5.0 to each.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from time import perf_counter_ns
from types import ModuleType
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import peers

N = 10_000
VALUE = 314159


def load_build(name: str, directory: Path) -> ModuleType:
    """The native module in ``directory``, imported under a name of its own."""
    found = sorted(directory.glob("_moka_py*.so")) + sorted(directory.glob("_moka_py*.pyd"))
    if not found:
        raise SystemExit(f"{directory}: no _moka_py extension module")
    spec = importlib.util.spec_from_file_location(f"build_{name}._moka_py", found[0])
    if spec is None or spec.loader is None:
        raise SystemExit(f"{found[0]}: cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def operation(cache: Any, op: str) -> Callable[[str], object]:
    if op == "get":
        return cache.get  # type: ignore[no-any-return]
    if op == "get_with":
        get_with, initializer = cache.get_with, int
        return lambda key: get_with(key, initializer)
    if op == "set":
        set_, value = cache.set, VALUE + 1
        return lambda key: set_(key, value)
    raise SystemExit(f"unknown --op {op!r}")


def timed(fn: Callable[[str], object], keys: list[str]) -> int:
    start = perf_counter_ns()
    for key in keys:
        fn(key)
    return perf_counter_ns() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("builds", nargs="+", help="name=directory of a built _moka_py module")
    ap.add_argument("--op", default="get", choices=("get", "get_with", "set"))
    ap.add_argument("--ttl", action="store_true", help="caches with ttl and tti of an hour")
    ap.add_argument("--rounds", type=int, default=41)
    args = ap.parse_args(argv)

    modules: dict[str, Any] = {"0.5.0": peers.load_baseline()}
    for spec in args.builds:
        name, _, directory = spec.partition("=")
        modules[name] = load_build(name, Path(directory))
    keys = [f"key:{i}" for i in range(N)]
    for key in keys:
        hash(key)
    options: dict[str, float] = {"ttl": 3600.0, "tti": 3600.0} if args.ttl else {}
    fns = {}
    for name, module in modules.items():
        cache = module.Moka(N, **options)
        for key in keys:
            cache.set(key, VALUE)
        cache.run_pending_tasks()
        fns[name] = operation(cache, args.op)

    for label, pool in (("hot set", keys[:100]), ("random walk", keys)):
        order = [pool[i % len(pool)] for i in range(N)]
        random.Random(1).shuffle(order)
        samples: dict[str, list[float]] = {name: [] for name in fns}
        names = list(fns)
        for r in range(args.rounds + 1):  # the first round warms up
            for name in names[r % len(names) :] + names[: r % len(names)]:
                gc.collect(1)
                gc.disable()
                elapsed = timed(fns[name], order)
                gc.enable()
                if r:
                    samples[name].append(elapsed / len(order))
        medians = {name: statistics.median(xs) for name, xs in samples.items()}
        row = "  ".join(
            f"{name} {ns:6.1f} ns ({medians['0.5.0'] / ns:.2f}x)" for name, ns in medians.items()
        )
        print(f"{label:12} {row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
