"""Readiness: every kernel compiled (or loaded from numba's cache) before ``/readyz`` says 200.

Warm-up runs each registered loss's own example through the whole pipeline, so the kernels
are compiled for exactly the argument types that requests use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from service.api import jsonread
from service.api.v1.losses import parse
from service.compute.engine import compute
from service.losses.registry import REGISTRY

logger = logging.getLogger("service")


@dataclass
class Readiness:
    ready: bool = False
    seconds: float | None = None
    error: str | None = None
    draining: bool = False  # set on SIGTERM (service.ops.shutdown): /readyz turns 503
    done: threading.Event = field(default_factory=threading.Event)  # set when warm-up ends


def warm_all() -> int:
    """Compile (or load) the JSON reader's kernels, then run every loss's example with and
    without the gradient; returns the number of losses warmed."""
    jsonread.warm()
    for spec in REGISTRY.values():
        request = parse(spec, dict(spec.example), max_elements=10**6)
        for reduction in ("mean", "sum"):
            compute(spec, request.inputs, request.params, reduction, with_gradient=True)
        compute(spec, request.inputs, request.params, "mean", with_gradient=False)
    return len(REGISTRY)


def warm_up(readiness: Readiness, warm: Callable[[], int] = warm_all) -> None:
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
