"""``POST /v1/evaluate``: several losses, regularization and metrics on one payload."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api.v1 import evaluate
from service.api.v1.routes_losses import ERROR_RESPONSES, JSON, to_response

EXAMPLE = {
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

router = APIRouter(tags=["evaluate"])


@router.post(
    "/v1/evaluate",
    operation_id="evaluate",
    summary="Several losses, regularization and metrics on one payload.",
    description=evaluate.__doc__ or "",
    response_model=None,
    responses={
        200: {"description": "Totals, per-term results, regularization, metrics."},
        **ERROR_RESPONSES,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {"$ref": "#/components/schemas/EvaluateRequest"},
                    "example": EXAMPLE,
                }
            },
        }
    },
)
async def evaluate_route(request: Request) -> Response:
    scoring = request.app.state.scoring
    return to_response(await scoring.evaluate(request.headers, request.receive))
