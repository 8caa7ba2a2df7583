"""Bad arguments get a TypeError or ValueError naming them, keep 0.5.0's message
fragments, and never crash the interpreter (the dangerous ones run in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from moka_py import Moka


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"capacity": -1}, ValueError, "capacity must be >= 0"),
        ({"capacity": 2**64}, ValueError, "capacity is too large"),
        ({"capacity": 1.5}, TypeError, "capacity must be an int, not float"),
        ({"capacity": "10"}, TypeError, "capacity must be an int, not str"),
        ({"capacity": True}, TypeError, "capacity must be an int, not bool"),
        ({"capacity": None}, TypeError, "capacity must be an int, not NoneType"),
        ({"capacity": 10, "ttl": 0}, ValueError, "ttl must be positive"),
        ({"capacity": 10, "ttl": -1}, ValueError, "ttl must be positive"),
        ({"capacity": 10, "ttl": float("nan")}, ValueError, "ttl must be positive"),
        ({"capacity": 10, "ttl": float("inf")}, ValueError, "ttl must be positive"),
        ({"capacity": 10, "ttl": 1e300}, ValueError, "ttl is out of range: "),
        ({"capacity": 10, "ttl": 1e11}, ValueError, "ttl is out of range: "),
        ({"capacity": 10, "ttl": "5"}, TypeError, "ttl must be a number of seconds"),
        ({"capacity": 10, "tti": 0.0}, ValueError, "tti must be positive"),
        ({"capacity": 10, "tti": 1e11}, ValueError, "tti is out of range: "),
        ({"capacity": 10, "tti": []}, TypeError, "tti must be a number of seconds"),
        ({"capacity": 10, "policy": "x"}, ValueError, "'x' is not valid policy"),
        ({"capacity": 10, "policy": "LRU"}, ValueError, "'LRU' is not valid policy"),
        ({"capacity": 10, "policy": 1}, TypeError, "policy must be a str"),
        ({"capacity": 10, "eviction_listener": 1}, TypeError, "eviction_listener must be callable"),
        ({"capacity": 10, "weigher": "len"}, TypeError, "weigher must be callable"),
        ({"capacity": 10, "expiry": 3}, TypeError, "expiry must be an object with"),
    ],
)
def test_constructor_rejects(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Moka(**kwargs)


@pytest.mark.parametrize(
    ("ttl", "tti", "error", "match"),
    [
        (0, None, ValueError, "ttl must be positive"),
        (-5, None, ValueError, "ttl must be positive"),
        (float("nan"), None, ValueError, "ttl must be positive"),
        (None, -1, ValueError, "tti must be positive"),
        ("1", None, TypeError, "ttl must be a number of seconds"),
        (None, object(), TypeError, "tti must be a number of seconds"),
    ],
)
def test_per_entry_durations_are_checked_before_anything_changes(
    ttl: Any, tti: Any, error: type[Exception], match: str
) -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set("a", 1)
    with pytest.raises(error, match=match):
        cache.set("a", 2, ttl=ttl, tti=tti)
    with pytest.raises(error, match=match):
        cache.get_with("b", lambda: 2, ttl=ttl, tti=tti)
    assert cache.items() == [("a", 1)]


def test_per_entry_durations_beyond_the_limit_are_clamped() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set("a", 1, ttl=1e11)  # worked in 0.5.0: means "as long as the cache lives"
    assert cache.get("a") == 1


def test_accepted_argument_forms() -> None:
    from decimal import Decimal

    assert Moka(10, ttl=5).ttl == 5.0
    assert Moka(10, ttl=Decimal("0.5")).ttl == 0.5
    assert Moka(0).capacity == 0
    assert Moka(2**64 - 1).capacity == 2**64 - 1
    assert Moka(10, policy="lru", eviction_listener=None, weigher=None, expiry=None).policy == "lru"


def test_nothing_aborts_the_interpreter() -> None:
    # moka-py 0.5.0 aborted the process on a cache-wide ttl over moka's 1000-year limit.
    script = textwrap.dedent(
        """
        from moka_py import Moka
        for kwargs in ({"ttl": 1e11}, {"tti": 1e11}, {"ttl": 1e300}, {"capacity": 2**200}):
            try:
                Moka(**{"capacity": 10, **kwargs})
            except (TypeError, ValueError):
                pass
            else:
                raise SystemExit(f"accepted {kwargs}")
        print("survived")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "survived"
