"""``/v1/losses``: score one loss, and the catalogue.

Each registered loss gets its own documented operation (``POST /v1/losses/mse``, ...) with its
own request schema and example; ``POST /v1/losses/{name}`` (undocumented) serves aliases and
answers unknown names with a 404 listing close matches. Handlers read the raw body once: the
framework never parses or validates the arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import anyio.to_thread
import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from service import catalogue, codec, loss_request
from service.engine import compute
from service.errors import PROBLEM_MEDIA_TYPE
from service.registry import REGISTRY, LossSpec, lookup

JSON = "application/json"
PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
ERROR_RESPONSES = {
    status: {"description": description, "content": PROBLEM_CONTENT}
    for status, description in {
        400: "Malformed JSON.",
        404: "Unknown loss.",
        413: "Body or element count over the configured limit.",
        415: "Content-Type is not JSON.",
        422: "The request does not fit the loss (structure, shape, domain, non-finite result).",
    }.items()
}


def score(spec: LossSpec, document: dict, max_elements: int, check_booleans: bool) -> dict:
    """Validate and compute one loss: the response body."""
    request = loss_request.parse(spec, document, max_elements, check_booleans=check_booleans)
    result = compute(
        spec,
        request.inputs,
        request.params,
        request.reduction,
        with_gradient="gradient" in request.include,
    )
    return loss_request.render(result, request.include)


Work = Callable[[dict, int, bool], dict]


def _decode_and_run(work: Work, body: bytes, max_elements: int) -> bytes:
    """All the CPU work of one request, run off the event loop: decode, work, encode."""
    document = codec.decode_json_object(body)
    return codec.encode(work(document, max_elements, codec.may_hold_booleans(body)))


async def respond(request: Request, work: Work) -> Response:
    """The JSON POST pipeline shared by every route: content type, bounded body, a thread."""
    codec.check_json_content_type(request)
    settings = request.app.state.settings
    body = await codec.read_body(request, settings.max_body_bytes)
    payload = await anyio.to_thread.run_sync(
        partial(_decode_and_run, work, body, settings.max_elements),
        limiter=request.app.state.limiter,
    )
    return Response(payload, media_type=JSON)


async def handle(spec: LossSpec, request: Request) -> Response:
    return await respond(request, partial(score, spec))


def _endpoint(spec: LossSpec):
    async def endpoint(request: Request) -> Response:
        return await handle(spec, request)

    endpoint.__name__ = f"compute_{spec.name}"
    return endpoint


def _operation(spec: LossSpec) -> dict:
    model = loss_request.request_model(spec)
    return {
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"},
                    "example": dict(spec.example),
                }
            },
        }
    }


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1/losses", tags=["losses"])

    @router.get("", operation_id="list_losses", summary="The catalogue of every loss.")
    async def list_losses() -> Response:
        entries = [catalogue.entry(spec) for spec in REGISTRY.values()]
        return Response(orjson.dumps({"losses": entries, "count": len(entries)}), media_type=JSON)

    @router.get(
        "/{name}",
        operation_id="get_loss",
        summary="One loss's catalogue entry (by name or alias).",
        responses={404: ERROR_RESPONSES[404]},
    )
    async def get_loss(name: str) -> Response:
        return Response(orjson.dumps(catalogue.entry(lookup(name))), media_type=JSON)

    for spec in REGISTRY.values():
        router.add_api_route(
            f"/{spec.name}",
            _endpoint(spec),
            methods=["POST"],
            operation_id=f"compute_{spec.name}",
            summary=spec.summary,
            description=catalogue.describe(spec),
            response_model=None,
            responses={
                200: {
                    "description": "Cost, per-sample losses and gradient.",
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/LossResponse"}}},
                },
                **ERROR_RESPONSES,
            },
            openapi_extra=_operation(spec),
        )

    @router.post("/{name}", include_in_schema=False)
    async def compute_by_name(name: str, request: Request) -> Response:
        return await handle(lookup(name), request)

    return router


def install(app: FastAPI) -> None:
    app.include_router(build_router())
