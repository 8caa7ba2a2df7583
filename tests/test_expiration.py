"""Time to live and time to idle: cache-wide and per entry.

Margins are generous: an entry is checked as present well before its deadline and
as gone well after it, never at the edge.
"""

from __future__ import annotations

import time

from moka_py import Moka
from tests.conftest import Events

SHORT = 0.2  # a lifetime that has surely passed after LONG_WAIT
LONG_WAIT = 0.6


def test_cache_wide_ttl() -> None:
    cache: Moka[str, int] = Moka(10, ttl=SHORT)
    cache.set("a", 1)
    assert cache.get("a") == 1
    time.sleep(LONG_WAIT)
    assert cache.get("a") is None
    assert "a" not in cache


def test_cache_wide_tti_is_reset_by_reads() -> None:
    cache: Moka[str, int] = Moka(10, tti=1.0)
    cache.set("a", 1)
    for _ in range(4):
        time.sleep(0.4)
        assert cache.get("a") == 1  # each read restarts the idle clock
    time.sleep(2.0)
    assert cache.get("a") is None


def test_membership_does_not_reset_tti() -> None:
    cache: Moka[str, int] = Moka(10, tti=0.5)
    cache.set("a", 1)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        "a" in cache  # noqa: B015 - checks for its (lack of) side effect
        cache.keys()
        time.sleep(0.05)
    assert cache.get("a") is None


def test_writes_restart_ttl() -> None:
    cache: Moka[str, int] = Moka(10, ttl=1.0)
    cache.set("a", 1)
    time.sleep(0.6)
    cache.set("a", 2)
    time.sleep(0.6)
    assert cache.get("a") == 2


def test_per_entry_ttl_shortens() -> None:
    cache: Moka[str, int] = Moka(10, ttl=60)
    cache.set("short", 1, ttl=SHORT)
    cache.set("long", 2)
    time.sleep(LONG_WAIT)
    assert cache.get("short") is None
    assert cache.get("long") == 2


def test_per_entry_ttl_cannot_extend() -> None:
    cache: Moka[str, int] = Moka(10, ttl=SHORT)
    cache.set("a", 1, ttl=3600)
    time.sleep(LONG_WAIT)
    assert cache.get("a") is None


def test_per_entry_tti() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set("idle", 1, tti=0.5)
    cache.set("plain", 2)
    for _ in range(3):
        time.sleep(0.25)
        assert cache.get("idle") == 1
    time.sleep(1.5)
    assert cache.get("idle") is None
    assert cache.get("plain") == 2


def test_per_entry_tti_cannot_extend_cache_wide_tti() -> None:
    cache: Moka[str, int] = Moka(10, tti=SHORT)
    cache.set("a", 1, tti=3600)
    time.sleep(LONG_WAIT)
    assert cache.get("a") is None


def test_per_entry_ttl_on_a_plain_cache_keeps_existing_entries(events: Events) -> None:
    # A cache created without any expiration switches its engine the first time an
    # entry asks for one; the entries it held stay, with their values.
    cache: Moka[int, int] = Moka(100)
    for i in range(50):
        cache.set(i, i)
    cache.set(1000, 1, ttl=SHORT)
    assert [cache.get(i) for i in range(50)] == list(range(50))
    assert len(cache) == 51
    time.sleep(LONG_WAIT)
    assert cache.get(1000) is None
    assert len(cache) == 50
    # moka reports per-entry expirations when its timer wheel ticks (about once a
    # second), so give it a few.
    deadline = time.monotonic() + 5
    while cache.stats().expirations == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        cache.run_pending_tasks()
    stats = cache.stats()
    assert (stats.expirations, stats.evictions) == (1, 0)


def test_first_per_entry_ttl_keeps_the_cache_wide_deadlines_of_existing_entries() -> None:
    # A cache with only a cache-wide ttl runs without moka's per-entry expiry and is
    # rebuilt with it when an entry first asks for its own. Entries written before
    # that keep the deadline they were written under: the rebuild must not count
    # their ttl afresh.
    cache: Moka[str, int] = Moka(10, ttl=2.0)
    cache.set("old", 1)
    time.sleep(1.0)
    cache.set("own", 2, ttl=60)
    assert cache.get("old") == 1
    time.sleep(1.5)  # 2.5 s after "old" was written, 1.5 s after the rebuild
    assert cache.get("old") is None
    assert cache.get("own") == 2


def test_cache_wide_tti_still_applies_after_the_first_per_entry_ttl() -> None:
    # Moved entries restart their idle clock at the switch (docs/expiration.md,
    # performance notes), and from there the cache-wide tti applies as before.
    cache: Moka[str, int] = Moka(10, tti=0.5)
    cache.set("old", 1)
    cache.set("own", 2, ttl=60)
    assert cache.get("old") == 1
    time.sleep(1.5)
    assert cache.get("old") is None
    assert cache.get("own") is None  # idle too: the cache-wide tti caps every entry


def test_first_per_entry_ttl_on_a_listener_cache_reports_nothing(events: Events) -> None:
    # The rebuild moves every entry to the new engine: that is no removal, so the
    # listener hears nothing and the stats count nothing.
    cache: Moka[int, int] = Moka(100, ttl=3600, tti=3600, eviction_listener=events)
    for i in range(50):
        cache.set(i, i)
    cache.set(1000, 1, ttl=60)
    cache.run_pending_tasks()
    assert events.calls == []
    assert [cache.get(i) for i in range(50)] == list(range(50))
    assert len(cache) == 51
    stats = cache.stats()
    assert (stats.evictions, stats.expirations) == (0, 0)
    cache.remove(3)
    assert events.calls == [(3, 3, "explicit")]


def test_entries_expired_before_the_rebuild_are_reported_once(events: Events) -> None:
    cache: Moka[str, int] = Moka(10, ttl=SHORT, eviction_listener=events)
    cache.set("gone", 1)
    time.sleep(LONG_WAIT)
    cache.set("own", 2, ttl=60)
    cache.run_pending_tasks()
    assert events.calls == [("gone", 1, "expired")]
    assert cache.stats().expirations == 1
    assert list(cache.keys()) == ["own"]


def test_first_per_entry_ttl_keeps_weights_and_the_capacity(events: Events) -> None:
    cache: Moka[str, str] = Moka(
        10, ttl=3600, weigher=lambda _k, v: len(v), eviction_listener=events
    )
    cache.set("a", "xxxx")
    cache.set("b", "yyyy")
    cache.set("c", "z", ttl=60)
    cache.run_pending_tasks()  # weighted_size() is moka's, counted in maintenance
    assert cache.weighted_size() == 9
    assert events.calls == []
    cache.set("d", "ww")  # 11 > 10: something must go, and be reported as "size"
    assert cache.weighted_size() <= 10
    assert events.causes() == ["size"]


def test_replacing_without_ttl_drops_the_old_per_entry_ttl() -> None:
    cache: Moka[str, int] = Moka(10)
    cache.set("a", 1, ttl=SHORT)
    cache.set("a", 2)
    time.sleep(LONG_WAIT)
    assert cache.get("a") == 2


def test_expired_entries_are_reported_and_not_counted(events: Events) -> None:
    cache: Moka[int, int] = Moka(100, ttl=SHORT, eviction_listener=events)
    for i in range(10):
        cache.set(i, i)
    time.sleep(LONG_WAIT)
    assert len(cache) == 0
    assert sorted(events.keys("expired")) == list(range(10))
    assert cache.stats().expirations == 10


def test_expired_value_is_not_returned_even_before_maintenance() -> None:
    cache: Moka[str, int] = Moka(10, ttl=SHORT)
    cache.set("a", 1)
    time.sleep(LONG_WAIT)
    assert cache.get("a", -1) == -1
    assert cache.get_with("a", lambda: 7) == 7
