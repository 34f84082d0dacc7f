"""Waiting for a condition, never for a fixed time: the condition is polled at a short interval
until it holds or a deadline passes (a bound on a broken run, not a measurement)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Whether ``condition()`` held within ``timeout`` s, polled every ``interval`` s.

    The caller asserts on what it waited for (with its own message) when this returns False.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)
    return True
