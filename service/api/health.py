"""Liveness and readiness."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from service.ops import prometheus as monitoring

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", summary="Liveness: 200 once the process serves.")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Readiness: 503 until every kernel is compiled or loaded, then 200; "
    "503 again once the worker is draining after SIGTERM.",
    responses={503: {"description": "Kernels are still warming up."}},
)
async def readyz(request: Request) -> Response:
    readiness = request.app.state.readiness
    if readiness.draining:
        body = {"status": "draining"}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    if readiness.ready:
        body = {"status": "ready", "warmup_seconds": readiness.seconds}
        return Response(orjson.dumps(body), media_type="application/json")
    body = {"status": "failed" if readiness.error else "warming up"}
    return Response(orjson.dumps(body), status_code=503, media_type="application/json")


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics (text exposition): requests, latency, sizes, kernel time.",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    body, content_type = monitoring.exposition()
    return Response(body, headers={"Content-Type": content_type})
