"""Throughput of 1, 2 and 4 threads reading and writing one shared cache.

Each library runs in its own subprocess (``python -m benchmarks.threads``), so
a library that deadlocks (moka-py 0.5.0 can, see SPEC.md) is killed after a
timeout and reported as "hung" instead of freezing the whole run. The parent
interleaves libraries across rounds just like the single-thread cases.

Work per thread: its own seeded shuffle of the 10,000 cached keys; per key
four ``get`` and one ``set`` of an existing key (80% reads, 20% writes).
Throughput is all threads' operations divided by the wall time from a barrier
release until the last thread finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter_ns
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
THREAD_COUNTS = (1, 2, 4)
READS_PER_WRITE = 4


def gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def _worker_loop(
    get: Callable[[Any], Any], put: Callable[[Any, Any], Any], keys: Sequence[Any], value: Any
) -> None:
    for k in keys:
        get(k)
        get(k)
        get(k)
        get(k)
        put(k, value)


def measure(
    lib: str, counts: Sequence[int], keys_per_thread: int, capacity: int = 10_000
) -> dict[str, Any]:
    from .cases import VALUE, str_keys
    from .peers import load_one

    ad = load_one(lib)
    cache = ad.make(capacity)
    keys = str_keys("key:", capacity)
    ad.fill(cache, keys, VALUE)
    get, put, note = ad.thread_ops(cache, VALUE)
    result: dict[str, Any] = {"lib": lib, "label": ad.label, "note": note, "ops_per_s": {}}
    for n in counts:
        plans = []
        for t in range(n):
            plan = [keys[i % capacity] for i in range(keys_per_thread)]
            random.Random(1000 + t).shuffle(plan)
            plans.append(plan)
        barrier = threading.Barrier(n + 1)

        def run(plan: list[str], barrier: threading.Barrier) -> None:
            barrier.wait()
            _worker_loop(get, put, plan, VALUE)

        threads = [threading.Thread(target=run, args=(plan, barrier)) for plan in plans]
        for th in threads:
            th.start()
        barrier.wait()
        t0 = perf_counter_ns()
        for th in threads:
            th.join()
        elapsed = perf_counter_ns() - t0
        ops = n * keys_per_thread * (READS_PER_WRITE + 1)
        result["ops_per_s"][str(n)] = ops / (elapsed / 1e9)
    return result


def run_worker(lib: str, keys_per_thread: int, timeout: float) -> dict[str, Any]:
    """Measure one library in a fresh interpreter; {"hung": True} on timeout."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.threads",
        "--lib",
        lib,
        "--keys-per-thread",
        str(keys_per_thread),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"lib": lib, "hung": True}
    if proc.returncode != 0:
        return {
            "lib": lib,
            "error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"],
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--keys-per-thread", type=int, default=20_000)
    args = ap.parse_args(argv)
    out = measure(args.lib, THREAD_COUNTS, args.keys_per_thread)
    out["gil_enabled"] = gil_enabled()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
