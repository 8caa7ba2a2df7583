"""`@cached` on regular functions: SPEC §3, a drop-in for `functools.lru_cache`.

Where `lru_cache` defines the behaviour, the tests compare against it directly
rather than restating what it does.
"""

from __future__ import annotations

import copy
import functools
import gc
import inspect
import pickle
import platform
import random
import sys
import threading
import time
import weakref
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import moka_py
from moka_py import CachedFunction, CacheInfo, Moka, cached
from tests.conftest import run_threads

# On PyPy a native object with an instance dict (the wrapper has one, for
# update_wrapper) is kept alive by cpyext even when nothing refers to it
# (pypy/pypy#5584; PyO3/pyo3#6443 works around it, unreleased), and cycles through
# native objects are never collected there (PyO3/pyo3#3005).
PYPY_KEEPS_WRAPPERS = pytest.mark.skipif(
    platform.python_implementation() == "PyPy",
    reason="PyPy's cpyext never frees a native object that has an instance dict",
)

# ----- module-level wrappers (pickling is by qualified name) -------------------------


@cached
def module_level(x: int) -> int:
    return x + 1


@cached(maxsize=16, ttl=60, wait_concurrent=True)
def module_level_configured(x: int) -> int:
    return x * 2


class Holder:
    @cached
    def method(self, x: int) -> int:
        return x

    @staticmethod
    @cached
    def static(x: int) -> int:
        return x


class Counting:
    """A key whose `__hash__` calls are counted; equal when `value`s are."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.hashes = 0

    def __hash__(self) -> int:
        self.hashes += 1
        return hash(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Counting) and other.value == self.value


def call_counter() -> tuple[list[Any], Callable[..., Any]]:
    """A function recording its calls and returning how many it has seen."""
    calls: list[Any] = []

    def func(*args: Any, **kwargs: Any) -> int:
        calls.append((args, kwargs))
        return len(calls)

    return calls, func


# ----- package surface ---------------------------------------------------------------


def test_public_objects_belong_to_moka_py() -> None:
    assert cached.__module__ == "moka_py"
    assert CachedFunction.__module__ == "moka_py"
    assert moka_py.cached is cached
    assert cached.__doc__
    assert "lru_cache" in cached.__doc__
    assert CachedFunction.__doc__


def test_repr_shows_the_function_and_the_configuration() -> None:
    @cached(maxsize=3, typed=True, ttl=5, policy="lru")
    def answer() -> int:
        return 42

    text = repr(answer)
    assert "answer" in text
    assert "maxsize=3, typed=True, wait_concurrent=False" in text
    assert "Moka(capacity=3, ttl=5.0, tti=None, policy='lru')" in text
    assert "key=" not in text
    assert "key=<function" in repr(cached(key=lambda *a: a)(abs))
    assert "maxsize=None" in repr(cached(maxsize=None)(abs))


# ----- call forms ----------------------------------------------------------------------


def test_bare_decorator() -> None:
    @cached
    def square(x: int) -> int:
        return x * x

    assert isinstance(square, CachedFunction)
    assert [square(3), square(3)] == [9, 9]
    assert square.cache_info() == (1, 1, 128, 1)
    assert square.cache_parameters() == {"maxsize": 128, "typed": False}


def test_called_with_the_function_directly() -> None:
    wrapper = cached(abs)
    assert wrapper(-2) == 2
    assert wrapper.cache_parameters() == {"maxsize": 128, "typed": False}
    # lru_cache(func, typed) also works: a bool second argument is `typed`.
    typed = cached(abs, True)
    assert typed.cache_parameters() == {"maxsize": 128, "typed": True}


@pytest.mark.parametrize(
    ("decorator", "maxsize", "typed"),
    [
        (cached(), 128, False),
        (cached(256), 256, False),
        (cached(256, True), 256, True),
        (cached(maxsize=7, typed=True), 7, True),
        (cached(maxsize=None), None, False),
        (cached(maxsize=0), 0, False),
        (cached(-5), 0, False),
    ],
)
def test_called_forms(decorator: Any, maxsize: int | None, typed: bool) -> None:
    wrapper = decorator(abs)
    assert wrapper.cache_parameters() == {"maxsize": maxsize, "typed": typed}
    assert wrapper.cache_info().maxsize == maxsize
    assert wrapper.cache.capacity == maxsize


def test_bad_first_argument() -> None:
    with pytest.raises(TypeError, match="Expected first argument to be an integer, a callable"):
        cached("128")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="Expected first argument"):
        cached(1.5)  # type: ignore[call-overload]


def test_decorating_a_non_callable() -> None:
    with pytest.raises(TypeError, match="the first argument must be callable"):
        cached(1)("not a function")  # type: ignore[arg-type]


def test_bad_key_argument() -> None:
    with pytest.raises(TypeError, match="key"):
        cached(key=42)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"policy": "bogus"}, ValueError, "'bogus' is not valid policy"),
        ({"ttl": -1}, ValueError, "ttl"),
        ({"tti": 0}, ValueError, "tti"),
        ({"weigher": 3}, TypeError, "weigher"),
    ],
)
def test_bad_configuration_is_reported_by_the_decorator_call(
    kwargs: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        cached(**kwargs)
    with pytest.raises(error, match=fragment):
        cached(maxsize=4, **kwargs)


# ----- maxsize -------------------------------------------------------------------------


def test_maxsize_none_is_unbounded() -> None:
    calls, func = call_counter()
    wrapper = cached(maxsize=None)(func)
    for i in range(3000):
        wrapper(i)
    for i in range(3000):
        wrapper(i)
    assert len(calls) == 3000
    assert wrapper.cache_info() == (3000, 3000, None, 3000)
    assert wrapper.cache.capacity is None


@pytest.mark.parametrize("maxsize", [0, -1, -100])
def test_maxsize_zero_or_negative_caches_nothing_but_counts(maxsize: int) -> None:
    _, func = call_counter()
    wrapper = cached(maxsize)(func)
    assert [wrapper(1), wrapper(1), wrapper(1)] == [1, 2, 3]
    assert wrapper.cache_info() == (0, 3, 0, 0)
    # As with lru_cache, no key is built: unhashable arguments are fine.
    assert wrapper([1, 2]) == 4
    assert len(wrapper.cache) == 0


@pytest.mark.parametrize("maxsize", [2**64 - 1, 2**64, 10**30])
def test_maxsize_accepts_every_int_like_lru_cache(maxsize: int) -> None:
    # lru_cache takes any int; sizes past what the engine counts mean "unbounded" there.
    calls, func = call_counter()
    wrapper = cached(maxsize=maxsize)(func)
    assert [wrapper(1), wrapper(1)] == [1, 1]
    assert len(calls) == 1
    assert wrapper.cache_info() == (1, 1, maxsize, 1)
    assert wrapper.cache_parameters() == {"maxsize": maxsize, "typed": False}
    assert f"maxsize={maxsize}," in repr(wrapper)


def test_maxsize_bounds_the_cache() -> None:
    wrapper = cached(maxsize=10)(lambda x: x)
    for i in range(100):
        wrapper(i)
    assert wrapper.cache_info().currsize <= 10
    assert len(wrapper.cache) <= 10


# ----- the wrapper's attributes ----------------------------------------------------------


def test_cache_info_is_a_cache_info() -> None:
    wrapper = cached(lambda x: x)
    wrapper(1)
    wrapper(1)
    info = wrapper.cache_info()
    assert type(info) is CacheInfo
    assert (info.hits, info.misses, info.maxsize, info.currsize) == (1, 1, 128, 1)


def test_cache_clear_empties_and_resets_counts() -> None:
    calls, func = call_counter()
    wrapper = cached(func)
    wrapper(1)
    wrapper(1)
    wrapper(2)
    wrapper.cache_clear()
    assert wrapper.cache_info() == (0, 0, 128, 0)
    assert len(wrapper.cache) == 0
    wrapper(1)
    assert len(calls) == 3
    assert wrapper.cache_info() == (0, 1, 128, 1)


def test_cache_parameters_is_exactly_lru_caches() -> None:
    reference = functools.lru_cache(maxsize=64, typed=True)(abs).cache_parameters()
    ours = cached(maxsize=64, typed=True, ttl=10, policy="lru")(abs).cache_parameters()
    assert ours == reference == {"maxsize": 64, "typed": True}
    # A fresh dict each time: changing it changes nothing.
    wrapper = cached(abs)
    wrapper.cache_parameters()["maxsize"] = 1
    assert wrapper.cache_parameters()["maxsize"] == 128


def test_wrapped_bypasses_the_cache() -> None:
    calls, func = call_counter()
    wrapper = cached(func)
    assert wrapper.__wrapped__ is func
    wrapper.__wrapped__(1)
    wrapper.__wrapped__(1)
    assert len(calls) == 2
    assert wrapper.cache_info() == (0, 0, 128, 0)


def test_update_wrapper_attributes() -> None:
    def documented(a: int, /, b: str = "x", *, c: float = 1.0) -> str:
        """The docstring."""
        return f"{a}{b}{c}"

    documented.custom = "kept"  # type: ignore[attr-defined]
    wrapper = cached(documented)
    reference = functools.lru_cache(documented)
    for attr in functools.WRAPPER_ASSIGNMENTS:
        if hasattr(documented, attr):
            assert getattr(wrapper, attr) == getattr(documented, attr), attr
            assert getattr(wrapper, attr) == getattr(reference, attr), attr
    assert wrapper.__name__ == "documented"
    assert wrapper.__doc__ == "The docstring."
    assert wrapper.custom == "kept"  # type: ignore[attr-defined]
    assert inspect.signature(wrapper) == inspect.signature(documented)
    assert str(inspect.signature(wrapper.cache_info)) == "()"
    assert str(inspect.signature(wrapper.cache_clear)) == "()"


def test_wrapping_a_builtin_and_a_partial() -> None:
    assert cached(len)("abc") == 3
    part = cached(functools.partial(pow, 2))
    assert part(10) == 1024
    assert part.__wrapped__.args == (2,)


def test_stacked_wrappers() -> None:
    calls, func = call_counter()
    inner = cached(func)
    outer = cached(maxsize=4)(inner)
    assert outer.__wrapped__ is inner
    outer(1)
    outer(1)
    assert len(calls) == 1
    assert outer.cache_info() == (1, 1, 4, 1)
    assert inner.cache_info() == (0, 1, 128, 1)


def test_weak_referenceable() -> None:
    wrapper = cached(abs)
    ref = weakref.ref(wrapper)
    assert ref() is wrapper


@PYPY_KEEPS_WRAPPERS
def test_weak_referenceable_and_collected() -> None:
    def make() -> Any:
        @cached
        def func(x: int) -> int:
            return x

        func(1)
        return func

    wrapper = make()
    ref = weakref.ref(wrapper)
    assert ref() is wrapper
    del wrapper
    gc.collect()
    assert ref() is None


@PYPY_KEEPS_WRAPPERS
def test_recursive_local_function_is_collected() -> None:
    # The function refers to its own wrapper through a closure cell: a cycle that only
    # the garbage collector can break, as it does for lru_cache.
    def make() -> Any:
        @cached
        def fib(n: int) -> int:
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        fib(20)
        return weakref.ref(fib)

    ref = make()
    gc.collect()
    assert ref() is None


def test_copy_and_deepcopy_return_the_wrapper() -> None:
    wrapper = cached(abs)
    assert copy.copy(wrapper) is wrapper
    assert copy.deepcopy(wrapper) is wrapper
    assert copy.deepcopy([wrapper])[0] is wrapper


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize(
    "wrapper",
    [module_level, module_level_configured, Holder.method, Holder.static],
    ids=["bare", "configured", "method", "staticmethod"],
)
def test_module_level_wrapper_pickles_by_name(wrapper: Any, protocol: int) -> None:
    assert pickle.loads(pickle.dumps(wrapper, protocol)) is wrapper


def test_local_wrapper_does_not_pickle() -> None:
    local = cached(lambda x: x)
    reference = functools.lru_cache(lambda x: x)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(reference)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(local)


# ----- methods ---------------------------------------------------------------------------


def test_methods_cache_per_instance_and_share_one_cache() -> None:
    class Point:
        def __init__(self, x: int) -> None:
            self.x = x
            self.calls = 0

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Point) and other.x == self.x

        def __hash__(self) -> int:
            return hash(self.x)

        @cached(maxsize=10)
        def scaled(self, factor: int) -> int:
            self.calls += 1
            return self.x * factor

    a, b, c = Point(2), Point(2), Point(3)
    assert Point.__dict__["scaled"] is Point.scaled
    assert [a.scaled(10), a.scaled(10), b.scaled(10), c.scaled(10)] == [20, 20, 20, 30]
    assert (a.calls, b.calls, c.calls) == (1, 0, 1)  # a == b: one entry
    assert Point.scaled.cache_info() == (2, 2, 10, 2)
    assert a.scaled.cache_info() == Point.scaled.cache_info()
    assert a.scaled.__self__ is a
    assert Point.scaled(c, 10) == 30


def test_classmethod_and_staticmethod() -> None:
    class Base:
        @classmethod
        @cached
        def make(cls, x: int) -> tuple[type, int]:
            return (cls, x)

        @staticmethod
        @cached
        def double(x: int) -> int:
            return 2 * x

    class Derived(Base):
        pass

    assert Base.make(1) == (Base, 1)
    assert Derived.make(1) == (Derived, 1)
    assert Base().make(1) == (Base, 1)
    assert Base.double(2) == Derived().double(2) == 4
    assert Base.__dict__["make"].__func__.cache_info() == (1, 2, 128, 2)
    assert Base.double.cache_info() == (1, 1, 128, 1)


def test_descriptor_protocol_matches_lru_cache() -> None:
    wrapper = cached(abs)
    reference = functools.lru_cache(abs)
    assert wrapper.__get__(None, int) is wrapper
    assert reference.__get__(None, int) is reference
    bound = wrapper.__get__(-3, int)
    assert bound.__self__ == -3
    assert bound() == 3


# ----- keys --------------------------------------------------------------------------------

VALUES = [0, 1, 2, 1.0, 0.0, -0.0, True, False, "a", "b", b"a", None, (1,), (1.0,), (True,)]
NAN = float("nan")


@st.composite
def calls(draw: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    args = tuple(draw(st.lists(st.sampled_from([*VALUES, NAN]), max_size=3)))
    names = draw(st.lists(st.sampled_from(["x", "y", "z"]), unique=True, max_size=2))
    kwargs = {name: draw(st.sampled_from([*VALUES, NAN])) for name in names}
    return args, kwargs


@settings(max_examples=300, deadline=None)
@given(
    sequence=st.lists(calls(), max_size=40),
    maxsize=st.sampled_from([None, 0, 1, 2, 3, 8]),
    typed=st.booleans(),
)
def test_same_hits_misses_and_results_as_lru_cache(
    sequence: list[tuple[tuple[Any, ...], dict[str, Any]]], maxsize: int | None, typed: bool
) -> None:
    # Keys equal exactly when lru_cache's are (positional vs keyword, keyword order,
    # 1 vs 1.0 vs True, typed), and the "lru" policy evicts in lru_cache's order.
    _, reference_func = call_counter()
    _, our_func = call_counter()
    reference = functools.lru_cache(maxsize, typed)(reference_func)
    ours = cached(maxsize, typed, policy="lru")(our_func)
    for args, kwargs in sequence:
        assert ours(*args, **kwargs) == reference(*args, **kwargs), (args, kwargs)
        assert ours.cache_info() == reference.cache_info(), (args, kwargs)


def test_keyword_order_and_positional_vs_keyword() -> None:
    calls, func = call_counter()
    wrapper = cached(func)
    wrapper(a=1, b=2)
    wrapper(b=2, a=1)  # another key, as in lru_cache (PEP 468 order is kept)
    wrapper(1)
    wrapper(a=1)
    wrapper(1, **{})  # no keywords at all: same key as wrapper(1)
    assert len(calls) == 4
    assert wrapper.cache_info() == (1, 4, 128, 4)


def test_typed_separates_types() -> None:
    calls, func = call_counter()
    wrapper = cached(typed=True)(func)
    for value in (3, 3.0, True, 1, 1.0):
        wrapper(value)
        wrapper(x=value)
    assert len(calls) == 10
    untyped_calls, untyped_func = call_counter()
    untyped = cached(untyped_func)
    for value in ((3,), (3.0,)):  # equal tuples are one key unless typed
        untyped(value)
    assert len(untyped_calls) == 1


def test_unhashable_argument_raises_type_error() -> None:
    wrapper = cached(lambda x: x)
    with pytest.raises(TypeError, match="unhashable"):
        wrapper([1])
    assert wrapper.cache_info() == (0, 0, 128, 0)


@pytest.mark.parametrize("wait_concurrent", [False, True])
@pytest.mark.parametrize("maxsize", [None, 1, 128])
@pytest.mark.parametrize("typed", [False, True])
def test_each_argument_hashed_once_per_call(
    maxsize: int | None, typed: bool, wait_concurrent: bool
) -> None:
    wrapper = cached(maxsize, typed, wait_concurrent=wait_concurrent)(lambda *a, **k: len(a))
    first, second = Counting("a"), Counting("b")
    for round_number in range(1, 4):  # a miss, then hits
        wrapper(first, 1)
        wrapper(first, y=second)
        assert first.hashes == 2 * round_number
        assert second.hashes == round_number
    wrapper(first)  # single non-str/int argument: still hashed once
    assert first.hashes == 7
    if maxsize == 1:
        # Evicting an entry hashes nothing.
        wrapper(0)
        assert (first.hashes, second.hashes) == (7, 3)


def test_hash_and_eq_exceptions_propagate() -> None:
    class BadHash:
        def __hash__(self) -> int:
            raise ZeroDivisionError("no hash")

    class BadEq:
        def __hash__(self) -> int:
            return 1

        def __eq__(self, other: object) -> bool:
            raise ArithmeticError("no eq")

    wrapper = cached(lambda x: x)
    with pytest.raises(ZeroDivisionError, match="no hash"):
        wrapper(BadHash())
    wrapper(BadEq())
    with pytest.raises(ArithmeticError, match="no eq"):
        wrapper(BadEq())


def test_key_function_replaces_the_default_key() -> None:
    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def by_user(user: str, *, verbose: bool = False) -> str:
        seen.append(((user,), {"verbose": verbose}))
        return user.upper()

    def key(*args: Any, **kwargs: Any) -> str:
        return str(args[0] if args else kwargs["user"]).lower()

    wrapper = cached(key=key)(by_user)
    assert wrapper("Ann") == "ANN"
    assert wrapper("ANN", verbose=True) == "ANN"  # same key
    assert wrapper(user="ann") == "ANN"
    assert len(seen) == 1
    assert wrapper.cache_info() == (2, 1, 128, 1)
    assert list(wrapper.cache.keys()) == ["ann"]


def test_key_function_receives_the_call_arguments() -> None:
    received: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def key(*args: Any, **kwargs: Any) -> int:
        received.append((args, kwargs))
        return 0

    wrapper = cached(key=key)(lambda *a, **k: None)
    wrapper(1, 2, z=3)
    assert received == [((1, 2), {"z": 3})]


def test_key_function_errors() -> None:
    def failing_key(*args: Any) -> Any:
        raise LookupError("bad key")

    with pytest.raises(LookupError, match="bad key"):
        cached(key=failing_key)(abs)(1)
    with pytest.raises(TypeError, match="unhashable"):
        cached(key=lambda *a: list(a))(abs)(1)


# ----- ways of calling -------------------------------------------------------------------------
# On CPython the wrapper is also called by vectorcall (src/vectorcall.rs), which answers
# one str/int argument without an argument tuple and packs every other call as
# `tp_call` does. Whichever way a call arrives, it must meet the same entry.


def _call_ways() -> list[tuple[str, Callable[[Any, Any], Any]]]:
    ways: list[tuple[str, Callable[[Any, Any], Any]]] = [
        ("direct", lambda f, x: f(x)),
        ("tp_call", lambda f, x: type(f).__call__(f, x)),
        ("star-args", lambda f, x: f(*[x])),
        ("empty-kwargs", lambda f, x: f(x, **{})),
        ("map", lambda f, x: next(map(f, [x]))),
        ("partial", lambda f, x: functools.partial(f, x)()),
        ("method", lambda f, x: f.__get__(x, type(x))()),
    ]
    if sys.version_info >= (3, 11):
        import operator

        ways.append(("operator.call", lambda f, x: operator.call(f, x)))
    return ways


class StrSub(str):
    pass


@pytest.mark.parametrize("wait_concurrent", [False, True])
@pytest.mark.parametrize("arg", [7, "seven", 7.0, (7,), StrSub("s")])
def test_every_way_of_calling_shares_one_entry(arg: Any, wait_concurrent: bool) -> None:
    calls_made: list[Any] = []

    @cached(maxsize=8, wait_concurrent=wait_concurrent)
    def ident(x: Any) -> Any:
        calls_made.append(x)
        return [x]

    results = [call(ident, arg) for _, call in _call_ways()]
    assert calls_made == [arg]
    assert all(r is results[0] for r in results)
    assert ident.cache_info() == CacheInfo(len(results) - 1, 1, 8, 1)
    # Like lru_cache: an exact str or int is its own key, anything else is wrapped.
    key = arg if type(arg) in (int, str) else (arg,)
    assert list(ident.cache.keys()) == [key]
    assert ident.cache.get(key) is results[0]


@pytest.mark.parametrize(
    "call",
    [
        lambda f: f(),
        lambda f: f(1, 2),
        lambda f: f(x=1),
        lambda f: f(1, y=2),
        lambda f: f(*(1, 2), **{"y": 3, "x": 4}),
    ],
)
def test_calls_that_are_not_their_own_key_match_lru_cache(call: Callable[[Any], Any]) -> None:
    def record(*args: Any, **kwargs: Any) -> Any:
        return (args, kwargs)

    ours, theirs = cached(maxsize=8)(record), functools.lru_cache(maxsize=8)(record)
    for _ in range(3):
        assert call(ours) == call(theirs)
    assert tuple(ours.cache_info()) == tuple(theirs.cache_info())


def test_vectorcall_errors_reach_the_caller_unchanged() -> None:
    @cached
    def needs_one(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="unexpected keyword argument"):
        needs_one(1, z=2)
    with pytest.raises(TypeError, match="unhashable type: 'list'"):
        needs_one([1])
    assert needs_one.cache_info().currsize == 0


@pytest.mark.skipif(
    platform.python_implementation() != "CPython",
    reason="on PyPy lru_cache is pure Python, so its recursion depth is not comparable",
)
@pytest.mark.parametrize("wait_concurrent", [False, True])
def test_runaway_recursion_stops_at_lru_caches_depth(wait_concurrent: bool) -> None:
    def runaway(decorator: Callable[[Any], Any]) -> int:
        @decorator
        def f(n: int) -> int:
            return f(n + 1)

        with pytest.raises(RecursionError):
            f(0)
        return f.cache_info().misses

    ours = runaway(cached(maxsize=None, wait_concurrent=wait_concurrent))
    assert ours == runaway(functools.lru_cache(maxsize=None))
    assert 0 < ours < sys.getrecursionlimit()


@pytest.mark.skipif(
    platform.python_implementation() != "CPython", reason="PyPy keeps tp_call (src/vectorcall.rs)"
)
def test_wrapper_type_takes_vectorcall_on_cpython() -> None:
    have_vectorcall = 1 << 11  # Py_TPFLAGS_HAVE_VECTORCALL
    assert CachedFunction.__flags__ & have_vectorcall


# ----- recursion and re-entrancy --------------------------------------------------------------


def test_recursion_counts_like_lru_cache() -> None:
    def fib_with(decorator: Any) -> Any:
        @decorator
        def fib(n: int) -> int:
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        return fib

    ours, reference = fib_with(cached(maxsize=None)), fib_with(functools.lru_cache(maxsize=None))
    assert ours(300) == reference(300)
    assert ours.cache_info() == reference.cache_info()


@pytest.mark.parametrize("wait_concurrent", [False, True])
def test_function_calling_itself_with_the_same_arguments(wait_concurrent: bool) -> None:
    # A re-entrant call for the very key being computed runs the function again, as in
    # lru_cache; with wait_concurrent it must neither deadlock nor fail.
    depth = 0

    @cached(wait_concurrent=wait_concurrent)
    def once_more(x: int) -> str:
        nonlocal depth
        depth += 1
        if depth == 1:
            return "outer saw " + once_more(x)
        return "inner"

    assert once_more(1) == "outer saw inner"
    assert once_more(1) == "outer saw inner"
    assert depth == 2


# ----- exceptions -----------------------------------------------------------------------------


@pytest.mark.parametrize("wait_concurrent", [False, True])
def test_exceptions_are_never_cached(wait_concurrent: bool) -> None:
    attempts = 0

    @cached(wait_concurrent=wait_concurrent)
    def flaky(x: int) -> int:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ValueError(f"attempt {attempts}")
        return x

    for attempt in (1, 2):
        with pytest.raises(ValueError, match=f"attempt {attempt}") as info:
            flaky(5)
        assert info.value.__context__ is None  # passed through, not chained
    assert flaky(5) == 5
    assert flaky(5) == 5
    assert attempts == 3
    assert flaky.cache_info() == (1, 3, 128, 1)


# ----- threads -----------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["tiny_lfu", "lru"])
@pytest.mark.parametrize("wait_concurrent", [False, True])
def test_thread_safety(policy: str, wait_concurrent: bool) -> None:
    @cached(maxsize=20, policy=policy, wait_concurrent=wait_concurrent)
    def triple(x: int) -> int:
        return 3 * x

    calls_per_thread = 2000

    def worker(seed: int) -> Callable[[], None]:
        def run() -> None:
            rng = random.Random(seed)
            for _ in range(calls_per_thread):
                x = rng.randrange(40)
                assert triple(x) == 3 * x

        return run

    def clearer() -> None:
        for _ in range(50):
            triple.cache_clear()
            time.sleep(0.001)

    run_threads([worker(seed) for seed in range(6)])
    info = triple.cache_info()
    assert info.hits + info.misses == 6 * calls_per_thread
    assert info.hits > 0
    assert info.currsize <= 20
    run_threads([worker(seed) for seed in range(4)] + [clearer])
    assert triple.cache_info().currsize <= 20


def _wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_wait_concurrent_runs_once_and_shares_the_result() -> None:
    callers = 8
    calls = 0

    @cached(wait_concurrent=True)
    def slow(x: int) -> list[int]:
        nonlocal calls
        calls += 1
        # Every caller counts its miss before it joins the computation, so once all
        # misses are in, all the others are waiting for this call.
        _wait_until(lambda: slow.cache_info().misses == callers)
        time.sleep(0.05)
        return [x]

    results: list[list[int]] = []
    run_threads([lambda: results.append(slow(7))] * callers)
    assert calls == 1
    assert len(results) == callers
    assert all(r is results[0] for r in results)
    assert slow.cache_info() == (0, callers, 128, 1)
    assert slow.cache.stats().load_successes == 1


def test_wait_concurrent_shares_the_exception_and_does_not_cache_it() -> None:
    callers = 6
    calls = 0

    @cached(wait_concurrent=True)
    def failing(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            _wait_until(lambda: failing.cache_info().misses == callers)
            time.sleep(0.05)
            raise KeyError("shared")
        return x

    errors: list[BaseException] = []

    def caller() -> None:
        try:
            failing(1)
        except KeyError as exc:
            errors.append(exc)

    run_threads([caller] * callers)
    assert calls == 1
    assert len(errors) == callers
    assert all(e is errors[0] for e in errors)
    assert failing(1) == 1  # not cached: the next call runs again
    assert calls == 2


def test_without_wait_concurrent_equal_calls_run_independently() -> None:
    callers = 4
    calls = 0
    barrier = threading.Barrier(callers, timeout=30)

    @cached
    def slow(x: int) -> int:
        nonlocal calls
        calls += 1
        barrier.wait()  # only passes if every caller is inside the function at once
        return x

    run_threads([lambda: slow(1)] * callers)
    assert calls == callers


# ----- caches, configuration ----------------------------------------------------------------


def test_each_decoration_has_its_own_cache() -> None:
    decorator = cached(maxsize=10)
    first = decorator(lambda x: ("first", x))
    second = decorator(lambda x: ("second", x))
    assert first.cache is not second.cache
    assert first(1) == ("first", 1)
    assert second(1) == ("second", 1)
    assert first.cache_info() == second.cache_info() == (0, 1, 10, 1)


def test_cache_is_the_underlying_moka() -> None:
    wrapper = cached(maxsize=10)(lambda x: x * 2)
    assert isinstance(wrapper.cache, Moka)
    assert wrapper.cache is wrapper.cache
    wrapper(4)
    assert wrapper.cache.items() == [(4, 8)]  # a single int argument is its own key
    wrapper.cache.set(5, "planted")
    assert wrapper(5) == "planted"
    wrapper.cache.clear()
    assert wrapper.cache_info().currsize == 0


def test_configuration_passes_through() -> None:
    def weigher(key: Any, value: str) -> int:
        return len(value)

    wrapper = cached(maxsize=50, ttl=30, tti=20.5, policy="lru", weigher=weigher)(str)
    cache = wrapper.cache
    assert (cache.capacity, cache.ttl, cache.tti, cache.policy) == (50, 30.0, 20.5, "lru")
    assert cache.weigher is weigher
    assert cached(abs).cache.policy == "tiny_lfu"
    assert cached(abs).cache.ttl is None


def test_weigher_bounds_the_total_weight() -> None:
    wrapper = cached(maxsize=10, weigher=lambda key, value: len(value))(lambda n: "x" * n)
    for n in (4, 3, 5, 2, 6, 1):
        assert wrapper(n) == "x" * n
    assert wrapper.cache.weighted_size() <= 10
    assert sum(len(v) for v in wrapper.cache.values()) <= 10


def test_ttl_expires_entries() -> None:
    _, func = call_counter()
    wrapper = cached(ttl=0.05)(func)
    assert wrapper(1) == 1
    assert wrapper(1) == 1
    time.sleep(0.3)
    assert wrapper(1) == 2
    assert wrapper.cache_info().misses == 2


def test_wait_concurrent_counts_one_miss_per_call_in_stats() -> None:
    for wait_concurrent in (False, True):
        wrapper = cached(wait_concurrent=wait_concurrent)(lambda x: x)
        for x in (1, 1, 2, 1):
            wrapper(x)
        stats = wrapper.cache.stats()
        assert (stats.hits, stats.misses) == (2, 2), wait_concurrent
        assert wrapper.cache_info()[:2] == (2, 2)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="__type_params__ is new in 3.12")
def test_type_params_are_copied() -> None:
    namespace: dict[str, Any] = {}
    exec("def first[T](x: T) -> T:\n    return x", namespace)
    wrapper = cached(namespace["first"])
    assert wrapper.__type_params__ == namespace["first"].__type_params__
