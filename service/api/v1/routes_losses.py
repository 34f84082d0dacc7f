"""``/v1/losses``: score one loss, and the catalogue.

Each registered loss gets its own documented operation (``POST /v1/losses/mse``, ...) with its
own request schema and example; ``POST /v1/losses/{name}`` (undocumented) serves aliases and
answers unknown names with a 404 listing close matches. The scoring itself is
:mod:`service.compute.pipeline`, which :mod:`service.api.http` calls directly; these operations document it
(and serve it when the FastAPI app runs without the front layer). The framework never parses
or validates the arrays.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from service.api.v1 import losses as loss_request
from service.compute.pipeline import Reply
from service.losses import catalogue
from service.losses.registry import REGISTRY, LossSpec, lookup
from service.validation.errors import PROBLEM_MEDIA_TYPE

JSON = "application/json"
PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
ERROR_RESPONSES = {
    status: {"description": description, "content": PROBLEM_CONTENT}
    for status, description in {
        400: "Malformed JSON.",
        404: "Unknown loss.",
        413: "Body, element count or estimated work over the configured limit "
        "(payload-too-large, work-too-large).",
        415: "Content-Type is not JSON.",
        422: "The request does not fit the loss (structure, shape, domain, non-finite result).",
    }.items()
}


def to_response(reply: Reply) -> Response:
    return Response(
        reply.body, reply.status, headers=dict(reply.headers), media_type=reply.media_type
    )


async def handle(spec: LossSpec, request: Request) -> Response:
    return to_response(await request.app.state.scoring.loss(spec, request.headers, request.receive))


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
