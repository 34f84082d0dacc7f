"""The OpenAPI 3.1 document, generated from the route table and the registry.

Every documented route of :mod:`service.api.table` gives its operation (one per loss for
``POST /v1/losses/{name}``); the rules every route shares are applied here, once:

- every error is ``application/problem+json`` (``/v2`` errors add the protocol's ``error``
  member: ``InferenceProblem``);
- a route that is not open may answer 401 when API keys are configured (with
  ``WWW-Authenticate``), and declares the two security schemes;
- a scoring route may also answer 503 when the worker sheds load (with ``Retry-After``), 408
  when its body stalls and 504 past its compute deadline.

Schemas of the request models (each loss's ``<Name>Request``, ``EvaluateRequest``,
``LossResponse``, ``Problem``) come from Pydantic; ``tests/`` holds every response of the
service to this document (Schemathesis).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from service.api.routes import Operation, Route
from service.api.v1.evaluate import EvaluateRequest
from service.api.v1.fields import NUMBER_ARRAY_SCHEMA
from service.api.v1.losses import LossResponse, request_model
from service.api.v1.merge import MergeRequest
from service.losses.registry import REGISTRY
from service.validation.errors import PROBLEM_MEDIA_TYPE

JSON = "application/json"
BINARY = "application/octet-stream"


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


NUMBER_ARRAY = NUMBER_ARRAY_SCHEMA
NUMBER = {"type": "number"}
NUMBERS = {"type": "array", "items": NUMBER}

# The regularization's gradient has the shape of what was sent: one number, one array, or an
# object of named numbers or arrays.
PARAMETER_VALUE = {"anyOf": [NUMBER, NUMBER_ARRAY]}
UNDEFINED = {
    "type": "object",
    "description": "Why each null metric has no value.",
    "additionalProperties": {"type": "string"},
}
TERM_SUMS = {
    "type": "object",
    "required": ["loss", "weight", "cost", "sum", "weight_sum", "count"],
    "properties": {
        "loss": {"type": "string"},
        "weight": NUMBER,
        "cost": NUMBER,
        "sum": NUMBER,
        "weight_sum": NUMBER,
        "count": {"type": "integer"},
    },
}
METRIC_VALUES = {"type": "object", "additionalProperties": {"anyOf": [NUMBER, {"type": "null"}]}}
SLICE = {
    "type": "object",
    "required": ["count", "weight_sum", "cost", "terms", "metrics"],
    "properties": {
        "count": {"type": "integer"},
        "weight_sum": NUMBER,
        "cost": NUMBER,
        "terms": {"type": "object", "additionalProperties": TERM_SUMS},
        "metrics": METRIC_VALUES,
        "undefined": UNDEFINED,
    },
}
WORST = {
    "type": "array",
    "description": "With top_k: the samples of largest total per-sample loss, largest first.",
    "items": {
        "type": "object",
        "required": ["index", "value"],
        "properties": {"index": {"type": "integer"}, "value": NUMBER},
    },
}
STATE = {
    "type": "object",
    "description": "With state: the mergeable summary (opaque; POST /v1/evaluate/merge).",
}
MERGE_RESPONSE: dict[str, Any] = {
    "title": "MergeResponse",
    "type": "object",
    "required": ["reduction", "cost", "count", "terms", "metrics", "state"],
    "properties": {
        "reduction": {"enum": ["mean", "sum"]},
        "cost": NUMBER,
        "count": {"type": "integer"},
        "terms": {"type": "object", "additionalProperties": TERM_SUMS},
        "regularization": {"type": "object"},
        "metrics": METRIC_VALUES,
        "undefined": UNDEFINED,
        "groups": {"type": "object", "additionalProperties": SLICE},
        "top_k": WORST,
        "state": STATE,
    },
}
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
                    "count": {"type": "integer"},
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
            "description": "Each requested metric by name (null: no value; see undefined).",
            "additionalProperties": {"anyOf": [NUMBER, {"type": "null"}]},
        },
        "undefined": UNDEFINED,
        "groups": {
            "type": "object",
            "description": "With groups: each slice's numbers, by its label.",
            "additionalProperties": SLICE,
        },
        "top_k": WORST,
        "state": STATE,
    },
}


def json_body(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def json_object(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _overload(schema: str) -> dict[str, Any]:
    return _problem(
        "Overloaded: too many requests or body bytes in flight in this worker "
        "(LOSS_SERVICE_MAX_IN_FLIGHT, LOSS_SERVICE_MAX_IN_FLIGHT_BYTES); retry after "
        "Retry-After seconds.",
        schema,
        **{"Retry-After": "Seconds to wait before retrying."},
    )


UNAUTHORIZED = (
    "API keys are configured (LOSS_SERVICE_API_KEYS) and the request has none or a wrong one; "
    "send Authorization: Bearer <key> or X-API-Key: <key>."
)
SUCCESS = {"description": "Successful Response", "content": {JSON: {"schema": {}}}}


def operation(route: Route, path: str, spec: Operation) -> dict[str, Any]:
    """One operation object: the route's own facts, then the rules every route shares."""
    schema = "InferenceProblem" if route.inference else "Problem"
    result: dict[str, Any] = {"tags": [spec.tag], "summary": spec.summary}
    if spec.description:
        result["description"] = spec.description
    result["operationId"] = spec.operation_id
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    if names:
        result["parameters"] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "title": name.capitalize()},
            }
            for name in names
        ]
    if spec.request_body is not None:
        result["requestBody"] = spec.request_body
    responses: dict[str, Any] = {}
    for status, response in spec.responses.items():
        if status.startswith("4") and "content" not in response:
            response = _problem(response["description"], schema)
        responses[status] = response
    responses.setdefault("200", SUCCESS)
    if not route.open:
        result["security"] = [{}, {"bearer": []}, {"apiKey": []}]
        responses["401"] = _problem(
            UNAUTHORIZED,
            schema,
            **{"WWW-Authenticate": "Bearer (the scheme to authenticate with)."},
        )
    if route.scoring:
        responses["503"] = _overload(schema)
        responses["408"] = _problem(
            "The body stalled or arrived too slowly (LOSS_SERVICE_BODY_TIMEOUT_SECONDS, "
            "LOSS_SERVICE_BODY_MIN_BYTES_PER_SECOND); the connection closes.",
            schema,
        )
        responses["504"] = _problem(
            "The computation passed its deadline (LOSS_SERVICE_COMPUTE_TIMEOUT_SECONDS) "
            "and was stopped.",
            schema,
        )
    result["responses"] = dict(sorted(responses.items()))
    return result


def document(routes: Iterable[Route], title: str, version: str, description: str) -> dict[str, Any]:
    """The whole document."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.operation is None:
            continue
        variants = list(route.variants()) if route.variants else [(route.path, route.operation)]
        for path, spec in variants:
            paths.setdefault(path, {})[route.method.lower()] = operation(route, path, spec)
    models: list[type[BaseModel]] = [
        LossResponse,
        EvaluateRequest,
        MergeRequest,
        Problem,
        InferenceProblem,
        *(request_model(spec) for spec in REGISTRY.values()),
    ]
    _, schemas = models_json_schema(
        [(model, "validation") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    components = dict(schemas.get("$defs", {}))
    components["EvaluateResponse"] = EVALUATE_RESPONSE
    components["MergeResponse"] = MERGE_RESPONSE
    _regularization_parameters(components)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "LOSS_SERVICE_API_KEYS",
                },
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


def _regularization_parameters(schemas: dict[str, Any]) -> None:
    """A regularization parameter may be a single number as well as an array (the adapter reads
    both); the model's schema says array only."""
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
