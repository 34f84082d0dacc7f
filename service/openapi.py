"""OpenAPI: FastAPI's own document plus the schemas our raw-body routes reference.

Loss routes read the raw body (fast path), so FastAPI cannot see their models; this module
registers them under ``components.schemas``: each loss's ``<Name>Request`` (with its params
model), ``LossResponse`` and ``Problem``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from service import loss_request
from service.evaluate import EvaluateRequest
from service.registry import REGISTRY


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="Where: ['body', field, index...] or ['path', ...].")
    msg: str = Field(description="What was expected and what was got.")


class Problem(BaseModel):
    """RFC 9457 problem details (media type application/problem+json)."""

    type: str = Field(description="/problems/<slug>: the kind of problem.")
    title: str
    status: int
    detail: str
    errors: list[ErrorItem] | None = None


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        models: list[type[BaseModel]] = [
            loss_request.LossResponse,
            EvaluateRequest,
            Problem,
            *(loss_request.request_model(spec) for spec in REGISTRY.values()),
        ]
        _, schemas = models_json_schema(
            [(model, "validation") for model in models],
            ref_template="#/components/schemas/{model}",
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(schemas.get("$defs", {}))
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
