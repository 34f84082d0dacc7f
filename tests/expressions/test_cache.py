"""The compiled-expression cache: bounded, least recently used first, failures not cached, one
expression built once while others do not wait for it.
"""

from __future__ import annotations

import threading

import pytest

from service.expressions import ExpressionError
from service.expressions.compiler import BuildOnceCache

# --- the cache ---------------------------------------------------------------------------------


def test_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache, built = BuildOnceCache(2), []

    def build(key):
        return lambda: built.append(key) or key

    for key in ("a", "b", "a", "c", "a", "b"):
        assert cache.get(key, build(key)) == key
    assert built == ["a", "b", "c", "b"] and len(cache) == 2


def test_failures_are_not_cached() -> None:
    cache, calls = BuildOnceCache(4), []

    def failing():
        calls.append(1)
        raise ExpressionError("no", 3)

    for _ in range(2):
        with pytest.raises(ExpressionError):
            cache.get("x", failing)
    assert len(calls) == 2 and len(cache) == 0


def test_one_expression_is_built_once_and_others_do_not_wait_for_it() -> None:
    cache, started, release, calls = BuildOnceCache(4), threading.Event(), threading.Event(), []

    def slow_build():
        calls.append("slow")
        started.set()
        assert release.wait(timeout=60)
        return "slow"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("a", slow_build)))]
    threads[0].start()
    assert started.wait(timeout=60)
    threads.append(threading.Thread(target=lambda: results.append(cache.get("a", slow_build))))
    threads[1].start()
    assert cache.get("b", lambda: "fast") == "fast"  # not blocked by the build of "a"
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    assert results == ["slow", "slow"] and calls == ["slow"]
