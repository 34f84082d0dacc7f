"""The ASGI application: the front layer around FastAPI's routers, error handlers and OpenAPI;
warm-up and the SIGTERM drain at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

import anyio.to_thread
from fastapi import FastAPI

import service.losses  # noqa: F401  (registers every loss before routes are built)
from service import __version__
from service.api import health, openapi
from service.api.http import Front
from service.api.v1 import routes_evaluate as evaluate
from service.api.v1 import routes_losses as losses
from service.api.v2 import routes as inference
from service.compute import engine
from service.compute.pipeline import Scoring
from service.ops import prometheus as monitoring
from service.ops.readiness import Readiness, warm_all, warm_up
from service.ops.settings import Settings, get_settings
from service.ops.shutdown import install_drain
from service.validation.errors import install_error_handlers

DESCRIPTION = """\
Scores model predictions against targets: per-sample losses, the weighted cost and the exact
gradient with respect to the predictions, from Numba kernels. Conventions (elements, weights,
per-sample means, merging shards with `sum` / `weight_sum`) are those of the API contract;
`GET /v1/losses` lists every loss with its formula and parameters.
"""


def create_app(settings: Settings | None = None, warm: Callable[[], int] = warm_all) -> Front:
    """The app. ``warm`` compiles the kernels at start-up (tests may pass a stand-in)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_drain(app.state.readiness, settings.drain_seconds)

        # Compile kernels in a thread so /healthz answers (and /readyz says 503) meanwhile.
        warming = asyncio.create_task(
            anyio.to_thread.run_sync(partial(warm_up, app.state.readiness, warm))
        )
        yield
        warming.cancel()
        app.state.scoring.close()
        monitoring.worker_exited()

    app = FastAPI(
        title="loss-service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.readiness = Readiness()
    app.state.scoring = Scoring(settings)
    engine.KERNEL_THREADS.value = settings.kernel_threads
    install_error_handlers(app)
    app.include_router(health.router)
    losses.install(app)
    app.include_router(evaluate.router)
    app.include_router(inference.router)
    openapi.install(app)
    return Front(app, settings)
