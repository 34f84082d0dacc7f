"""Graceful shutdown: on SIGTERM, ``/readyz`` turns 503 at once, the worker keeps serving for
``LOSS_SERVICE_DRAIN_SECONDS`` (so load balancers take it out of rotation), then uvicorn stops
accepting (and so does the gRPC server, through :attr:`Readiness.on_stop`), lets in-flight
requests finish (up to ``LOSS_SERVICE_GRACEFUL_TIMEOUT_SECONDS``) and
exits. A second SIGTERM skips the rest of the drain.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from service.ops.readiness import Readiness

logger = logging.getLogger("service")


def install_drain(readiness: Readiness, drain_seconds: float) -> bool:
    """Wrap the server's SIGTERM handler (uvicorn's, installed before start-up runs).

    Returns False where signals cannot be handled here (not the main thread, as under a test
    client, or no handler installed), leaving everything as it was.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    original = signal.getsignal(signal.SIGTERM)
    if not callable(original):
        return False
    uvicorn_stop: Callable[[int, FrameType | None], Any] = original

    def stop(sig: int, frame: FrameType | None) -> None:
        readiness.stopping()
        uvicorn_stop(sig, frame)

    def on_term(sig: int, frame: FrameType | None) -> None:
        if readiness.draining or drain_seconds <= 0:
            readiness.draining = True
            stop(sig, frame)
            return
        readiness.draining = True
        logger.info(
            "SIGTERM: draining for %.1f s (/readyz says 503), then finishing in-flight requests",
            drain_seconds,
        )
        timer = threading.Timer(drain_seconds, stop, (sig, frame))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_term)
    return True
