"""Readiness: ``/readyz`` says 200 once warm-up (compiling every kernel, or loading it from
numba's cache: :func:`service.app.warm_all`) has finished, and 503 again while draining."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger("service")


@dataclass
class Readiness:
    ready: bool = False
    seconds: float | None = None
    error: str | None = None
    draining: bool = False  # set on SIGTERM (service.ops.shutdown): /readyz turns 503
    done: threading.Event = field(default_factory=threading.Event)  # set when warm-up ends
    #: Called (from a signal handler or a timer thread) when the drain ends and the server
    #: stops accepting: servers beside uvicorn's (gRPC) stop accepting at the same moment.
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def stopping(self) -> None:
        for callback in self.on_stop:
            callback()


def warm_up(readiness: Readiness, warm: Callable[[], int]) -> None:
    """Run ``warm`` (which returns how many losses it warmed); then ready, or failed with the
    reason in the log."""
    started = time.perf_counter()
    try:
        count = warm()
    except Exception as error:  # stay not-ready and say why in the log; never crash the server
        readiness.error = f"{type(error).__name__}: {error}"
        logger.exception("warm-up failed; /readyz stays 503")
        return
    else:
        readiness.seconds = time.perf_counter() - started
        readiness.ready = True
        logger.info("ready: %d losses warm in %.2f s", count, readiness.seconds)
    finally:
        readiness.done.set()
