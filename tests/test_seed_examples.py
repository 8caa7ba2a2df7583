# ruff: noqa: E501 - the seed's examples are kept as they were written, long lines included.
"""The examples of the description moka-py started from must run unchanged.

Each example below is the seed's code, re-indented from the seed text; it runs in a
fresh namespace as a script (`__name__ == "__main__"`). The seed's timings are short
(tens of milliseconds) but these examples only ever assert that something has
*expired after* its ttl/tti, never that it is still there at a deadline's edge.
"""

from __future__ import annotations

import textwrap

import pytest

EXAMPLES = {
    "basic_ttl_tti": """
        from time import sleep
        from moka_py import Moka
        # Create a cache with a capacity of 100 entries, with a TTL of 10.0 seconds
        # and a TTI of 0.1 seconds. Entries are always removed after 10 seconds
        # and are removed after 0.1 seconds if there are no `get`s happened for this time.
        #
        # Both TTL and TTI settings are optional. In the absence of an entry,
        # the corresponding policy will not expire it.
        # The default eviction policy is "tiny_lfu" which is optimal for most workloads,
        # but you can choose "lru" as well.
        cache: Moka[str, list[int]] = Moka(capacity=100, ttl=10.0, tti=0.1, policy="lru")
        # Insert a value.
        cache.set("key", [3, 2, 1])
        # Retrieve the value.
        assert cache.get("key") == [3, 2, 1]
        # Wait for 0.1+ seconds, and the entry will be automatically evicted.
        sleep(0.12)
        assert cache.get("key") is None
    """,
    "cached_ttl_tti": """
        from time import sleep
        from moka_py import cached
        calls = []
        @cached(maxsize=1024, ttl=5.0, tti=0.05)
        def f(x, y):
            calls.append((x, y))
            return x + y
        assert f(1, 2) == 3 # calls computations
        assert f(1, 2) == 3 # gets from the cache
        assert len(calls) == 1
        sleep(0.06)
        assert f(1, 2) == 3 # calls computations again (since TTI has passed)
        assert len(calls) == 2
    """,
    "cached_async": """
        import asyncio
        from time import perf_counter
        from moka_py import cached
        calls = []
        @cached(maxsize=1024, ttl=5.0, tti=0.1)
        async def f(x, y):
            calls.append((x, y))
            await asyncio.sleep(0.05)
            return x + y
        start = perf_counter()
        assert asyncio.run(f(5, 6)) == 11
        assert asyncio.run(f(5, 6)) == 11 # from cache
        elapsed = perf_counter() - start
        assert elapsed < 0.2
        assert len(calls) == 1
    """,
    "wait_concurrent_threads": """
        import moka_py
        from typing import Any
        from time import sleep
        import threading
        from decimal import Decimal
        calls = []
        @moka_py.cached(ttl=5, wait_concurrent=True)
        def get_user(id_: int) -> dict[str, Any]:
            calls.append(id_)
            sleep(0.02) # simulate an HTTP request (short for tests)
            return {
                "id": id_,
                "first_name": "Jack",
                "last_name": "Pot",
            }
        def process_request(path: str, user_id: int) -> None:
            user = get_user(user_id)
            ...
        def charge_money(from_user_id: int, amount: Decimal) -> None:
            user = get_user(from_user_id)
            ...
        if __name__ == '__main__':
            request_processing = threading.Thread(target=process_request, args=("/user/info/123", 123))
            money_charging = threading.Thread(target=charge_money, args=(123, Decimal("3.14")))
            request_processing.start()
            money_charging.start()
            request_processing.join()
            money_charging.join()
            # Only one call occurred. Without `wait_concurrent`, each thread would issue its own HTTP request
            # before the cache entry is set.
            assert len(calls) == 1
    """,
    "eviction_listener": """
        from typing import Literal
        from moka_py import Moka
        from time import sleep
        def key_evicted(
            k: str,
            v: list[int],
            cause: Literal["explicit", "size", "expired", "replaced"]
        ):
            events.append((k, v, cause))
        events: list[tuple[str, list[int], str]] = []
        moka: Moka[str, list[int]] = Moka(2, eviction_listener=key_evicted, ttl=0.5)
        moka.set("hello", [1, 2, 3])
        moka.set("hello", [3, 2, 1]) # replaced
        moka.set("foo", [4]) # expired
        moka.set("baz", "size")
        moka.remove("foo") # explicit
        sleep(1.0)
        moka.get("anything") # this will trigger eviction for expired
        causes = {c for _, _, c in events}
        assert causes == {"size", "expired", "replaced", "explicit"}, events
    """,
    "remove": """
        from moka_py import Moka
        c = Moka(128)
        c.set("hello", "world")
        assert c.remove("hello") == "world"
        assert c.get("hello") is None
    """,
    "remove_default": """
        from moka_py import Moka
        c = Moka(128)
        c.set("hello", None)
        assert c.remove("hello", default="WAS_NOT_SET") is None # None was set explicitly
        # Now the entry "hello" does not exist, so `default` is returned
        assert c.remove("hello", default="WAS_NOT_SET") == "WAS_NOT_SET"
    """,
    "stores_references": """
        from moka_py import Moka
        c = Moka(128)
        my_list = [1, 2, 3]
        c.set("hello", my_list)
        still_the_same = c.get("hello")
        still_the_same.append(4)
        assert my_list == [1, 2, 3, 4]
    """,
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_seed_example_runs_unchanged(name: str) -> None:
    source = textwrap.dedent(EXAMPLES[name])
    exec(compile(source, f"<seed example {name}>", "exec"), {"__name__": "__main__"})


def test_listener_example_reports_size_when_the_call_returns() -> None:
    # 0.5.0 only reported "size" at a later maintenance; here the set that overfills
    # the cache already reported it.
    from moka_py import Moka

    events: list[tuple[str, object, str]] = []
    cache: Moka[str, object] = Moka(2, eviction_listener=lambda k, v, c: events.append((k, v, c)))
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("c", 3)
    assert [c for _, _, c in events] == ["size"]
    assert len(cache) == 2
