"""Prometheus metrics, in base units (seconds, bytes), served at ``GET /metrics``.

With several workers (``--workers`` > 1) each is its own process: ``python -m service`` then
points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start, every worker
writes its samples there, and ``/metrics`` (whichever worker answers) aggregates them all.
Label values are bounded: route templates, canonical loss names, methods and status codes.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from service import __version__

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
SIZE_BUCKETS = tuple(float(256 * 4**k) for k in range(12))  # 256 B ... 1 GiB

REQUESTS = Counter(
    "loss_service_requests",
    "HTTP requests by route template, loss, method and status.",
    ["route", "loss", "method", "status"],
)
LATENCY = Histogram(
    "loss_service_request_duration_seconds",
    "Time from the request's arrival to the end of its response.",
    ["route", "loss"],
    buckets=LATENCY_BUCKETS,
)
REQUEST_SIZE = Histogram(
    "loss_service_request_size_bytes", "Request body size.", ["route"], buckets=SIZE_BUCKETS
)
RESPONSE_SIZE = Histogram(
    "loss_service_response_size_bytes", "Response body size.", ["route"], buckets=SIZE_BUCKETS
)
RPCS = Counter(
    "loss_service_grpc_requests",
    "gRPC calls by method, loss (model) and gRPC status code.",
    ["rpc", "loss", "code"],
)
RPC_LATENCY = Histogram(
    "loss_service_grpc_request_duration_seconds",
    "Time from a gRPC call's arrival to its answer.",
    ["rpc", "loss"],
    buckets=LATENCY_BUCKETS,
)
KERNEL = Histogram(
    "loss_service_kernel_duration_seconds",
    "Time in the loss kernel of one request (all its threads, wall clock).",
    ["loss"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "loss_service_requests_in_flight",
    "Scoring requests admitted and not yet answered.",
    multiprocess_mode="livesum",
)
BUILD = Gauge(
    "loss_service_build_info",
    "Versions of the service and of what computes its results (value 1).",
    ["version", "python", "numpy", "numba"],
    multiprocess_mode="max",
)
BUILD.labels(__version__, platform.python_version(), np.__version__, numba.__version__).set(1)


@functools.cache
def kernel_series(loss: str) -> Any:
    return KERNEL.labels(loss)


@functools.cache
def _series(route: str, loss: str, method: str, status: int) -> tuple:
    """The labelled children of one request kind (``labels()`` is slow; kinds are few)."""
    return (
        REQUESTS.labels(route, loss, method, str(status)),
        LATENCY.labels(route, loss),
        REQUEST_SIZE.labels(route),
        RESPONSE_SIZE.labels(route),
    )


def observe_request(
    route: str, loss: str, method: str, status: int, seconds: float, received: int | None, sent: int
) -> None:
    requests, latency, request_size, response_size = _series(route, loss, method, status)
    requests.inc()
    latency.observe(seconds)
    response_size.observe(sent)
    if received is not None:
        request_size.observe(received)


@functools.cache
def _rpc_series(rpc: str, loss: str, code: str) -> tuple:
    path = f"/{rpc}"  # the sizes' route label: the call's HTTP/2 path
    return (
        RPCS.labels(rpc, loss, code),
        RPC_LATENCY.labels(rpc, loss),
        REQUEST_SIZE.labels(path),
        RESPONSE_SIZE.labels(path),
    )


def observe_rpc(
    rpc: str, loss: str, code: str, seconds: float, received: int | None, sent: int
) -> None:
    """One gRPC call: ``rpc`` is ``package.Service/Method``, ``code`` the status's name."""
    calls, latency, request_size, response_size = _rpc_series(rpc, loss, code)
    calls.inc()
    latency.observe(seconds)
    response_size.observe(sent)
    if received is not None:
        request_size.observe(received)


def watch_in_flight(read: Callable[[], int]) -> bool:
    """Let the in-flight gauge read the admission count at scrape time (no work per request).
    Returns False in multiprocess mode, where each worker must write its own value: the
    caller then moves the gauge itself."""
    if os.environ.get(MULTIPROCESS_ENV):
        return False
    IN_FLIGHT.set_function(read)
    return True


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric (all workers' in multiprocess mode)."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited() -> None:
    """Drop this worker's live gauges from the aggregate (multiprocess mode)."""
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(os.getpid())
