"""Seeded key streams for the hit-ratio simulation (numpy, nothing downloaded).

Every stream is a list of Python ints, the same list for every policy.

- ``zipf-S``: 100,000 distinct keys, key of rank r drawn with probability
  proportional to 1/r**S; ranks are mapped to keys by a random permutation so
  that popularity has nothing to do with the key's value or hash.
- ``scan``: a hot set of 2,000 keys, each request uniform over it with
  probability 0.25; otherwise the next key of a cyclic loop over 100,000 cold
  keys. A policy that keeps the hot set scores about 0.25 once the capacity
  exceeds 2,000; one that lets the loop flush it scores near 0 until the
  capacity exceeds the hot keys' reuse distance (~8,000 distinct keys).
- ``recency``: 20% of requests are keys never seen before; the rest repeat the
  key requested d steps earlier, d geometric with mean 1,000. Recently used
  keys are the likely ones, so LRU does well and frequency counts mislead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

UNIVERSE = 100_000
KEY_BASE = 10**9  # keys well above the small-int cache, like real ids


@dataclass(frozen=True)
class Stream:
    name: str
    description: str
    make: Callable[[int, int], list[int]]  # (length, seed) -> keys


def zipf(skew: float) -> Callable[[int, int], list[int]]:
    def make(length: int, seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        weights = 1.0 / np.arange(1, UNIVERSE + 1, dtype=np.float64) ** skew
        cdf = np.cumsum(weights)
        cdf /= cdf[-1]
        ranks = np.searchsorted(cdf, rng.random(length), side="right")
        ranks = np.minimum(ranks, UNIVERSE - 1)
        perm = rng.permutation(UNIVERSE)
        return (perm[ranks] + KEY_BASE).tolist()

    return make


def scan(
    length: int, seed: int, hot: int = 2_000, loop: int = 100_000, p_hot: float = 0.25
) -> list[int]:
    rng = np.random.default_rng(seed)
    is_hot = rng.random(length) < p_hot
    hot_keys = rng.integers(0, hot, size=length)
    loop_pos = np.cumsum(~is_hot) % loop
    keys = np.where(is_hot, hot_keys, hot + loop_pos)
    return (keys + KEY_BASE).tolist()


def recency(length: int, seed: int, p_new: float = 0.2, mean_distance: float = 1000.0) -> list[int]:
    rng = np.random.default_rng(seed)
    is_new = rng.random(length) < p_new
    distance = rng.geometric(1.0 / mean_distance, size=length)
    out = [0] * length
    next_new = 0
    for i in range(length):
        if is_new[i] or i == 0:
            out[i] = KEY_BASE + next_new
            next_new += 1
        else:
            out[i] = out[max(0, i - int(distance[i]))]
    return out


STREAMS = [
    Stream("zipf-0.7", "Zipf, skew 0.7, 100k keys", zipf(0.7)),
    Stream("zipf-0.9", "Zipf, skew 0.9, 100k keys", zipf(0.9)),
    Stream("zipf-1.1", "Zipf, skew 1.1, 100k keys", zipf(1.1)),
    Stream("scan", "2k hot keys (25%) + a loop over 100k cold keys", scan),
    Stream("recency", "20% new keys, else a repeat ~1000 requests back", recency),
]
