"""The standard gRPC health service (``grpc.health.v1.Health``): ``Check`` and ``Watch``.

``SERVING`` once warm-up has finished, ``NOT_SERVING`` while it runs, while draining after
SIGTERM and once the server stops; so Kubernetes' native gRPC probes and ``grpc_health_probe``
follow ``/readyz``. The services known are ``""`` (the server) and the inference service;
``Check`` of another is NOT_FOUND and ``Watch`` of one answers ``SERVICE_UNKNOWN`` (both as the
health protocol says). The status is read from the worker's readiness, never copied: a watch
looks at it every :data:`WATCH_PERIOD` seconds and sends each change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.ops.readiness import Readiness

WATCH_PERIOD = 0.1  # s
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
NAME = "grpc.health.v1.Health"


class Health(health_pb2_grpc.HealthServicer):
    def __init__(self, readiness: Readiness, services: tuple[str, ...]) -> None:
        self.readiness = readiness
        self.services = ("", *services)
        self.closing = False  # set when the server stops: watches end

    def status(self, service: str) -> int:
        if service not in self.services:
            return SERVICE_UNKNOWN
        readiness = self.readiness
        serving = readiness.ready and not readiness.draining and not self.closing
        return SERVING if serving else NOT_SERVING

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        status = self.status(request.service)
        if status == SERVICE_UNKNOWN:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        sent = None
        while True:
            status = self.status(request.service)
            if status != sent:
                yield health_pb2.HealthCheckResponse(status=status)
                sent = status
            if self.closing:
                return  # the stream ends, so stopping the server does not wait for it
            await asyncio.sleep(WATCH_PERIOD)
