"""docs/benchmarks.md and the charts in docs/img/, from one results dict."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

OURS, BASE, LRU = "ours", "moka050", "lru_cache"
TIMES = "\u00d7"  # the multiplication sign in ratios ("1.25x")
HEADLINE_MEMORY = "memory, bytes per entry (1M int→int)"

# One colour per library, the same in every chart.
COLORS = {
    "ours": "#d62728",
    "moka050": "#ff9896",
    "cachebox": "#1f77b4",
    "cachetools": "#2ca02c",
    "lrudict": "#9467bd",
    "theine": "#8c564b",
    "lru_cache": "#e377c2",
    "dict": "#7f7f7f",
}


# -- small helpers ---------------------------------------------------------------


def fmt_ns(x: float | None) -> str:
    if x is None:
        return "—"
    if abs(x) < 10:
        return f"{x:.2f}"
    if abs(x) < 1000:
        return f"{x:.0f}"
    return f"{x:,.0f}"


def fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}" + TIMES


def _main_entry(case: dict[str, Any], lib: str) -> dict[str, Any] | None:
    for e in case["entries"]:
        if e["lib"] == lib and not e["variant"]:
            return e
    return None


def _median_of(case: dict[str, Any], lib: str) -> float | None:
    e = _main_entry(case, lib)
    return e["summary"]["median"] if e else None


def _best_of(case: dict[str, Any], lib: str) -> float | None:
    e = _main_entry(case, lib)
    return e["summary"]["best"] if e else None


def _speedup(reference: float | None, value: float | None) -> float | None:
    if reference is None or value is None or value <= 0:
        return None
    return reference / value


def _load_text(m: dict[str, Any]) -> str:
    load = m.get("load_before")
    if not load:
        return ""
    after = m.get("load_after")
    tail = f", {after[0]:.1f} after" if after else ""
    return f"; load average {load[0]:.1f} when the run started{tail}"


def _version_text(label: str, version: str) -> str:
    if version in ("builtin", "stdlib") or label.endswith(version):
        return label
    return f"{label} {version}"


def _lib_label(results: dict[str, Any], lib: str) -> str:
    for entry in results.get("libraries", []):
        if entry["id"] == lib:
            return entry["label"]
    return lib


def _policy_lib(results: dict[str, Any], policy_label: str) -> str:
    """The library id of a hit-ratio row ("moka-py 0.5.0 LRU" -> moka050): longest label wins."""
    matches = [e for e in results["libraries"] if policy_label.startswith(e["label"] + " ")]
    return max(matches, key=lambda e: len(e["label"]))["id"] if matches else ""


def _label_to_id(results: dict[str, Any]) -> dict[str, str]:
    return {entry["label"]: entry["id"] for entry in results.get("libraries", [])}


def progress_line(case: dict[str, Any]) -> str:
    """One line for the terminal: ours, 0.5.0, lru_cache and the fastest."""
    ours, base, lru = (_median_of(case, x) for x in (OURS, BASE, LRU))
    parts = []
    if ours is not None:
        parts.append(f"moka-py {fmt_ns(ours)} ns")
    if base is not None:
        parts.append(f"0.5.0 {fmt_ns(base)} ns ({fmt_ratio(_speedup(base, ours))})")
    if lru is not None:
        parts.append(f"lru_cache {fmt_ns(lru)} ns")
    fastest = min(case["entries"], key=lambda e: e["summary"]["median"], default=None)
    if fastest is not None:
        parts.append(f"fastest {fastest['label']} {fmt_ns(fastest['summary']['median'])} ns")
    return " | ".join(parts)


# -- markdown ---------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _headline_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for case in results.get("cases", {}).values():
        if not case["headline"]:
            continue
        ours, base = _median_of(case, OURS), _median_of(case, BASE)
        ob, bb = _best_of(case, OURS), _best_of(case, BASE)
        rows.append(
            [
                case["title"],
                fmt_ns(ours),
                fmt_ns(base),
                f"**{fmt_ratio(_speedup(base, ours))}**",
                fmt_ratio(_speedup(bb, ob)),
            ]
        )
    mem = results.get("memory")
    if mem:
        by_id = _memory_medians(results)
        ours, base = by_id.get(OURS), by_id.get(BASE)
        if ours is not None and base is not None:
            rows.append(
                [
                    HEADLINE_MEMORY,
                    f"{ours:.0f} B",
                    f"{base:.0f} B",
                    f"**{fmt_ratio(base / ours)}** less",
                    "—",
                ]
            )
    return rows


def _hotset_section(results: dict[str, Any]) -> list[str]:
    hot = results.get("hotset")
    if not hot:
        return []
    rows = []
    for case in hot.values():
        ours, base, lru = (_median_of(case, x) for x in (OURS, BASE, LRU))
        rows.append(
            [
                case["title"],
                fmt_ns(ours),
                fmt_ns(base),
                f"**{fmt_ratio(_speedup(base, ours))}**",
                fmt_ns(lru) if lru is not None else "—",
            ]
        )
    full = results.get("cases", {})
    ours_full = _median_of(full["get_hit"], OURS) if "get_hit" in full else None
    ours_hot = _median_of(hot["get_hit"], OURS) if "get_hit" in hot else None
    gap = ""
    if ours_full and ours_hot:
        gap = (
            f" Here a hit on a random one of all 10,000 keys takes {fmt_ns(ours_full)} ns and a "
            f"hit on one of the hot keys {fmt_ns(ours_hot)} ns: the difference is memory stalls, "
            "which every library pays alike."
        )
    out = [
        "## Hot set: the same operations with lookups on 100 keys",
        "",
        "The headline cases again, on the same full 10,000-entry caches, with every lookup "
        "going to one of 100 keys (shuffled), so the entries they touch stay in the CPU's "
        "caches; median ns per operation. This separates the binding's own cost from the cost of "
        "reaching cold memory."
        + gap
        + " The reference figures of the design (lru_cache about 37 ns per hit, 0.5.0's "
        "`@cached` about 300 ns) are of this kind.",
        "",
    ]
    out += _table(
        ["operation", "moka-py", "moka-py 0.5.0", "speed-up (median)", "lru_cache"],
        rows,
    )
    out.append("")
    return out


def _memory_medians(results: dict[str, Any]) -> dict[str, float]:
    ids = _label_to_id(results)
    out = {}
    for label, slot in results["memory"]["libs"].items():
        if slot["bytes_per_entry"]:
            out[ids.get(label, label)] = statistics.median(slot["bytes_per_entry"])
    return out


def _case_section(results: dict[str, Any], name: str, case: dict[str, Any]) -> list[str]:
    base, lru = _median_of(case, BASE), _median_of(case, LRU)
    rows = []
    for e in sorted(case["entries"], key=lambda e: e["summary"]["median"]):
        s = e["summary"]
        label = f"**{e['label']}**" if e["lib"] == OURS else e["label"]
        rows.append(
            [
                label,
                fmt_ns(s["median"]),
                fmt_ns(s["best"]),
                f"±{100 * (s['p75'] - s['p25']) / 2 / s['median']:.0f}%",
                fmt_ratio(_speedup(base, s["median"])),
                fmt_ratio(_speedup(lru, s["median"])),
                e["note"],
            ]
        )
    out = [f"### {case['title']}", ""]
    out += _table(
        ["library", "median ns/op", "best ns/op", "spread", "vs 0.5.0", "vs lru_cache", "note"],
        rows,
        "lrrrrrl",
    )
    if case["skipped"]:
        out += [
            "",
            "Not measured: " + "; ".join(f"{k} ({v})" for k, v in case["skipped"].items()) + ".",
        ]
    out.append("")
    return out


def _engine_section(results: dict[str, Any]) -> list[str]:
    eng = results.get("engine")
    if not eng:
        why = results.get("engine_error")
        note = (
            f"The engine benchmark failed in this run: `{why.splitlines()[0]}`."
            if why
            else (
                "The Rust-only benchmark was not part of this run; `python benchmarks/run.py "
                "--engine` "
                "(or a full run) adds it."
            )
        )
        return ["## The engine alone vs a Python call", "", note, ""]
    configs = ["plain", "listener", "ttl_tti"]
    out = [
        "## The engine alone vs a Python call",
        "",
        "`cargo bench --bench engine` (criterion, `benches/engine.rs`) times `moka::sync::Cache` "
        "as the binding configures it: `u64` slot keys under a seeded multiply-xorshift hasher, "
        "`Arc<Node>` values (a node of two pointers, allocated per insert; on CPython with the "
        "GIL the binding counts its nodes without atomics, see `src/noderef.rs`, so its engine "
        "costs a little less), capacity 10,000, mimalloc. Median ns per operation with "
        "criterion's 95% interval.",
        "",
    ]
    rows = []
    for op, by_config in eng.items():
        cells = [f"`{op}`"]
        for c in configs:
            est = by_config.get(c)
            cells.append(
                f"{fmt_ns(est['median'])} ({fmt_ns(est['lower'])}\u2013{fmt_ns(est['upper'])})"
                if est
                else "—"
            )
        rows.append(cells)
    out += _table(["engine op", "plain", "eviction listener", "ttl + tti"], rows)
    out += [
        "",
        "The same operations through Python (single-thread cases above, median ns/op). The "
        "boundary column is the Python call minus the engine's time for the closest engine "
        "configuration: the cost of the loop, the call, hashing, the binding's own work and any "
        "maintenance the binding runs. It is a difference of two medians taken in different "
        "processes, so read it as an estimate.",
        "",
    ]
    pairs = [
        ("get_hit", "plain", "get_hit"),
        ("get_hit", "ttl_tti", "get_hit_ttl"),
        ("get_miss", "plain", "get_miss"),
        ("insert_existing", "plain", "set_existing"),
        ("insert_new_full", "plain", "set_new_full"),
        ("insert_new_full_sync", "plain", "set_new_full"),
        ("remove", "plain", "remove"),
    ]
    rows = []
    cases = results.get("cases", {})
    for op, config, case_name in pairs:
        est = eng.get(op, {}).get(config)
        case = cases.get(case_name)
        if not est or not case:
            continue
        ours, base = _median_of(case, OURS), _median_of(case, BASE)
        rows.append(
            [
                f"`{op}` ({config})",
                fmt_ns(est["median"]),
                f"{case['title']}",
                fmt_ns(ours),
                fmt_ns(base),
                fmt_ns(ours - est["median"]) if ours is not None else "—",
                f"{100 * est['median'] / ours:.0f}%" if ours else "—",
            ]
        )
    out += _table(
        [
            "engine op",
            "engine ns",
            "Python case",
            "moka-py ns",
            "0.5.0 ns",
            "boundary ns",
            "engine share",
        ],
        rows,
        "lrlrrrr",
    )
    out.append("")
    return out


def _threads_section(results: dict[str, Any]) -> list[str]:
    th = results.get("threads")
    if not th:
        return []
    mode = "with the GIL" if th["gil_enabled"] else "on a free-threaded interpreter (GIL disabled)"
    out = [
        "## Threads: one shared cache",
        "",
        f"Operations per second of 1, 2 and 4 threads sharing one 10,000-entry cache, {mode}. "
        "Each thread walks its own shuffle of the keys and does 4 `get` + 1 `set` of an existing "
        f"key per key ({th['keys_per_thread']:,} keys per thread). Each library runs in its own "
        f"subprocess, killed after 120 s if it hangs; median of {th['rounds']} rounds.",
        "",
    ]
    if th["gil_enabled"]:
        out += [
            "With the GIL only one thread runs Python at a time, so more threads cannot add "
            "throughput; what this shows is how much each library loses to lock hand-offs and "
            "contention. A free-threaded interpreter (3.14t) running this same command fills in "
            "the GIL-free numbers.",
            "",
        ]
    rows = []
    for label, slot in th["libs"].items():
        med = {n: statistics.median(v) if v else None for n, v in slot["ops_per_s"].items()}
        cells = [label] + [
            f"{med[str(n)] / 1e6:.2f}" if med.get(str(n)) else "—" for n in th["counts"]
        ]
        one, four = med.get("1"), med.get(str(th["counts"][-1]))
        cells.append(f"{four / one:.2f}" + TIMES if one and four else "—")
        status = []
        if slot["hung"]:
            status.append(f"**hung in {slot['hung']}/{th['rounds']} rounds**")
        if slot["errors"]:
            status.append("error: " + str(slot["errors"][0]))
        if slot["note"]:
            status.append(slot["note"])
        cells.append("; ".join(status))
        rows.append(cells)
    out += _table(
        ["library"]
        + [f"{n} thread{'s' if n > 1 else ''} (M ops/s)" for n in th["counts"]]
        + ["4 vs 1", "note"],
        rows,
        "l" + "r" * (len(th["counts"]) + 1) + "l",
    )
    out += ["", "![Thread scaling](img/threads.png)", ""]
    return out


def _memory_section(results: dict[str, Any]) -> list[str]:
    mem = results.get("memory")
    if not mem:
        return []
    by_id = _memory_medians(results)
    ids = _label_to_id(results)
    base, floor = by_id.get(BASE), by_id.get("dict")
    rows = []
    for label, slot in sorted(
        mem["libs"].items(), key=lambda kv: by_id.get(ids.get(kv[0], kv[0]), 1e18)
    ):
        v = by_id.get(ids.get(label, label))
        if v is None:
            rows.append([label, "—", "—", "—", "; ".join(map(str, slot["errors"]))])
            continue
        rows.append(
            [
                f"**{label}**" if ids.get(label) == OURS else label,
                f"{v:.0f}",
                f"{v / base:.2f}" if base else "—",
                f"{v / floor:.1f}" if floor else "—",
                f"{slot['held']:,}" if slot["held"] is not None else "—",
            ]
        )
    out = [
        "## Memory",
        "",
        f"Resident memory per entry with {mem['entries']:,} int→int entries, each library in a "
        "fresh process: RSS after building the key list and before creating the cache, then "
        "after inserting every key as its own value (and running pending maintenance where the "
        f"library has it), divided by the entry count. Median of {mem['rounds']} run(s).",
        "",
    ]
    out += _table(
        ["library", "bytes/entry", TIMES + " 0.5.0", TIMES + " dict", "entries held"], rows
    )
    out += ["", "![Memory per entry](img/memory.png)", ""]
    return out


def _hitratio_section(results: dict[str, Any]) -> list[str]:
    hr = results.get("hitratio")
    if not hr:
        return []
    caps = hr["capacities"]
    out = [
        "## Hit ratio",
        "",
        f"Every bounded policy sees the same seeded streams of {hr['length']:,} requests (numpy "
        f"`default_rng({hr['seed']})`, see `benchmarks/streams.py`) at the same capacity. A miss "
        "inserts the key. The ratio counts every request, cold start included. Best per column "
        "in bold.",
        "",
        "![Hit ratio by capacity](img/hitratio.png)",
        "",
    ]
    for name, data in hr["streams"].items():
        out += [f"### {name}: {data['description']} ({data['distinct']:,} distinct keys)", ""]
        best = [max(row[i] for row in data["ratios"].values()) for i in range(len(caps))]
        rows = []
        for label, row in data["ratios"].items():
            cells = [f"**{label}**" if _policy_lib(results, label) == OURS else label]
            for i, v in enumerate(row):
                txt = f"{100 * v:.1f}%"
                cells.append(f"**{txt}**" if v >= best[i] - 1e-12 else txt)
            rows.append(cells)
        out += _table(["policy"] + [f"{c:,}" for c in caps], rows)
        out.append("")
    return out


def _floor_section(results: dict[str, Any]) -> list[str]:
    floor = results.get("floor")
    if not floor:
        return []
    rows = [[label, fmt_ns(s["median"]), fmt_ns(s["best"])] for label, s in floor.items()]
    out = [
        "### Harness floor",
        "",
        "What the timing loop costs with no cache at all. Nothing is subtracted from the rows "
        "above; these rows say how much of each number is the loop itself.",
        "",
    ]
    out += _table(["loop", "median ns/op", "best ns/op"], rows)
    out.append("")
    return out


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    st = results["settings"]
    mem = f", {m['memory_gib']:.0f} GiB RAM" if m.get("memory_gib") else ""
    gil = "GIL enabled" if m["gil_enabled"] else "free-threaded, GIL disabled"
    kind = "quick run (`--quick`)" if st["quick"] else "full run"
    lines = [
        "# Benchmarks",
        "",
        f"Numbers from a {kind} on **{m['date']}**: {m['cpu']}, {m['cores']} cores{mem}, "
        f"{m['os']}, {m['python']} ({gil}){_load_text(m)}; tree at `{m.get('revision', '?')}`. "
        "Absolute times depend on the machine; "
        "the ratios, measured in one process with the libraries interleaved, are what carries "
        "over. On a noisy 2-core machine like this one, differences under about 15% are noise.",
        "",
        "Versions: " + ", ".join(_version_text(k, v) for k, v in m["versions"].items()) + ".",
        "",
        "## Reproduce",
        "",
        "```sh",
        "nox -s bench               # full run, Rust engine bench included (about 25 minutes)",
        "nox -s bench -- --quick    # every library and case, fewer rounds (under 5 minutes)",
        "python benchmarks/run.py --help",
        "```",
        "",
        "The session installs this tree in release mode and the `bench` dependency group of "
        "`pyproject.toml`, which pins the other libraries' versions; `benchmarks/run.py` "
        "installs moka-py 0.5.0 from PyPI into `benchmarks/.peers/` and imports it as "
        "`moka_py_050`, next to this tree's `moka_py`. Raw results go to "
        "`benchmarks/results/*.json`; `python benchmarks/run.py --from-json "
        "benchmarks/results/latest.json` re-renders this page.",
        "",
        "## Headline: this tree against moka-py 0.5.0",
        "",
        "10,000-entry caches, string keys, median ns per operation (lower is better). *Speed-up* "
        "is 0.5.0's time divided by this tree's: above 1 means this tree is faster.",
        "",
    ]
    lines += _table(
        ["operation", "moka-py", "moka-py 0.5.0", "speed-up (median)", "speed-up (best)"],
        _headline_rows(results),
    )
    lines += ["", "![moka-py against 0.5.0](img/headline.png)", ""]
    lines += _hotset_section(results)
    lines += [
        "## Method",
        "",
        "- Each case builds one cache per library (capacity 10,000, string keys hashed before "
        f"timing), then runs {st['rounds']} rounds after one discarded warm-up round. A round "
        "times one loop of 10,000 calls per library with `time.perf_counter_ns` around the whole "
        "loop; the libraries take turns in a rotating order (A,B,C / B,C,A / ...), so drift on "
        "the machine hits all of them alike.",
        "- The loop calls the library's own bound method (`cache.get`, `cache.__setitem__`, "
        "...). Where a library lacks an operation, the row says how it is done instead (for "
        "example a Python loop of `get` for `get_many`), or the library is listed as not "
        "measured.",
        "- Median and best ns/op over the rounds; *spread* is half the interquartile range "
        "relative to the median. *vs 0.5.0* and *vs lru_cache* divide that library's median by "
        "this row's: above 1 means this row is faster.",
        "- The garbage collector is paused during each timed loop and its young generations are "
        "collected between loops. `PYTHONHASHSEED=0` for every run.",
        "- Entries that need a state reset (removals, inserts of new keys) get it before each "
        "loop, untimed.",
        "",
        "## Single-thread operations",
        "",
        "![Cache operations](img/ops_cache.png)",
        "",
        "![Decorator operations](img/ops_decorator.png)",
        "",
        "![Bulk operations](img/ops_bulk.png)",
        "",
    ]
    for name, case in results.get("cases", {}).items():
        lines += _case_section(results, name, case)
    lines += _floor_section(results)
    lines += _engine_section(results)
    lines += _threads_section(results)
    lines += _memory_section(results)
    lines += _hitratio_section(results)
    el = results.get("elapsed_s", {})
    if el:
        lines += [
            "---",
            "",
            "Run time: " + ", ".join(f"{k} {v:.0f} s" for k, v in el.items()) + ".",
            "",
        ]
    return "\n".join(lines)


# -- charts -------------------------------------------------------------------------


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"figure.dpi": 110, "savefig.bbox": "tight", "axes.grid": True, "grid.alpha": 0.3}
    )
    return plt


def _grouped_bars(results: dict[str, Any], group: str, title: str, path: Path) -> None:
    plt = _plt()
    cases = [(n, c) for n, c in results.get("cases", {}).items() if c["group"] == group]
    if not cases:
        return
    order = {entry["id"]: i for i, entry in enumerate(results["libraries"])}
    series = sorted(
        {(e["lib"], e["variant"], e["label"]) for _, c in cases for e in c["entries"]},
        key=lambda s: (order.get(s[0], 99), s[1]),
    )
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(7.0, 1.5 * len(cases) + 3), 5.2))
    for j, (lib, variant, label) in enumerate(series):
        xs, ys, lo, hi = [], [], [], []
        for i, (_, c) in enumerate(cases):
            e = next((e for e in c["entries"] if e["lib"] == lib and e["variant"] == variant), None)
            if e is None:
                continue
            s = e["summary"]
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(s["median"])
            lo.append(s["median"] - s["p25"])
            hi.append(s["p75"] - s["median"])
        ax.bar(
            xs,
            ys,
            width,
            yerr=[lo, hi],
            capsize=1.5,
            color=COLORS.get(lib),
            label=label,
            hatch="//" if variant else None,
            edgecolor="black",
            linewidth=0.3,
        )
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([c["title"].replace(", ", ",\n", 1) for _, c in cases], fontsize=8)
    values = [e["summary"]["median"] for _, c in cases for e in c["entries"]]
    if values and max(values) / max(min(values), 1e-9) > 8:
        ax.set_yscale("log")
        ax.set_ylabel("time per operation, ns (log scale; lower is better)")
    else:
        ax.set_ylabel("time per operation, ns (lower is better)")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=4, loc="upper left", bbox_to_anchor=(0, -0.16), frameon=False)
    fig.savefig(path)
    plt.close(fig)


def _headline_chart(results: dict[str, Any], path: Path) -> None:
    plt = _plt()
    cases = [c for c in results.get("cases", {}).values() if c["headline"]]
    cases = [
        c for c in cases if _median_of(c, OURS) is not None and _median_of(c, BASE) is not None
    ]
    if not cases:
        return
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(cases) + 1.6))
    ys = range(len(cases))
    ours = [_median_of(c, OURS) for c in cases]
    base = [_median_of(c, BASE) for c in cases]
    h = 0.38
    ax.barh(
        [y + h / 2 for y in ys],
        base,
        h,
        color=COLORS[BASE],
        label=_lib_label(results, BASE),
        edgecolor="black",
        linewidth=0.3,
    )
    ax.barh(
        [y - h / 2 for y in ys],
        ours,
        h,
        color=COLORS[OURS],
        label=_lib_label(results, OURS) + " (this tree)",
        edgecolor="black",
        linewidth=0.3,
    )
    for y, o, b in zip(ys, ours, base):
        ax.text(
            max(o, b) * 1.02,
            y,
            f"{b / o:.2f}{TIMES} faster" if b >= o else f"{o / b:.2f}{TIMES} slower",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(list(ys))
    ax.set_yticklabels([c["title"] for c in cases], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(ours + base) * 1.3)
    ax.set_xlabel("median time per operation, ns (lower is better)")
    ax.set_title("moka-py (this tree) vs moka-py 0.5.0, 10,000 entries, str keys")
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path)
    plt.close(fig)


def _threads_chart(results: dict[str, Any], path: Path) -> None:
    th = results.get("threads")
    if not th:
        return
    plt = _plt()
    ids = _label_to_id(results)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for label, slot in th["libs"].items():
        pts = [
            (n, statistics.median(slot["ops_per_s"][str(n)]))
            for n in th["counts"]
            if slot["ops_per_s"][str(n)]
        ]
        if not pts:
            continue
        lib = ids.get(label, label)
        ax.plot(
            [p[0] for p in pts],
            [p[1] / 1e6 for p in pts],
            marker="o",
            color=COLORS.get(lib),
            label=label,
            linewidth=2.2 if lib == OURS else 1.3,
        )
    ax.set_xticks(th["counts"])
    ax.set_xlabel("threads sharing one cache")
    ax.set_yscale("log")
    ax.set_ylabel("throughput, million ops/s (log scale; higher is better)")
    mode = "GIL enabled" if th["gil_enabled"] else "free-threaded"
    ax.set_title(f"Thread scaling: 80% get / 20% set on one 10,000-entry cache ({mode})")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.savefig(path)
    plt.close(fig)


def _memory_chart(results: dict[str, Any], path: Path) -> None:
    if not results.get("memory"):
        return
    plt = _plt()
    by_id = _memory_medians(results)
    items = sorted(by_id.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(items) + 1.4))
    ax.barh(
        [_lib_label(results, k) for k, _ in items],
        [v for _, v in items],
        color=[COLORS.get(k) for k, _ in items],
        edgecolor="black",
        linewidth=0.3,
    )
    for y, (_, v) in enumerate(items):
        ax.text(v * 1.01, y, f"{v:.0f}", va="center", fontsize=8)
    ax.set_xlabel("resident memory per entry, bytes (lower is better)")
    ax.set_title(
        f"Memory at {results['memory']['entries']:,} int→int entries (RSS, fresh process each)"
    )
    ax.set_xlim(0, max(v for _, v in items) * 1.15)
    fig.savefig(path)
    plt.close(fig)


def _hitratio_chart(results: dict[str, Any], path: Path) -> None:
    hr = results.get("hitratio")
    if not hr:
        return
    plt = _plt()
    streams = list(hr["streams"].items())
    cols = 3
    rows = (len(streams) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(15, 4.3 * rows), squeeze=False)
    # Colour says the library, line style the policy family.
    styles = {
        "TinyLFU": "-",
        "W-TinyLFU": "-",
        "LRU": "--",
        "LFU": ":",
        "FIFO": "-.",
        "Random": (0, (1, 3)),
    }
    markers = "osD^v<>px*hH"
    labels_seen: dict[str, Any] = {}
    for idx, (name, data) in enumerate(streams):
        ax = axes[idx // cols][idx % cols]
        for k, (label, row) in enumerate(data["ratios"].items()):
            lib = _policy_lib(results, label)
            (line,) = ax.plot(
                hr["capacities"],
                [100 * v for v in row],
                label=label,
                color=COLORS.get(lib),
                linestyle=styles.get(label.rsplit(" ", 1)[-1], "-"),
                marker=markers[k % len(markers)],
                markersize=4,
                linewidth=2.2 if lib == OURS else 1.1,
            )
            labels_seen.setdefault(label, line)
        ax.set_xscale("log")
        ax.set_xticks(hr["capacities"])
        ax.set_xticklabels([f"{c:,}" for c in hr["capacities"]], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("capacity, entries (log scale)")
        ax.set_ylabel("hit ratio, % of requests")
        ax.set_title(f"{name}: {data['description']}", fontsize=9)
    for idx in range(len(streams), rows * cols):
        axes[idx // cols][idx % cols].axis("off")
    legend_ax = axes[-1][-1] if len(streams) < rows * cols else None
    handles, labels = list(labels_seen.values()), list(labels_seen)
    if legend_ax is not None:
        legend_ax.legend(handles, labels, loc="center", fontsize=9, title="policy", frameon=False)
    else:
        fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    fig.suptitle(
        f"Hit ratio by capacity, same seeded streams of {hr['length']:,} requests for every policy"
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(results: dict[str, Any], docs: Path) -> None:
    img = docs / "img"
    img.mkdir(parents=True, exist_ok=True)
    (docs / "benchmarks.md").write_text(markdown(results))
    _headline_chart(results, img / "headline.png")
    _grouped_bars(
        results, "cache", "Cache operations, 10,000 entries, str keys", img / "ops_cache.png"
    )
    _grouped_bars(
        results,
        "decorator",
        "Decorators: @cached and equivalents, maxsize 10,000",
        img / "ops_decorator.png",
    )
    _grouped_bars(
        results, "bulk", "Bulk get/set in batches of 100 keys (time per key)", img / "ops_bulk.png"
    )
    _threads_chart(results, img / "threads.png")
    _memory_chart(results, img / "memory.png")
    _hitratio_chart(results, img / "hitratio.png")
