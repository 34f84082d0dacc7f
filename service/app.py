"""The composition root: the HTTP application built from the settings, the route table and
the scoring pipeline, with warm-up, the SIGTERM drain and the gRPC server (same event loop,
same pipeline) at start-up.

Layers, each importing only those below it (``ops`` beside them all, importing none)::

    api          adapters (v1 JSON, v2 REST, v2 gRPC), route table, problems, OpenAPI, HTTP, JSON codec
    compute      pipeline, lanes, admission, engine, evaluation, regularization, work, deadline
    losses       registry, one record per loss;   expressions (custom);   scores (metrics)
    validation   structure, shape contracts, domain checks, errors
    reduction    weights, means, cost, the chain rule's scale
    kernels      @njit element losses and derivatives
    ops          settings, logs, Prometheus, readiness, shutdown, memory
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

import anyio.to_thread
import numpy as np

import service.losses  # noqa: F401  (registers every loss before routes are built)
from service.api import jsonread, table
from service.api.http import HttpApp
from service.api.routes import Services
from service.api.v1.losses import parse
from service.api.v2_grpc.server import GrpcServer
from service.compute.engine import compute
from service.compute.pipeline import Pipeline
from service.kernels.stable import sigmoids
from service.losses.registry import REGISTRY
from service.ops import cpu, prometheus
from service.ops.memory import tune_allocator
from service.ops.readiness import Readiness, warm_up
from service.ops.settings import Settings, get_settings
from service.ops.shutdown import install_drain


def warm_all() -> int:
    """Compile (or load) the JSON reader's kernels, then run every loss's example with and
    without the gradient; returns the number of losses warmed."""
    jsonread.warm()
    sigmoids(np.zeros(2))  # the metrics' from_logits
    for spec in REGISTRY.values():
        request = parse(spec, dict(spec.example), max_elements=10**6)
        for reduction in ("mean", "sum"):
            compute(spec, request.inputs, request.params, reduction, with_gradient=True)
        compute(spec, request.inputs, request.params, "mean", with_gradient=False)
    return len(REGISTRY)


def create_app(settings: Settings | None = None, warm: Callable[[], int] = warm_all) -> HttpApp:
    """The app. ``warm`` compiles the kernels at start-up (tests may pass a stand-in)."""
    settings = settings or get_settings()
    tune_allocator()  # large buffers reused; freed memory returned when the lanes are idle
    cpu.log_choice()  # which CPU level's kernel cache (an image's; nothing in a checkout)

    @asynccontextmanager
    async def lifespan(app: HttpApp) -> AsyncIterator[None]:
        readiness = app.services.readiness
        install_drain(readiness, settings.drain_seconds)
        # gRPC in the same event loop, sharing the pipeline (admission, lanes) with HTTP.
        grpc_server = GrpcServer(app.services) if settings.grpc_port else None
        if grpc_server is not None:
            await grpc_server.start()
        # Compile kernels in a thread so /healthz answers (and /readyz says 503) meanwhile.
        warming = asyncio.create_task(anyio.to_thread.run_sync(partial(warm_up, readiness, warm)))
        yield
        warming.cancel()
        if grpc_server is not None:
            await grpc_server.stop()
        app.services.pipeline.close()
        prometheus.worker_exited()

    services = Services(settings, Readiness(), Pipeline(settings), table.build())
    return HttpApp(services, lifespan)
