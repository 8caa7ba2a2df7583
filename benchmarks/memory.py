"""Bytes per entry at 1,000,000 int -> int entries, by resident set size.

Each library is measured in its own fresh interpreter
(``python -m benchmarks.memory --lib ID``): build the key list, collect
garbage, read RSS; insert every key as its own value into a cache whose
capacity is the entry count; flush pending maintenance where the library has
a call for it; collect garbage, read RSS again. The difference divided by the
entry count is the cache's cost per entry, including its allocator's slack.
The keys themselves exist before the first reading, so they are not counted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = 1_000_000


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def measure(lib: str, n: int) -> dict[str, Any]:
    from .peers import load_one

    ad = load_one(lib)
    ad.make(16)  # warm up the library's own lazy initialisation
    keys = list(range(n))
    gc.collect()
    before = rss_bytes()
    cache = ad.make(n)  # after the first reading: any preallocation counts
    if lib == "lru_cache":
        for k in keys:
            cache(k)
        size = cache.cache_info().currsize
    else:
        fn = ad.op_set(cache, None).fn
        for k in keys:
            fn(k, k)
        flush = getattr(cache, "run_pending_tasks", None)
        if flush is not None:
            flush()
        size = len(cache) if hasattr(cache, "__len__") else cache.count()
    gc.collect()
    after = rss_bytes()
    return {
        "lib": lib,
        "label": ad.label,
        "entries": n,
        "held": size,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_entry": (after - before) / n,
    }


def run_worker(lib: str, n: int = ENTRIES, timeout: float = 600) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.memory", "--lib", lib, "--entries", str(n)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"lib": lib, "error": "timed out"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return {"lib": lib, "error": tail[0]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--entries", type=int, default=ENTRIES)
    args = ap.parse_args(argv)
    print(json.dumps(measure(args.lib, args.entries)))


if __name__ == "__main__":
    main()
