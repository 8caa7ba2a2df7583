"""Run the benchmark suite and write docs/benchmarks.md, docs/img/*.png and JSON.

    python benchmarks/run.py              full run (engine included), ~10-15 min
    python benchmarks/run.py --quick      fewer rounds, every library and case, < 5 min
    python benchmarks/run.py --only get_hit,memory
    python benchmarks/run.py --from-json benchmarks/results/latest.json   re-render only

Sections: ops (the single-thread cases, or name cases one by one), hotset (the
headline cases again with lookups on 100 hot keys: this tree, 0.5.0, lru_cache),
threads, memory, hitratio, engine. A run of every section (quick or full) rewrites the
page and charts; an --only run writes JSON alone unless --write-docs is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: make the repository root importable as `benchmarks`.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import cases, engine, hitratio, machine, memory, peers, report, threads
from benchmarks.timing import Runner, run_interleaved, summarize

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
HASH_SEED = "0"
SECTIONS = ("ops", "hotset", "threads", "memory", "hitratio", "engine")


class Settings:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.rounds = 15 if quick else 61  # timed rounds per case (+1 warm-up)
        self.thread_rounds = 3 if quick else 7
        self.keys_per_thread = 25_000 if quick else 100_000
        self.memory_rounds = 1 if quick else 3
        self.hit_length = 100_000 if quick else 1_000_000
        self.capacities = [100, 400, 1_600, 6_400, 25_600]

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def say(msg: str) -> None:
    print(msg, flush=True)


def _ensure_hash_seed() -> None:
    """Re-exec with a fixed PYTHONHASHSEED so str hashes (and table layouts) repeat."""
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:
        os.environ["PYTHONHASHSEED"] = HASH_SEED
        os.execv(sys.executable, [sys.executable, *sys.argv])


# -- sections ------------------------------------------------------------------


def run_ops(
    adapters: list[peers.Adapter],
    selected: list[cases.Case],
    st: Settings,
    params: cases.Params | None = None,
) -> dict[str, Any]:
    params = params or cases.Params()
    out: dict[str, Any] = {}
    for i, case in enumerate(selected, 1):
        t0 = time.perf_counter()
        runners: dict[str, Runner] = {}
        meta: dict[str, dict[str, str]] = {}
        skipped: dict[str, str] = {}
        for ad in adapters:
            try:
                built = case.build(ad, params)
            except peers.Unsupported as e:
                skipped[ad.label] = str(e)
                continue
            for suffix, runner in built:
                label = f"{ad.label} ({suffix})" if suffix else ad.label
                runners[label] = runner
                meta[label] = {"lib": ad.id, "variant": suffix}
        run_interleaved(runners, st.rounds)
        entries = []
        for label, runner in runners.items():
            entries.append(
                {
                    "label": label,
                    **meta[label],
                    "note": runner.note,
                    "samples": runner.samples,
                    "summary": summarize(runner.samples).as_dict(),
                }
            )
        out[case.name] = {
            "title": case.title,
            "group": case.group,
            "headline": case.headline,
            "entries": entries,
            "skipped": skipped,
        }
        name = ("hot " if params.hot else "") + case.name
        say(
            f"[{i:2}/{len(selected)}] {name:<17} {report.progress_line(out[case.name])}  "
            f"({time.perf_counter() - t0:4.1f}s)"
        )
    return out


def run_floor(st: Settings) -> dict[str, Any]:
    runners = cases.floor_runners(cases.Params())
    run_interleaved(runners, st.rounds)
    return {label: summarize(r.samples).as_dict() for label, r in runners.items()}


def run_threads(adapters: list[peers.Adapter], st: Settings) -> dict[str, Any]:
    libs: dict[str, Any] = {
        ad.label: {
            "ops_per_s": {str(n): [] for n in threads.THREAD_COUNTS},
            "note": "",
            "hung": 0,
            "errors": [],
        }
        for ad in adapters
    }
    for r in range(st.thread_rounds):
        shift = r % len(adapters)
        for ad in adapters[shift:] + adapters[:shift]:
            t0 = time.perf_counter()
            res = threads.run_worker(ad.id, st.keys_per_thread, timeout=120)
            slot = libs[ad.label]
            if res.get("hung"):
                slot["hung"] += 1
                say(f"threads    {ad.label:<22} round {r + 1}: HUNG (killed after 120 s)")
                continue
            if "error" in res:
                slot["errors"].append(res["error"])
                say(f"threads    {ad.label:<22} round {r + 1}: error {res['error']}")
                continue
            slot["note"] = res["note"]
            for n, v in res["ops_per_s"].items():
                slot["ops_per_s"][n].append(v)
            rates = "  ".join(f"{n}t {v / 1e6:5.2f}M/s" for n, v in res["ops_per_s"].items())
            say(
                f"threads    {ad.label:<22} round {r + 1}/{st.thread_rounds}: {rates}  "
                f"({time.perf_counter() - t0:4.1f}s)"
            )
    return {
        "gil_enabled": threads.gil_enabled(),
        "counts": list(threads.THREAD_COUNTS),
        "rounds": st.thread_rounds,
        "keys_per_thread": st.keys_per_thread,
        "ops_per_key": threads.READS_PER_WRITE + 1,
        "libs": libs,
    }


def run_memory(adapters: list[peers.Adapter], st: Settings) -> dict[str, Any]:
    libs: dict[str, Any] = {
        ad.label: {"bytes_per_entry": [], "held": None, "errors": []} for ad in adapters
    }
    for r in range(st.memory_rounds):
        for ad in adapters:
            t0 = time.perf_counter()
            res = memory.run_worker(ad.id)
            slot = libs[ad.label]
            if "error" in res:
                slot["errors"].append(res["error"])
                say(f"memory     {ad.label:<22} error: {res['error']}")
                continue
            slot["bytes_per_entry"].append(res["bytes_per_entry"])
            slot["held"] = res["held"]
            say(
                f"memory     {ad.label:<22} {res['bytes_per_entry']:7.1f} B/entry "
                f"({res['held']:,} held)  round {r + 1}/{st.memory_rounds}  "
                f"({time.perf_counter() - t0:4.1f}s)"
            )
    return {"entries": memory.ENTRIES, "rounds": st.memory_rounds, "libs": libs}


# -- CLI -----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--quick", action="store_true", help="fewer rounds and shorter streams (< 5 min)"
    )
    ap.add_argument(
        "--only",
        default="",
        help=f"comma-separated sections ({', '.join(SECTIONS)}) "
        f"and/or case names ({', '.join(cases.CASE_NAMES)})",
    )
    ap.add_argument(
        "--engine",
        action="store_true",
        help="also run the Rust criterion bench (always in a full run)",
    )
    ap.add_argument(
        "--ours-module",
        default=None,
        help="module to measure as this tree "
        f"(default moka_py; {peers.BASELINE_MODULE} for harness development)",
    )
    ap.add_argument(
        "--libs", default="", help=f"comma-separated subset of {', '.join(peers.ALL_IDS)}"
    )
    ap.add_argument(
        "--write-docs", action="store_true", help="write the page and charts even for an --only run"
    )
    ap.add_argument("--no-docs", action="store_true", help="write JSON only")
    ap.add_argument(
        "--from-json",
        type=Path,
        help="re-render the page and charts from a results file; run nothing",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        report.write(results, ROOT / "docs")
        say(f"wrote docs/benchmarks.md and docs/img/*.png from {args.from_json}")
        return 0

    _ensure_hash_seed()
    if args.ours_module:
        os.environ[peers.OURS_ENV] = args.ours_module  # inherited by the subprocesses

    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in only if x not in SECTIONS and x not in cases.CASE_NAMES]
    if unknown:
        say(f"unknown --only item(s): {', '.join(unknown)}")
        return 2
    named_cases = [c for c in cases.CASES if c.name in only]
    sections = {s for s in SECTIONS if s in only} if only else set(SECTIONS)
    if named_cases:
        sections.add("ops")
    if not only and args.quick and not args.engine:
        sections.discard("engine")
    if args.engine:
        sections.add("engine")
    selected = named_cases or cases.CASES
    lib_ids = [x.strip() for x in args.libs.split(",") if x.strip()] or list(peers.ALL_IDS)
    bad_libs = [x for x in lib_ids if x not in peers.ALL_IDS]
    if bad_libs:
        say(f"unknown --libs item(s): {', '.join(bad_libs)}; known: {', '.join(peers.ALL_IDS)}")
        return 2

    st = Settings(args.quick)
    adapters = peers.load(lib_ids)
    info = machine.describe(peers.versions(adapters))
    say("moka-py benchmarks" + (" (quick)" if st.quick else ""))
    for line in machine.lines(info):
        say("  " + line)
    say(f"  sections: {', '.join(s for s in SECTIONS if s in sections)}")

    results: dict[str, Any] = {
        "machine": info,
        "settings": st.as_dict(),
        "libraries": [{"id": a.id, "label": a.label, "version": a.version} for a in adapters],
        "elapsed_s": {},
    }
    started = time.perf_counter()

    def timed(name: str, fn: Any, *fn_args: Any) -> None:
        t0 = time.perf_counter()
        results[name] = fn(*fn_args)
        results["elapsed_s"][name] = round(time.perf_counter() - t0, 1)

    if "ops" in sections:
        timed("cases", run_ops, adapters, selected, st)
        timed("floor", run_floor, st)
    if "hotset" in sections:
        hot_libs = [a for a in adapters if a.id in (report.OURS, report.BASE, report.LRU)]
        hot_cases = [c for c in cases.CASES if c.name in cases.HOT_CASES]
        timed("hotset", run_ops, hot_libs, hot_cases, st, cases.Params(hot=cases.HOT_SET))
    if "threads" in sections:
        timed("threads", run_threads, adapters, st)
    if "memory" in sections:
        timed("memory", run_memory, adapters, st)
    if "hitratio" in sections:
        timed(
            "hitratio",
            hitratio.run,
            adapters,
            st.capacities,
            st.hit_length,
            42,
            hitratio.STREAMS,
            say,
        )
    if "engine" in sections:
        try:
            timed("engine", engine.run, say)
        except (RuntimeError, FileNotFoundError) as e:
            say(f"engine     skipped: {e}")
            results["engine_error"] = str(e)
    results["elapsed_s"]["total"] = round(time.perf_counter() - started, 1)
    info["load_after"] = machine.load_average()

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{stamp}{'-quick' if st.quick else ''}.json"
    text = json.dumps(results, indent=1)
    path.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    say(f"results: {path.relative_to(ROOT)}  (total {results['elapsed_s']['total']:.0f}s)")

    complete = not only or args.write_docs
    if complete and not args.no_docs:
        report.write(results, ROOT / "docs")
        say("wrote docs/benchmarks.md and docs/img/*.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
