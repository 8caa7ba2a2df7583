"""Hit ratio of every bounded policy on the same seeded key streams.

Each request is a lookup; a miss inserts the key (as its own value), as a
read-through cache would. The ratio counts every request, cold start included,
so short streams and large capacities are harder on every policy alike.
Libraries that evict lazily (moka-py 0.5.0, theine) are measured as a user
sees them: their size may overshoot the capacity until maintenance runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .peers import Adapter
from .streams import STREAMS, Stream


def policies(
    adapters: Sequence[Adapter],
) -> list[tuple[str, Callable[[int], Callable[[Any], bool]]]]:
    out = []
    for ad in adapters:
        for name, factory in ad.policies():
            out.append((f"{ad.label} {name}", factory))
    return out


def run(
    adapters: Sequence[Adapter],
    capacities: Sequence[int],
    length: int,
    seed: int,
    streams: Sequence[Stream] = STREAMS,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    pols = policies(adapters)
    result: dict[str, Any] = {
        "length": length,
        "seed": seed,
        "capacities": list(capacities),
        "streams": {},
    }
    for stream in streams:
        t0 = time.perf_counter()
        keys = stream.make(length, seed)
        distinct = len(set(keys))
        table: dict[str, list[float]] = {}
        for label, factory in pols:
            row = []
            for cap in capacities:
                access = factory(cap)
                hits = sum(map(access, keys))
                row.append(hits / length)
            table[label] = row
        result["streams"][stream.name] = {
            "description": stream.description,
            "distinct": distinct,
            "ratios": table,
        }
        progress(
            f"hit ratio  {stream.name:<9} {len(pols)} policies x {len(capacities)} capacities  "
            f"{time.perf_counter() - t0:5.1f}s"
        )
    return result
