"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from service.api.problems import Reply, json_reply
from service.api.routes import Request
from service.ops import prometheus


async def healthz(_request: Request) -> Reply:
    return Reply(200, b'{"status":"ok"}')


async def readyz(request: Request) -> Reply:
    readiness = request.services.readiness
    if readiness.draining:
        return json_reply({"status": "draining"}, 503)
    if readiness.ready:
        return json_reply({"status": "ready", "warmup_seconds": readiness.seconds})
    return json_reply({"status": "failed" if readiness.error else "warming up"}, 503)


async def metrics(_request: Request) -> Reply:
    body, content_type = prometheus.exposition()
    return Reply(200, body, content_type)
