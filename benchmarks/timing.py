"""Timed loops, interleaved rounds and their summary statistics.

Each measurement is one tight loop over ~10k items, timed with
``time.perf_counter_ns`` around the whole loop, so the loop's own cost (about
one bytecode iteration and one call per item) is part of every number. The
"harness floor" rows in the report show that cost on its own; nothing is
subtracted from any other row.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

from .peers import Call


def _loop0(fn: Callable[..., Any], items: Sequence[Any]) -> int:
    t0 = perf_counter_ns()
    for k in items:
        fn(k)
    return perf_counter_ns() - t0


def _loop1(fn: Callable[..., Any], items: Sequence[Any], a: Any) -> int:
    t0 = perf_counter_ns()
    for k in items:
        fn(k, a)
    return perf_counter_ns() - t0


def _loop2(fn: Callable[..., Any], items: Sequence[Any], a: Any, b: Any) -> int:
    t0 = perf_counter_ns()
    for k in items:
        fn(k, a, b)
    return perf_counter_ns() - t0


_LOOPS = (_loop0, _loop1, _loop2)


def time_call(call: Call, items: Sequence[Any]) -> int:
    """Nanoseconds for ``call.fn(item, *call.args)`` over every item."""
    return _LOOPS[len(call.args)](call.fn, items, *call.args)


async def time_await(fn: Callable[..., Any], items: Sequence[Any]) -> int:
    """Nanoseconds for ``await fn(item)`` over every item, timed inside the loop."""
    t0 = perf_counter_ns()
    for k in items:
        await fn(k)
    return perf_counter_ns() - t0


def empty_loop(items: Sequence[Any]) -> int:
    t0 = perf_counter_ns()
    for _ in items:
        pass
    return perf_counter_ns() - t0


@dataclass
class Runner:
    """One library's entry in one case.

    ``measure()`` runs one timed loop and returns (elapsed ns, operations);
    ``prepare()`` (untimed) resets state before it, e.g. fresh keys or a refill.
    """

    measure: Callable[[], tuple[int, int]]
    prepare: Callable[[], None] = lambda: None
    note: str = ""
    samples: list[float] = field(default_factory=list)  # ns per op, one per round


@dataclass
class Summary:
    median: float
    best: float
    p25: float
    p75: float
    rounds: int

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median."""
        return (self.p75 - self.p25) / self.median if self.median else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "median": self.median,
            "best": self.best,
            "p25": self.p25,
            "p75": self.p75,
            "rounds": self.rounds,
        }


def summarize(samples: Sequence[float]) -> Summary:
    xs = sorted(samples)
    if len(xs) >= 4:
        q = statistics.quantiles(xs, n=4, method="inclusive")
        p25, p75 = q[0], q[2]
    else:
        p25, p75 = xs[0], xs[-1]
    return Summary(statistics.median(xs), xs[0], p25, p75, len(xs))


def run_interleaved(runners: dict[str, Runner], rounds: int, warmup: int = 1) -> None:
    """Run every runner once per round, in a rotating order (A,B,C / B,C,A / ...).

    The first ``warmup`` rounds are run and discarded. The garbage collector is
    paused around each timed loop and its young generations are collected
    between loops, so a collection triggered by one library is not billed to
    the next.
    """
    names = list(runners)
    gc_was_enabled = gc.isenabled()
    try:
        for r in range(warmup + rounds):
            shift = r % len(names) if names else 0
            for name in names[shift:] + names[:shift]:
                runner = runners[name]
                runner.prepare()
                gc.collect(1)
                gc.disable()
                try:
                    ns, ops = runner.measure()
                finally:
                    gc.enable()
                if r >= warmup:
                    runner.samples.append(ns / ops)
    finally:
        if not gc_was_enabled:
            gc.disable()
