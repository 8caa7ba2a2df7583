"""Run the Rust-only criterion benchmark (benches/engine.rs) and read its estimates.

criterion writes ``<target>/criterion/engine/<op>/<config>/new/estimates.json``;
the median point estimate (ns per operation, one operation per iteration) and
its 95% confidence interval are kept.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# engine op -> the Python case it is the core of
PYTHON_CASE = {
    "get_hit": "get_hit",
    "get_miss": "get_miss",
    "insert_existing": "set_existing",
    "insert_new_full": "set_new_full",
    "insert_new_full_sync": "set_new_full",
    "remove": "remove",
}


def criterion_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else ROOT / "target") / "criterion" / "engine"


def run(progress: Callable[[str], None] = print) -> dict[str, Any]:
    progress("engine     cargo bench --bench engine (builds in release mode first) ...")
    proc = subprocess.run(
        ["cargo", "bench", "--bench", "engine"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"cargo bench failed:\n{tail}")
    return read()


def read() -> dict[str, Any]:
    """{op: {config: {median, lower, upper}}} from criterion's latest run."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    base = criterion_dir()
    for path in sorted(base.glob("*/*/new/estimates.json")):
        config = path.parent.parent.name
        op = path.parent.parent.parent.name
        est = json.loads(path.read_text())["median"]
        out.setdefault(op, {})[config] = {
            "median": est["point_estimate"],
            "lower": est["confidence_interval"]["lower_bound"],
            "upper": est["confidence_interval"]["upper_bound"],
        }
    if not out:
        raise RuntimeError(f"no criterion estimates under {base}")
    return out
