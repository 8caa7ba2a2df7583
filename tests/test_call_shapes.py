"""Every way of calling `get` and `get_with` behaves alike.

On CPython the common shapes (`get(key)`, `get(key, default)`, `get_with(key,
initializer)`) take a shorter native entry point than the others (keywords, extra
arguments), which go through PyO3's; see `src/fastcall.rs`. These tests call each
method every way a user can and check that the answers, the errors and the
introspection are the same.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import pytest

from moka_py import Moka

MISSING = object()


class Forgetful(Moka[str, int]):
    """A subclass whose `__init__` never calls `super().__init__`."""

    def __init__(self) -> None:
        pass


def full_cache() -> Moka[str, int]:
    cache: Moka[str, int] = Moka(10)
    cache.set("present", 1)
    return cache


# (description, call) pairs: every shape a caller can use for `get`.
GET_SHAPES: list[tuple[str, Any]] = [
    ("key", lambda c, k, d: c.get(k) if d is MISSING else c.get(k, d)),
    ("keyword key", lambda c, k, d: c.get(key=k) if d is MISSING else c.get(key=k, default=d)),
    ("keyword default", lambda c, k, d: c.get(k) if d is MISSING else c.get(k, default=d)),
    ("unbound", lambda c, k, d: Moka.get(c, k) if d is MISSING else Moka.get(c, k, d)),
    ("bound method object", lambda c, k, d: (c.get)(*([k] if d is MISSING else [k, d]))),
    (
        "argument unpacking",
        lambda c, k, d: c.get(*(k,), **({} if d is MISSING else {"default": d})),
    ),
]


@pytest.mark.parametrize(("shape", "call"), GET_SHAPES, ids=[s for s, _ in GET_SHAPES])
def test_get_answers_the_same_in_every_shape(shape: str, call: Any) -> None:
    cache = full_cache()
    default = object()
    assert call(cache, "present", MISSING) == 1
    assert call(cache, "present", default) == 1
    assert call(cache, "absent", MISSING) is None
    assert call(cache, "absent", default) is default
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (2, 2), shape


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.get(), "missing 1 required positional argument: 'key'"),
        (lambda c: c.get("a", None, None), "takes from 1 to 2 positional arguments but 3"),
        (lambda c: c.get("a", key="a"), "multiple values for argument 'key'"),
        (lambda c: c.get(k="a"), "unexpected keyword argument 'k'"),
        (lambda c: c.get_with("a"), "missing 1 required positional argument: 'initializer'"),
        (lambda c: c.get_with("a", int, 1, 2, 3), "takes from 2 to 4 positional arguments"),
        (lambda c: c.get_with("a", initialiser=int), "unexpected keyword argument 'initialiser'"),
    ],
)
def test_bad_call_shapes_raise_type_error_naming_the_method(call: Any, message: str) -> None:
    cache = full_cache()
    with pytest.raises(TypeError, match=message) as info:
        call(cache)
    assert "Moka.get" in str(info.value)
    assert len(cache) == 1
    assert cache.get("present") == 1


@pytest.mark.parametrize("method", ["get", "get_with"])
def test_self_must_be_a_cache(method: str) -> None:
    with pytest.raises(TypeError, match="Moka"):
        getattr(Moka, method)(object(), "a", int)
    with pytest.raises(TypeError):
        getattr(Moka, method)()


def test_key_errors_reach_the_caller_in_every_shape() -> None:
    class Unhashable:
        def __hash__(self) -> int:
            raise ArithmeticError("no hash")

    cache = full_cache()
    for call in (
        lambda: cache.get(Unhashable()),
        lambda: cache.get(Unhashable(), 0),
        lambda: cache.get(key=Unhashable()),
        lambda: cache.get_with(Unhashable(), int),
        lambda: cache.get_with(Unhashable(), int, ttl=1),
    ):
        with pytest.raises(ArithmeticError, match="no hash"):
            call()
    with pytest.raises(TypeError, match="unhashable type: 'list'"):
        cache.get([])
    assert len(cache) == 1


def test_get_with_answers_the_same_in_every_shape() -> None:
    cache: Moka[str, int] = Moka(10)
    assert cache.get_with("a", lambda: 1) == 1
    assert cache.get_with(key="b", initializer=lambda: 2) == 2
    assert cache.get_with("c", lambda: 3, 3600) == 3
    assert cache.get_with("d", lambda: 4, tti=3600) == 4
    assert Moka.get_with(cache, "e", lambda: 5) == 5
    # Hits in every shape return the stored value without calling the initializer.
    never = lambda: pytest.fail("initializer called on a hit")  # noqa: E731
    assert [
        cache.get_with("a", never),
        cache.get_with(key="b", initializer=never),
        cache.get_with("c", never, 1),
        Moka.get_with(cache, "e", never),
    ] == [1, 2, 3, 5]
    assert sorted(cache.keys()) == ["a", "b", "c", "d", "e"]
    with pytest.raises(TypeError, match="initializer must be callable"):
        cache.get_with("z", 5)  # type: ignore[arg-type]
    assert "z" not in cache


def test_introspection_is_unchanged() -> None:
    assert str(inspect.signature(Moka.get)) == "(self, /, key, default=None)"
    assert (
        str(inspect.signature(Moka.get_with)) == "(self, /, key, initializer, ttl=None, tti=None)"
    )
    assert Moka.get.__name__ == "get"
    assert Moka.get_with.__name__ == "get_with"
    assert Moka.get.__qualname__ == "Moka.get"
    assert (Moka.get.__doc__ or "").startswith("Returns the value of `key`")
    assert (Moka.get_with.__doc__ or "").startswith("Returns the value of `key`; if absent")
    assert "get" in vars(Moka)
    assert "get_with" in vars(Moka)


def test_subclasses_inherit_and_override_get() -> None:
    class Plain(Moka[str, int]):
        pass

    class Logged(Moka[str, int]):
        def __init__(self, capacity: int) -> None:
            super().__init__(capacity)
            self.asked: list[str] = []

        def get(self, key: str, default: Any = None) -> Any:
            self.asked.append(key)
            return super().get(key, default)

    plain = Plain(5)
    plain["a"] = 1
    assert plain.get("a") == 1
    assert plain.get("b", 0) == 0
    logged = Logged(5)
    logged["a"] = 1
    assert logged.get("a") == 1
    assert logged.get("b", 2) == 2
    assert logged.asked == ["a", "b"]


def test_uninitialized_subclass_raises_in_every_shape() -> None:
    cache = Forgetful()
    for call in (
        lambda: cache.get("a"),
        lambda: cache.get("a", 0),
        lambda: cache.get(key="a"),
        lambda: cache.get_with("a", int),
    ):
        with pytest.raises(RuntimeError, match="never initialized"):
            call()


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="reference counts are CPython's")
def test_fast_shapes_take_no_references_for_good() -> None:
    cache = full_cache()
    key, default = "present", object()
    initializer = lambda: 0  # noqa: E731 - compared by refcount below
    before = [sys.getrefcount(x) for x in (key, default, initializer)]
    for _ in range(100):
        cache.get(key)
        cache.get("absent", default)
        cache.get_with(key, initializer)
    assert [sys.getrefcount(x) for x in (key, default, initializer)] == before


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="counts CPython's allocations")
@pytest.mark.thread_unsafe(reason="counts the process's allocated memory blocks")
def test_errors_raised_by_fast_shapes_are_released() -> None:
    cache, ready = Forgetful(), full_cache()

    def fail_many() -> None:
        for _ in range(2000):
            with pytest.raises(RuntimeError):
                cache.get("a")
            with pytest.raises(TypeError):
                ready.get_with("absent", 5)  # type: ignore[arg-type]

    fail_many()  # warm up: free lists and caches settle
    before = sys.getallocatedblocks()
    fail_many()
    # Each error that was built and not released would hold its message (and more).
    assert sys.getallocatedblocks() - before < 500


def test_read_hooks_run_and_raise_alike_in_every_shape() -> None:
    class Counted:
        def __init__(self) -> None:
            self.reads: list[str] = []
            self.fail = False

        def expire_after_create(self, key: str, value: int) -> float:
            return 3600.0

        def expire_after_read(self, key: str, value: int, remaining: float | None) -> float:
            self.reads.append(key)
            if self.fail:
                raise OSError(f"read {key}")
            return 3600.0

    hooks = Counted()
    cache: Moka[str, int] = Moka(10, expiry=hooks)
    cache.set("a", 1)
    reads = [
        lambda: cache.get("a"),
        lambda: cache.get("a", 0),
        lambda: cache.get(key="a"),
        lambda: cache.get_with("a", int),
        lambda: cache.get_with("a", int, ttl=5),
    ]
    assert [read() for read in reads] == [1] * len(reads)
    assert hooks.reads == ["a"] * len(reads)
    hooks.fail = True
    for read in reads:
        with pytest.raises(OSError, match="read a"):
            read()
    assert len(hooks.reads) == 2 * len(reads)
    assert "a" in cache
