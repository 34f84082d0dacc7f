"""The ``/v2`` router: the Open Inference Protocol's health, metadata and inference routes.

``GET /v2``, ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2/models/{loss}``,
``GET /v2/models/{loss}/ready``, ``POST /v2/models/{loss}/infer`` (each model route also under
``/versions/1``). Errors are problem+json with the protocol's ``error`` member, and 400 for
every invalid request (:mod:`service.api.v2.errors`). As on ``/v1``, the body is read with
the size limit and all CPU work (inflate, decode, compute, encode) runs on the compute pool
(:mod:`service.compute.pipeline`, called directly by :mod:`service.api.http`). Content-Type is not consulted: the ``Inference-Header-Content-Length``
header says whether binary tensor data follows the JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from service.api.v2 import models, protocol
from service.api.v2.errors import UnknownModelVersion, problem_response
from service.api.v2.transport import HEADER_LENGTH
from service.losses.registry import LossSpec, lookup
from service.validation.errors import ServiceError

JSON = "application/json"
BINARY = "application/octet-stream"
ERRORS = {
    400: {"description": "Invalid request; problem+json with an `error` member."},
    404: {"description": "Unknown model (loss) or version."},
    413: {
        "description": "Body, decompressed body, element count or estimated work over the limit."
    },
}


class ProtocolRoute(APIRoute):
    """A route whose service errors are rendered with the protocol's ``error`` member."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as error:
                return problem_response(error)

        return handle


router = APIRouter(prefix="/v2", tags=["inference (v2)"], route_class=ProtocolRoute)


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


def model(name: str, version: str | None = None) -> LossSpec:
    """The loss served as model ``name`` (an alias resolves to it); 404 otherwise."""
    spec = lookup(name)
    if version is not None and version != models.VERSION:
        raise UnknownModelVersion(
            f"model {spec.name!r} has version {models.VERSION!r} only, got {version!r}",
            errors=[{"loc": ["path", "version"], "msg": f"unknown version {version!r}"}],
        )
    return spec


@router.get("", operation_id="v2_server_metadata", summary="Server metadata (name, extensions).")
async def server_metadata() -> Response:
    return _json(models.server_metadata())


@router.get(
    "/health/live", operation_id="v2_live", summary="Liveness: 200 once the process serves."
)
async def live() -> Response:
    return _json({"live": True})


@router.get(
    "/health/ready",
    operation_id="v2_ready",
    summary="Readiness: 200 once kernels are warm, else 503.",
)
async def ready(request: Request) -> Response:
    readiness = request.app.state.readiness
    is_ready = readiness.ready and not readiness.draining
    return _json({"ready": is_ready}, 200 if is_ready else 503)


ModelHandler = Callable[[Request, LossSpec], Awaitable[Response]]


async def _metadata(_request: Request, spec: LossSpec) -> Response:
    return _json(models.model_metadata(spec))


async def _model_ready(request: Request, spec: LossSpec) -> Response:
    readiness = request.app.state.readiness
    is_ready = readiness.ready and not readiness.draining
    return _json({"name": spec.name, "ready": is_ready}, 200 if is_ready else 503)


async def _infer(request: Request, spec: LossSpec) -> Response:
    reply = await request.app.state.scoring.infer(lambda: spec, request.headers, request.receive)
    return Response(reply.body, reply.status, dict(reply.headers), media_type=reply.media_type)


def _by_name(handler: ModelHandler) -> Callable[..., Awaitable[Response]]:
    async def endpoint(request: Request, name: str) -> Response:
        return await handler(request, model(name))

    return endpoint


def _by_name_and_version(handler: ModelHandler) -> Callable[..., Awaitable[Response]]:
    async def endpoint(request: Request, name: str, version: str) -> Response:
        return await handler(request, model(name, version))

    return endpoint


INFER_BODY = {
    "requestBody": {
        "required": True,
        "description": "An inference request (JSON), optionally followed by binary tensor data "
        f"whose start the {HEADER_LENGTH} header gives.",
        "content": {JSON: {"schema": {"type": "object"}}, BINARY: {"schema": {}}},
    }
}

ROUTES = (
    ("/models/{name}", _by_name, ""),
    ("/models/{name}/versions/{version}", _by_name_and_version, "_version"),
)
for prefix, bind, suffix in ROUTES:
    router.add_api_route(
        prefix,
        bind(_metadata),
        methods=["GET"],
        operation_id=f"v2_model_metadata{suffix}",
        summary="A loss as a model: its input and output tensors.",
        responses={404: ERRORS[404]},
    )
    router.add_api_route(
        f"{prefix}/ready",
        bind(_model_ready),
        methods=["GET"],
        operation_id=f"v2_model_ready{suffix}",
        summary="200 when the model (loss) is ready, 503 while kernels warm up.",
        responses={404: ERRORS[404]},
    )
    router.add_api_route(
        f"{prefix}/infer",
        bind(_infer),
        methods=["POST"],
        operation_id=f"v2_infer{suffix}",
        summary="Score a batch: JSON or binary tensors in, per_sample, cost, gradient out.",
        description=protocol.__doc__ or "",
        responses=ERRORS,
        openapi_extra=INFER_BODY,
    )
