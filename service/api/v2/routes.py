"""The ``/v2`` handlers: the Open Inference Protocol's health, metadata and inference routes.

``GET /v2``, ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2/models/{name}``,
``GET /v2/models/{name}/ready``, ``POST /v2/models/{name}/infer`` (each model route also under
``/versions/1``). Errors are problem+json with the protocol's ``error`` member, and 400 for
every invalid request (:mod:`service.api.problems`). Content-Type is not consulted on infer:
the ``Inference-Header-Content-Length`` header says whether binary tensor data follows the JSON.
"""

from __future__ import annotations

from functools import partial

from service.api.problems import Reply, json_reply, problem_reply
from service.api.routes import Request
from service.api.scoring import score
from service.api.v2 import models, protocol
from service.api.v2.errors import UnknownModelVersion
from service.api.v2.transport import HEADER_LENGTH
from service.losses.registry import LossSpec
from service.validation.errors import ServiceError

_HEADER_LENGTH = HEADER_LENGTH.lower().encode()


def resolve(request: Request) -> LossSpec:
    """The loss served as the path's model ``{name}`` (an alias resolves to it) at its
    ``{version}``; 404 otherwise."""
    spec = request.named_loss()
    version = request.params.get("version")
    if version is not None and version != models.VERSION:
        raise UnknownModelVersion(
            f"model {spec.name!r} has version {models.VERSION!r} only, got {version!r}",
            errors=[{"loc": ["path", "version"], "msg": f"unknown version {version!r}"}],
        )
    return spec


async def server_metadata(_request: Request) -> Reply:
    return json_reply(models.server_metadata())


async def live(_request: Request) -> Reply:
    return json_reply({"live": True})


def _ready(request: Request) -> bool:
    readiness = request.services.readiness
    return readiness.ready and not readiness.draining


async def ready(request: Request) -> Reply:
    is_ready = _ready(request)
    return json_reply({"ready": is_ready}, 200 if is_ready else 503)


async def model_metadata(request: Request) -> Reply:
    try:
        spec = resolve(request)
    except ServiceError as error:
        return problem_reply(error, inference=True)
    return json_reply(models.model_metadata(spec))


async def model_ready(request: Request) -> Reply:
    try:
        spec = resolve(request)
    except ServiceError as error:
        return problem_reply(error, inference=True)
    is_ready = _ready(request)
    return json_reply({"name": spec.name, "ready": is_ready}, 200 if is_ready else 503)


async def infer(request: Request) -> Reply:
    """Score a batch: JSON or binary tensors in, per_sample, cost, gradient out."""
    try:
        spec = resolve(request)
    except ServiceError as error:
        return problem_reply(error, inference=True)
    encoding = request.header(b"content-encoding")
    decode = partial(
        protocol.decode,
        spec,
        encoding,
        request.header(_HEADER_LENGTH),
        request.services.settings.max_body_bytes,
    )
    compressed = (encoding or "identity").strip().lower() != "identity"
    return await score(request, decode, compressed=compressed, inference=True)
