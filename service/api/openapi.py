"""OpenAPI: FastAPI's own document, completed so that it tells the truth about every response.

Loss routes read the raw body (fast path), so FastAPI cannot see their models; this module
registers them under ``components.schemas``: each loss's ``<Name>Request`` (with its params
model), ``LossResponse``, ``EvaluateResponse`` and ``Problem``. It then amends what FastAPI
cannot know (``tests/test_fuzz_openapi.py`` holds every response to the document):

- every error is ``application/problem+json`` (FastAPI's default 422 says
  ``application/json`` with its own body, which this service never sends);
- ``/v2`` errors carry the protocol's ``error`` member, and an infer call may answer 415 (an
  unsupported ``Content-Encoding``) or binary tensor data (``application/octet-stream``);
- every ``/v1`` and ``/v2`` operation other than health may answer 401 (API keys configured,
  with ``WWW-Authenticate``); the scoring ones (the POSTs) also 503 when the worker sheds load
  (with ``Retry-After``), 408 when the body stalls and 504 past the compute deadline, as
  :mod:`service.compute.pipeline` decides;
- the health routes' and ``/metrics``' bodies, and ``/v1/evaluate``'s response schema.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from service.api.v1 import losses as loss_request
from service.api.v1.evaluate import EvaluateRequest
from service.losses.registry import REGISTRY
from service.validation.errors import PROBLEM_MEDIA_TYPE

JSON = "application/json"
BINARY = "application/octet-stream"
HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


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


class InferenceProblem(Problem):
    """A ``/v2`` error: problem details plus the Open Inference Protocol's ``error`` member."""

    error: str = Field(description="The message (what tritonclient and KServe clients read).")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str, schema: str = "Problem", **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": _ref(schema)}},
    }
    if headers:
        response["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


NUMBER_ARRAY = loss_request.NUMBER_ARRAY_SCHEMA
NUMBER = {"type": "number"}
NUMBERS = {"type": "array", "items": NUMBER}

# The regularization's gradient has the shape of what was sent: one number, one array, or an
# object of named numbers or arrays.
PARAMETER_VALUE = {"anyOf": [NUMBER, NUMBER_ARRAY]}
EVALUATE_RESPONSE: dict[str, Any] = {
    "title": "EvaluateResponse",
    "description": "The response of POST /v1/evaluate; ``include`` may leave out the totals "
    "``cost``, ``per_sample`` and ``gradient``.",
    "type": "object",
    "required": ["reduction", "count", "terms", "regularization", "metrics"],
    "properties": {
        "reduction": {"enum": ["mean", "sum"]},
        "cost": {**NUMBER, "description": "sum_k weight_k cost_k + regularization value."},
        "per_sample": {**NUMBERS, "description": "sum_k weight_k per_sample_k."},
        "gradient": {**NUMBER_ARRAY, "description": "sum_k weight_k gradient_k."},
        "count": {"type": "integer", "description": "Number of samples N."},
        "terms": {
            "type": "object",
            "description": "Each term by its label (default: the loss name as given).",
            "additionalProperties": {
                "type": "object",
                "required": ["loss", "weight", "cost", "sum", "weight_sum", "extras"],
                "properties": {
                    "loss": {"type": "string", "description": "Canonical name of the loss."},
                    "weight": NUMBER,
                    "cost": NUMBER,
                    "per_sample": NUMBERS,
                    "sum": NUMBER,
                    "weight_sum": NUMBER,
                    "extras": {"type": "object"},
                },
            },
        },
        "regularization": {
            "type": "object",
            "required": ["value"],
            "properties": {
                "l1": NUMBER,
                "l2": NUMBER,
                "value": {**NUMBER, "description": "l1 sum|theta| + l2 sum theta^2."},
                "gradient": {
                    "anyOf": [
                        PARAMETER_VALUE,
                        {"type": "object", "additionalProperties": PARAMETER_VALUE},
                    ]
                },
            },
        },
        "metrics": {
            "type": "object",
            "description": "Each requested metric by name.",
            "additionalProperties": NUMBER,
        },
    },
}


def _json_body(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _object(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


STATUS = {"type": "string"}
BOOLEAN = {"type": "boolean"}
HEALTH_RESPONSES: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("get", "/healthz"): {
        "200": _json_body("Serving.", _object(["status"], status={"const": "ok"}))
    },
    ("get", "/readyz"): {
        "200": _json_body(
            "Every kernel is compiled.", _object(["status"], status=STATUS, warmup_seconds=NUMBER)
        ),
        "503": _json_body(
            "Kernels are still warming up (or the server drains).",
            _object(["status"], status=STATUS),
        ),
    },
    ("get", "/v2/health/live"): {"200": _json_body("Serving.", _object(["live"], live=BOOLEAN))},
    ("get", "/v2/health/ready"): {
        "200": _json_body("Ready.", _object(["ready"], ready=BOOLEAN)),
        "503": _json_body("Kernels are still warming up.", _object(["ready"], ready=BOOLEAN)),
    },
}
MODEL_READY = _object(["name", "ready"], name=STATUS, ready=BOOLEAN)


def _operations(document: dict[str, Any]):
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _guarded(path: str) -> bool:
    """Routes that need an API key when keys are configured (service/front.py)."""
    return path.startswith(("/v1", "/v2")) and path not in HEALTH_PATHS


def _amend(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    schemas["EvaluateResponse"] = EVALUATE_RESPONSE
    # A regularization parameter may be a single number as well as an array (the service
    # reads both: service/evaluate.py ``_parameter_array``); the model's schema says array only.
    regularization = schemas.get("Regularization", {}).get("properties", {})
    if "parameters" in regularization:
        regularization["parameters"] = {
            "anyOf": [
                PARAMETER_VALUE,
                {"type": "object", "additionalProperties": PARAMETER_VALUE},
                {"type": "null"},
            ],
            "default": None,
            "description": "One number, a flat array, or an object of named numbers or arrays "
            "of any shape (a model's layers).",
        }
    document.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "LOSS_SERVICE_API_KEYS"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    for path, method, operation in _operations(document):
        responses = operation.setdefault("responses", {})
        v2 = path.startswith("/v2")
        error_schema = "InferenceProblem" if v2 else "Problem"
        if responses.get("422", {}).get("description") == "Validation Error":
            # FastAPI's own 422 for path parameters: they are plain strings, it cannot happen.
            del responses["422"]
        for status, response in list(responses.items()):
            if status.startswith("4"):
                responses[status] = _problem(response.get("description", ""), error_schema)
        if (method, path) in HEALTH_RESPONSES:
            responses.update(HEALTH_RESPONSES[method, path])
        if path.endswith("/ready") and v2 and path not in HEALTH_PATHS:
            responses["200"] = _json_body("The model (loss) is ready.", MODEL_READY)
            responses["503"] = _json_body("Kernels are still warming up.", MODEL_READY)
        if path == "/v1/evaluate":
            responses["200"]["content"] = {JSON: {"schema": _ref("EvaluateResponse")}}
        if v2 and path.endswith("/infer"):
            responses["415"] = _problem("Unsupported Content-Encoding.", error_schema)
            ok = responses.setdefault("200", {"description": "The outputs."})
            ok.setdefault("content", {}).setdefault(JSON, {"schema": {"type": "object"}})
            ok["content"][BINARY] = {
                "schema": {"type": "string", "format": "binary"},
            }
            ok["description"] += (
                " ``application/octet-stream`` when binary outputs were asked for: the JSON "
                "response header, then the tensors; Inference-Header-Content-Length gives "
                "the JSON's length."
            )
        if path == "/metrics" and method == "get":
            responses["200"] = {
                "description": "Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        if _guarded(path):
            operation["security"] = [{}, {"bearer": []}, {"apiKey": []}]
            responses["401"] = _problem(
                "API keys are configured (LOSS_SERVICE_API_KEYS) and the request has none "
                "or a wrong one; send Authorization: Bearer <key> or X-API-Key: <key>.",
                error_schema,
                **{"WWW-Authenticate": "Bearer (the scheme to authenticate with)."},
            )
        if _guarded(path) and method == "post":
            responses["503"] = _overload(error_schema)
            responses["408"] = _problem(
                "The body stalled or arrived too slowly (LOSS_SERVICE_BODY_TIMEOUT_SECONDS, "
                "LOSS_SERVICE_BODY_MIN_BYTES_PER_SECOND); the connection closes.",
                error_schema,
            )
            responses["504"] = _problem(
                "The computation passed its deadline (LOSS_SERVICE_COMPUTE_TIMEOUT_SECONDS) "
                "and was stopped.",
                error_schema,
            )
        elif "503" in responses and PROBLEM_MEDIA_TYPE in responses["503"].get("content", {}):
            # Only the scoring routes are shed under load (service/front.py); a route that
            # never answers an overload 503 keeps only its own (readiness) 503, if any.
            del responses["503"]
    _drop_unused_schemas(document, ("HTTPValidationError", "ValidationError"))


def _overload(schema: str) -> dict[str, Any]:
    return _problem(
        "Overloaded: too many requests or body bytes in flight in this worker "
        "(LOSS_SERVICE_MAX_IN_FLIGHT, LOSS_SERVICE_MAX_IN_FLIGHT_BYTES); retry after "
        "Retry-After seconds.",
        schema,
        **{"Retry-After": "Seconds to wait before retrying."},
    )


def _drop_unused_schemas(document: dict[str, Any], names: tuple[str, ...]) -> None:
    text = json.dumps(document["paths"])
    schemas = document["components"]["schemas"]
    for name in names:
        if f"#/components/schemas/{name}" not in text:
            schemas.pop(name, None)


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
            InferenceProblem,
            *(loss_request.request_model(spec) for spec in REGISTRY.values()),
        ]
        _, schemas = models_json_schema(
            [(model, "validation") for model in models],
            ref_template="#/components/schemas/{model}",
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(schemas.get("$defs", {}))
        _amend(document)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
