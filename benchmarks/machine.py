"""What the numbers were measured on."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def source_revision() -> str:
    """The commit of the tree being measured, marked when src/ or python/ has local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "python"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    if not rev:
        return "unknown"
    return rev + (" with local changes to src/ or python/" if dirty else "")


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe(versions: dict[str, str]) -> dict[str, Any]:
    gil_check = getattr(sys, "_is_gil_enabled", None)
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "gil_enabled": True if gil_check is None else bool(gil_check()),
        "pythonhashseed": os.environ.get("PYTHONHASHSEED", "random"),
        "revision": source_revision(),
        # Other work on the machine skews every number: say how busy it was.
        "load_before": load_average(),
        "versions": versions,
    }


def lines(info: dict[str, Any]) -> list[str]:
    mem = f", {info['memory_gib']:.0f} GiB" if info.get("memory_gib") else ""
    gil = "GIL enabled" if info["gil_enabled"] else "free-threaded (GIL disabled)"
    load = info.get("load_before")
    out = [
        f"date:    {info['date']}" + (f"  (load average {load[0]:.2f})" if load else ""),
        f"cpu:     {info['cpu']}, {info['cores']} cores{mem}",
        f"os:      {info['os']}",
        f"tree:    {info['revision']}",
        f"python:  {info['python']}, {gil}, PYTHONHASHSEED={info['pythonhashseed']}",
    ]
    out += [f"  {name}: {version}" for name, version in info["versions"].items()]
    return out
