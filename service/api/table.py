"""The route table: every URL the service answers, its one handler, and what the rest of the
service needs to know about it (API keys, admission, metric labels, OpenAPI).

Adding a route is one entry here; adding a protocol is one adapter package whose handlers are
listed here.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from service.api import docs, health
from service.api.openapi import BINARY, JSON, NUMBER, json_body, json_object
from service.api.routes import Operation, Route
from service.api.v1 import catalogue, evaluate, losses, merge
from service.api.v2 import protocol
from service.api.v2 import routes as v2
from service.api.v2.transport import HEADER_LENGTH
from service.losses import catalogue as entries
from service.losses.registry import REGISTRY

SCORING_ERRORS = {
    "400": {"description": "Malformed JSON."},
    "404": {"description": "Unknown loss."},
    "413": {
        "description": "Body, element count or estimated work over the configured limit "
        "(payload-too-large, work-too-large)."
    },
    "415": {"description": "Content-Type is not JSON."},
    "422": {
        "description": "The request does not fit the loss (structure, shape, domain, non-finite "
        "result)."
    },
}
INFER_ERRORS = {
    "400": {"description": "Invalid request; problem+json with an `error` member."},
    "404": {"description": "Unknown model (loss) or version."},
    "413": {
        "description": "Body, decompressed body, element count or estimated work over the limit."
    },
    "415": {"description": "Unsupported Content-Encoding."},
}
STATUS = {"type": "string"}
BOOLEAN = {"type": "boolean"}
HEALTHZ = {"200": json_body("Serving.", json_object(["status"], status={"const": "ok"}))}
READYZ = {
    "200": json_body(
        "Every kernel is compiled.", json_object(["status"], status=STATUS, warmup_seconds=NUMBER)
    ),
    "503": json_body(
        "Kernels are still warming up (or the server drains).",
        json_object(["status"], status=STATUS),
    ),
}
V2_LIVE = {"200": json_body("Serving.", json_object(["live"], live=BOOLEAN))}
V2_READY = {
    "200": json_body("Ready.", json_object(["ready"], ready=BOOLEAN)),
    "503": json_body("Kernels are still warming up.", json_object(["ready"], ready=BOOLEAN)),
}
MODEL_READY = json_object(["name", "ready"], name=STATUS, ready=BOOLEAN)
UNKNOWN_LOSS = {"404": {"description": "Unknown loss."}}
UNKNOWN_MODEL = {"404": {"description": "Unknown model (loss) or version."}}
EVALUATE_DESCRIPTION = """\
Several losses on one payload, a weighted total, regularization and metrics, in one call.

Each term is validated and computed by the same engine as ``POST /v1/losses/{name}``, against
its own contract; the totals are ``cost = sum_k weight_k cost_k + regularization``,
``gradient = sum_k weight_k gradient_k`` and ``per_sample = sum_k weight_k per_sample_k``.
Regularization: ``l1 * sum|theta| + l2 * sum theta^2`` over the given parameters, with its
gradient per named parameter (the derivative of |theta| is 0 at 0)."""
EVALUATE_EXAMPLE = {
    "predictions": [[2.0, -1.0], [-0.5, 1.5]],
    "targets": [[1, 0], [0, 1]],
    "terms": [
        {"loss": "binary_cross_entropy", "weight": 1.0, "params": {"from_logits": True}},
        {"loss": "dice", "weight": 0.5, "params": {"mode": "binary", "from_logits": True}},
    ],
    "regularization": {"l1": 0.0, "l2": 1e-4, "parameters": {"dense/kernel": [[0.5, -0.2]]}},
    "metrics": [
        {"name": "accuracy", "params": {"from_logits": True}},
        {"name": "f1", "params": {"from_logits": True, "threshold": 0.5}},
        {"name": "roc_auc"},
    ],
}


MERGE_DESCRIPTION = """\
The answer POST /v1/evaluate gives for the data of several batches together, from the ``state``
each answered (``"state": true``): cost, terms, metrics, slices and worst samples, equal (to
rounding) whatever the order or grouping of the states, and the merged ``state`` (merges run
as a tree). States of different definitions are a 422 naming the first difference."""
MERGE_EXAMPLE = {"states": ["<state of shard 1>", "<state of shard 2>"]}


def _json_request(schema: str, example: Any) -> dict[str, Any]:
    content = {"schema": {"$ref": f"#/components/schemas/{schema}"}, "example": example}
    return {"required": True, "content": {JSON: content}}


def _loss_operations() -> Iterator[tuple[str, Operation]]:
    """``POST /v1/losses/{name}`` documented once per loss, with its own schema and example."""
    for spec in REGISTRY.values():
        yield (
            f"/v1/losses/{spec.name}",
            Operation(
                operation_id=f"compute_{spec.name}",
                summary=spec.summary,
                tag="losses",
                description=entries.describe(spec),
                request_body=_json_request(losses.request_model(spec).__name__, dict(spec.example)),
                responses={
                    "200": json_body(
                        "Cost, per-sample losses and gradient.",
                        {"$ref": "#/components/schemas/LossResponse"},
                    ),
                    **SCORING_ERRORS,
                },
            ),
        )


def _v2_model_routes(prefix: str, suffix: str) -> list[Route]:
    tag = "inference (v2)"
    infer_body = {
        "required": True,
        "description": "An inference request (JSON), optionally followed by binary tensor data "
        f"whose start the {HEADER_LENGTH} header gives.",
        "content": {JSON: {"schema": {"type": "object"}}, BINARY: {"schema": {}}},
    }
    infer_ok = {
        "description": "Successful Response ``application/octet-stream`` when binary outputs "
        "were asked for: the JSON response header, then the tensors; "
        "Inference-Header-Content-Length gives the JSON's length.",
        "content": {
            JSON: {"schema": {}},
            BINARY: {"schema": {"type": "string", "format": "binary"}},
        },
    }
    ready = {
        "200": json_body("The model (loss) is ready.", MODEL_READY),
        "503": json_body("Kernels are still warming up.", MODEL_READY),
        **UNKNOWN_MODEL,
    }
    return [
        Route(
            "GET",
            prefix,
            v2.model_metadata,
            Operation(
                f"v2_model_metadata{suffix}",
                "A loss as a model: its input and output tensors.",
                tag,
                responses=UNKNOWN_MODEL,
            ),
            inference=True,
        ),
        Route(
            "GET",
            f"{prefix}/ready",
            v2.model_ready,
            Operation(
                f"v2_model_ready{suffix}",
                "200 when the model (loss) is ready, 503 while kernels warm up.",
                tag,
                responses=ready,
            ),
            inference=True,
        ),
        Route(
            "POST",
            f"{prefix}/infer",
            v2.infer,
            Operation(
                f"v2_infer{suffix}",
                "Score a batch: JSON or binary tensors in, per_sample, cost, gradient out.",
                tag,
                description=protocol.__doc__ or "",
                request_body=infer_body,
                responses={"200": infer_ok, **INFER_ERRORS},
            ),
            scoring=True,
            inference=True,
        ),
    ]


def build() -> tuple[Route, ...]:
    """Every route of the service."""
    document = docs.Document()
    health_tag = "health"
    v2_tag = "inference (v2)"
    routes = [
        # --- health and operations (open) ---
        Route(
            "GET",
            "/healthz",
            health.healthz,
            Operation(
                "healthz",
                "Liveness: 200 once the process serves.",
                health_tag,
                responses=HEALTHZ,
            ),
            open=True,
        ),
        Route(
            "GET",
            "/readyz",
            health.readyz,
            Operation(
                "readyz",
                "Readiness: 503 until every kernel is compiled or loaded, then 200; 503 again "
                "once the worker is draining after SIGTERM.",
                health_tag,
                responses=READYZ,
            ),
            open=True,
        ),
        Route(
            "GET",
            "/metrics",
            health.metrics,
            Operation(
                "metrics",
                "Prometheus metrics (text exposition): requests, latency, sizes, kernel time.",
                health_tag,
                responses={
                    "200": {
                        "description": "Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            ),
            open=True,
        ),
        # --- /v1 ---
        Route(
            "GET",
            "/v1/losses",
            catalogue.list_losses,
            Operation("list_losses", "The catalogue of every loss.", "losses"),
        ),
        Route(
            "GET",
            "/v1/losses/{name}",
            catalogue.get_loss,
            Operation(
                "get_loss",
                "One loss's catalogue entry (by name or alias).",
                "losses",
                responses=UNKNOWN_LOSS,
            ),
        ),
        Route(
            "POST",
            "/v1/losses/{name}",
            losses.handle,
            Operation("compute", "Score one loss (name or alias).", "losses"),
            scoring=True,
            variants=_loss_operations,
        ),
        Route(
            "POST",
            "/v1/evaluate",
            evaluate.handle,
            Operation(
                "evaluate",
                "Several losses, regularization and metrics on one payload.",
                "evaluate",
                description=EVALUATE_DESCRIPTION,
                request_body=_json_request("EvaluateRequest", EVALUATE_EXAMPLE),
                responses={
                    "200": json_body(
                        "Totals, per-term results, regularization, metrics.",
                        {"$ref": "#/components/schemas/EvaluateResponse"},
                    ),
                    **SCORING_ERRORS,
                },
            ),
            scoring=True,
        ),
        Route(
            "POST",
            "/v1/evaluate/merge",
            merge.handle,
            Operation(
                "evaluate_merge",
                "Merge /v1/evaluate states: the answer for their data together.",
                "evaluate",
                description=MERGE_DESCRIPTION,
                request_body=_json_request("MergeRequest", MERGE_EXAMPLE),
                responses={
                    "200": json_body(
                        "What /v1/evaluate answers for the data of every state together.",
                        {"$ref": "#/components/schemas/MergeResponse"},
                    ),
                    **SCORING_ERRORS,
                },
            ),
            scoring=True,
        ),
        # --- /v2: the Open Inference Protocol ---
        Route(
            "GET",
            "/v2",
            v2.server_metadata,
            Operation("v2_server_metadata", "Server metadata (name, extensions).", v2_tag),
            inference=True,
        ),
        Route(
            "GET",
            "/v2/health/live",
            v2.live,
            Operation(
                "v2_live",
                "Liveness: 200 once the process serves.",
                v2_tag,
                responses=V2_LIVE,
            ),
            open=True,
            inference=True,
        ),
        Route(
            "GET",
            "/v2/health/ready",
            v2.ready,
            Operation(
                "v2_ready",
                "Readiness: 200 once kernels are warm, else 503.",
                v2_tag,
                responses=V2_READY,
            ),
            open=True,
            inference=True,
        ),
        *_v2_model_routes("/v2/models/{name}", ""),
        *_v2_model_routes("/v2/models/{name}/versions/{version}", "_version"),
        # --- documentation and its assets (open, not documented itself) ---
        Route("GET", "/openapi.json", partial(docs.openapi_json, document), open=True),
        Route("GET", "/docs", docs.swagger_ui, open=True),
        Route("GET", "/docs/oauth2-redirect", docs.swagger_ui_redirect, open=True),
        Route("GET", f"{docs.ASSETS_PATH}/{{file}}", docs.docs_asset, open=True),
        Route("GET", "/redoc", docs.redoc, open=True),
        Route("GET", docs.REDOC_LOGO_PATH, docs.redoc_logo, open=True),
    ]
    document.routes = tuple(routes)
    return document.routes
