"""`expiry=`: per-entry variable expiration from user hooks."""

from __future__ import annotations

import time
from typing import Any

import pytest

from moka_py import Moka


class Recorder:
    """Answers with the lifetimes it is given and records every call."""

    def __init__(
        self, create: float | None = None, read: float | None = None, update: float | None = None
    ) -> None:
        self.answers = {"create": create, "read": read, "update": update}
        self.calls: list[tuple[Any, ...]] = []

    def expire_after_create(self, key: Any, value: Any) -> float | None:
        self.calls.append(("create", key, value))
        return self.answers["create"]

    def expire_after_read(self, key: Any, value: Any, remaining: float | None) -> float | None:
        self.calls.append(("read", key, value, remaining))
        return self.answers["read"]

    def expire_after_update(self, key: Any, value: Any, remaining: float | None) -> float | None:
        self.calls.append(("update", key, value, remaining))
        return self.answers["update"]


def test_create_hook_sets_the_lifetime() -> None:
    class ByValue:
        def expire_after_create(self, key: str, value: float) -> float:
            return value

    cache: Moka[str, float] = Moka(10, expiry=ByValue())
    cache.set("short", 0.2)
    cache.set("long", 60.0)
    time.sleep(0.6)
    assert cache.get("short") is None
    assert cache.get("long") == 60.0


def test_create_returning_none_never_expires_on_its_own() -> None:
    cache: Moka[str, int] = Moka(10, expiry=Recorder(create=None))
    cache.set("a", 1)
    time.sleep(0.3)
    assert cache.get("a") == 1


def test_hooks_receive_key_value_and_remaining() -> None:
    hooks = Recorder(create=30.0, read=None, update=None)
    cache: Moka[str, int] = Moka(10, expiry=hooks)
    cache.set("a", 1)
    assert cache.get("a") == 1
    cache.set("a", 2)
    kinds = [c[0] for c in hooks.calls]
    assert kinds == ["create", "read", "update"]
    assert hooks.calls[0] == ("create", "a", 1)
    _, key, value, remaining = hooks.calls[1]
    assert (key, value) == ("a", 1)
    assert 29.0 < remaining <= 30.0
    _, key, value, remaining = hooks.calls[2]
    assert (key, value) == ("a", 2)
    assert 29.0 < remaining <= 30.0


def test_update_returning_none_keeps_the_deadline() -> None:
    cache: Moka[str, int] = Moka(10, expiry=Recorder(create=0.5, update=None))
    cache.set("a", 1)
    time.sleep(0.2)
    cache.set("a", 2)  # keeps the deadline set at creation
    time.sleep(0.7)
    assert cache.get("a") is None


def test_update_can_extend() -> None:
    cache: Moka[str, int] = Moka(10, expiry=Recorder(create=0.3, update=60))
    cache.set("a", 1)
    cache.set("a", 2)
    time.sleep(0.6)
    assert cache.get("a") == 2


def test_read_hook_refreshes() -> None:
    cache: Moka[str, int] = Moka(10, expiry=Recorder(create=0.4, read=0.4))
    cache.set("a", 1)
    for _ in range(4):
        time.sleep(0.2)
        assert cache.get("a") == 1
    time.sleep(1.0)
    assert cache.get("a") is None


def test_hooks_are_capped_by_the_cache_wide_ttl() -> None:
    cache: Moka[str, int] = Moka(10, ttl=0.2, expiry=Recorder(create=3600))
    cache.set("a", 1)
    time.sleep(0.6)
    assert cache.get("a") is None


def test_membership_and_snapshots_do_not_call_the_read_hook() -> None:
    hooks = Recorder(create=60)
    cache: Moka[str, int] = Moka(10, expiry=hooks)
    cache.set("a", 1)
    "a" in cache  # noqa: B015
    cache.items()
    assert [c[0] for c in hooks.calls] == ["create"]


def test_a_partial_expiry_object_is_fine() -> None:
    class OnlyCreate:
        def expire_after_create(self, key: str, value: int) -> float:
            return 0.2

    cache: Moka[str, int] = Moka(10, expiry=OnlyCreate())
    cache.set("a", 1)
    assert cache.get("a") == 1
    time.sleep(0.6)
    assert cache.get("a") is None


def test_hook_exceptions_reach_the_caller_and_change_nothing() -> None:
    class Broken:
        def expire_after_create(self, key: str, value: int) -> float:
            raise OSError("create")

        def expire_after_read(self, key: str, value: int, remaining: float | None) -> float:
            raise OSError("read")

    cache: Moka[str, int] = Moka(10, expiry=Broken())
    with pytest.raises(OSError, match="create"):
        cache.set("a", 1)
    assert "a" not in cache


def test_read_hook_exception_reaches_the_reader() -> None:
    class BrokenRead:
        def expire_after_create(self, key: str, value: int) -> float:
            return 60

        def expire_after_read(self, key: str, value: int, remaining: float | None) -> float:
            raise OSError("read")

    cache: Moka[str, int] = Moka(10, expiry=BrokenRead())
    cache.set("a", 1)
    with pytest.raises(OSError, match="read"):
        cache.get("a")
    assert "a" in cache


@pytest.mark.parametrize("answer", [-1, float("nan"), "soon"])
def test_bad_hook_answers_are_rejected(answer: Any) -> None:
    class Bad:
        def expire_after_create(self, key: str, value: int) -> Any:
            return answer

    cache: Moka[str, int] = Moka(10, expiry=Bad())
    with pytest.raises((TypeError, ValueError), match="expire_after_create must return"):
        cache.set("a", 1)
    assert len(cache) == 0


@pytest.mark.parametrize("expiry", [42, object(), "x"])
def test_expiry_needs_at_least_one_hook(expiry: Any) -> None:
    with pytest.raises(TypeError, match="expiry must be an object with"):
        Moka(10, expiry=expiry)


def test_hook_attributes_must_be_callable() -> None:
    class NotCallable:
        expire_after_create = 5

    with pytest.raises(TypeError, match=r"expiry\.expire_after_create must be callable"):
        Moka(10, expiry=NotCallable())
