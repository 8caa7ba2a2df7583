"""A two-second tour of moka-py: run it with `nox -s demo`.

It shows a cache holding values, an entry expiring after its time to live, and the `@cached`
decorator turning a slow function into a fast one. Each step checks what it claims, so the
script fails loudly if the package does not behave as shown.
"""

from __future__ import annotations

import time

import moka_py
from moka_py import Moka, cached


def show_set_and_get() -> None:
    cache: Moka[str, list[int]] = Moka(100)
    cache.set("primes", [2, 3, 5, 7])
    print(f"  get('primes')  -> {cache.get('primes')}")
    print(f"  get('missing') -> {cache.get('missing')!r}")
    assert cache.get("primes") == [2, 3, 5, 7]
    assert cache.get("missing") is None
    assert cache.get("missing", "a default") == "a default"


def show_ttl_expiry() -> None:
    cache: Moka[str, str] = Moka(100, ttl=0.2)
    cache.set("session", "alice")
    print(f"  right after set: {cache.get('session')!r}")
    assert cache.get("session") == "alice"
    time.sleep(0.25)
    print(f"  0.25 s later (ttl=0.2 s): {cache.get('session')!r}")
    assert cache.get("session") is None


def show_cached_timing() -> None:
    calls: list[int] = []

    @cached(maxsize=128, ttl=60.0)
    def slow_square(n: int) -> int:
        calls.append(n)
        time.sleep(0.1)  # stands in for a database query or an HTTP request
        return n * n

    for label in ("first call (computes)", "second call (cached)"):
        start = time.perf_counter()
        result = slow_square(12)
        elapsed_ms = (time.perf_counter() - start) * 1000
        print(f"  {label:<22} slow_square(12) = {result}  in {elapsed_ms:8.3f} ms")
    assert calls == [12], calls
    print(f"  the function body ran {len(calls)} time(s)")


def main() -> None:
    print(f"moka-py {moka_py.__version__}")
    for title, step in [
        ("set / get", show_set_and_get),
        ("time to live", show_ttl_expiry),
        ("@cached", show_cached_timing),
    ]:
        print(f"\n{title}")
        step()
    print("\nall demo checks passed")


if __name__ == "__main__":
    main()
