"""The gRPC server: ``inference.GRPCInferenceService`` (the Open Inference Protocol), the
standard health service and server reflection, in the worker's event loop beside HTTP.

Every call goes through :meth:`InferenceService.serve`, gRPC's counterpart of
:class:`~service.api.http.HttpApp`: a request id (metadata ``x-request-id`` when sane, else
a new one; sent back in the trailing metadata), the API key when keys are configured
(``authorization: Bearer <key>`` or ``x-api-key``; ``ServerLive`` and ``ServerReady`` are open,
as ``/v2/health/*`` are), the method, then the metrics and one JSON access-log line, recorded
before the answer goes out. Errors are the service's errors as status codes
(:func:`status_code`) with the REST problem's ``detail`` as the message.

``ModelInfer`` is one more adapter on the scoring pipeline (:mod:`service.api.v2_grpc.adapter`):
the message arrives serialized and is parsed on a compute lane; it is admitted, charged to the
worker's byte budget, estimated, deadlined and cancelled (a cancelled call's task is cancelled
by grpc, which stops its work) exactly as an HTTP request. Before warm-up ends it is
UNAVAILABLE. Messages over ``LOSS_SERVICE_MAX_BODY_BYTES`` are refused by grpc from their
length prefix (RESOURCE_EXHAUSTED), before they are read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.api.http import request_id_of
from service.api.keys import ApiKeys
from service.api.problems import INTERNAL_ERROR
from service.api.routes import Services
from service.api.v2 import models
from service.api.v2_grpc import adapter
from service.api.v2_grpc import grpc_predict_v2_pb2 as pb
from service.api.v2_grpc.health import NAME as HEALTH
from service.api.v2_grpc.health import Health
from service.compute.admission import Overloaded
from service.compute.lanes import TRACE
from service.ops import logs, prometheus
from service.validation.errors import InvalidInput, ServiceError

logger = logging.getLogger("service")
SERVICE = "inference.GRPCInferenceService"
#: Concurrent calls on one connection (HTTP/2 streams); admission bounds the computing ones.
MAX_STREAMS = 128


class NotReady(ServiceError):
    status, slug, title = 503, "not-ready", "Not Ready"


_CODES = {
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_code(error: ServiceError) -> grpc.StatusCode:
    """INVALID_ARGUMENT for what REST answers 400, 415 or 422; NOT_FOUND (404);
    UNAUTHENTICATED (401); RESOURCE_EXHAUSTED past a size limit (413) or when overloaded;
    UNAVAILABLE when not ready; DEADLINE_EXCEEDED past the compute deadline."""
    if isinstance(error, InvalidInput) or error.status in (400, 415):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(error, Overloaded):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    return _CODES.get(error.status, grpc.StatusCode.INTERNAL)


class Rpc:
    """One call's facts for its metrics and log line."""

    __slots__ = ("label",)

    def __init__(self) -> None:
        self.label = adapter.Label()


Handler = Callable[[Any, Rpc], Awaitable[Any]]


def _size(message: Any) -> int:
    return len(message) if isinstance(message, bytes) else message.ByteSize()


class InferenceService:
    """``inference.GRPCInferenceService``'s six methods over the worker's services."""

    def __init__(self, services: Services) -> None:
        self.services = services
        keys = services.settings.api_keys
        self.keys = ApiKeys(keys) if keys else None

    def handler(self) -> grpc.GenericRpcHandler:
        methods = {
            "ServerLive": self._method("ServerLive", self.server_live, pb.ServerLiveRequest, True),
            "ServerReady": self._method(
                "ServerReady", self.server_ready, pb.ServerReadyRequest, True
            ),
            "ModelReady": self._method("ModelReady", self.model_ready, pb.ModelReadyRequest),
            "ServerMetadata": self._method(
                "ServerMetadata", self.server_metadata, pb.ServerMetadataRequest
            ),
            "ModelMetadata": self._method(
                "ModelMetadata", self.model_metadata, pb.ModelMetadataRequest
            ),
            # Serialized both ways: parsed and encoded on a compute lane, not on the loop.
            "ModelInfer": self._method("ModelInfer", self.model_infer, None),
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    def _method(
        self, name: str, handler: Handler, request_type: Any, open_: bool = False
    ) -> grpc.RpcMethodHandler:
        rpc = f"{SERVICE}/{name}"
        behaviour = partial(self.serve, rpc, handler, open_)
        if request_type is None:
            return grpc.unary_unary_rpc_method_handler(behaviour)
        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=request_type.FromString,
            response_serializer=_serialize,
        )

    async def serve(
        self,
        rpc: str,
        handler: Handler,
        open_: bool,
        request: Any,
        context: grpc.aio.ServicerContext,
    ) -> Any:
        started = time.perf_counter()
        metadata = {
            key.lower().encode(): value if isinstance(value, bytes) else value.encode()
            for key, value in context.invocation_metadata() or ()
        }
        request_id = request_id_of(metadata.get(b"x-request-id", b"").decode("latin-1"))
        call = Rpc()
        received = _size(request)
        code, detail, response = grpc.StatusCode.OK, "", None
        try:
            if not open_ and self.keys is not None:
                self.keys.check(metadata)
            response = await handler(request, call)
        except ServiceError as error:
            code, detail = status_code(error), error.detail
        except asyncio.CancelledError:
            self._record(rpc, call, "CANCELLED", started, received, 0, request_id, context)
            raise
        except Exception as unexpected:
            trace = getattr(unexpected, TRACE, None)
            fields = {"request_id": request_id, "rpc": rpc}
            if trace is None:
                logger.exception("unhandled error", extra={"fields": fields})
            else:
                logger.error("unhandled error", extra={"fields": {**fields, "exception": trace}})
            del unexpected
            code, detail = grpc.StatusCode.INTERNAL, INTERNAL_ERROR
        del request
        sent = 0 if response is None else _size(response)
        self._record(rpc, call, code.name, started, received, sent, request_id, context)
        trailing = (("x-request-id", request_id),)
        if code is not grpc.StatusCode.OK:
            await context.abort(code, detail, trailing)
        context.set_trailing_metadata(trailing)
        return response

    @staticmethod
    def _record(
        rpc: str,
        call: Rpc,
        code: str,
        started: float,
        received: int,
        sent: int,
        request_id: str,
        context: grpc.aio.ServicerContext,
    ) -> None:
        seconds = time.perf_counter() - started
        loss = call.label.loss
        prometheus.observe_rpc(rpc, loss, code, seconds, received, sent)
        if logs.ACCESS.isEnabledFor(logging.INFO):
            logs.access(
                {
                    "request_id": request_id,
                    "protocol": "grpc",
                    "method": "POST",
                    "path": f"/{rpc}",
                    "route": f"/{rpc}",
                    "loss": loss or None,
                    "status": code,
                    "duration_ms": round(seconds * 1e3, 3),
                    "request_bytes": received,
                    "response_bytes": sent,
                    "client": context.peer(),
                }
            )

    def _ready(self) -> bool:
        readiness = self.services.readiness
        return readiness.ready and not readiness.draining

    async def server_live(self, _request: pb.ServerLiveRequest, _call: Rpc) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, _request: pb.ServerReadyRequest, _call: Rpc) -> Any:
        return pb.ServerReadyResponse(ready=self._ready())

    async def model_ready(self, request: pb.ModelReadyRequest, call: Rpc) -> Any:
        adapter.model(request.name, request.version, call.label)
        return pb.ModelReadyResponse(ready=self._ready())

    async def server_metadata(self, _request: pb.ServerMetadataRequest, _call: Rpc) -> Any:
        return pb.ServerMetadataResponse(**models.server_metadata())

    async def model_metadata(self, request: pb.ModelMetadataRequest, call: Rpc) -> Any:
        spec = adapter.model(request.name, request.version, call.label)
        metadata = models.model_metadata(spec)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[tensor(**entry) for entry in metadata["inputs"]],
            outputs=[tensor(**entry) for entry in metadata["outputs"]],
        )

    async def model_infer(self, message: bytes, call: Rpc) -> bytes:
        if not self.services.readiness.ready:
            raise NotReady(
                "the server is warming up (compiling its kernels); retry once ServerReady "
                "answers ready (or the health service SERVING)"
            )
        pipeline = self.services.pipeline
        holding = pipeline.holding()
        try:
            holding.reserve(len(message))
            heavy = len(message) >= pipeline.heavy_message_bytes
            decode = partial(adapter.decode, call.label)
            scoring = pipeline.score(decode, message, holding, heavy=heavy)
            del message  # the pipeline's job holds it until decoded
            return await scoring
        finally:
            holding.release()


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()


class GrpcServer:
    """One worker's gRPC server: started in the app's lifespan, stopped when the drain ends
    (:attr:`~service.ops.readiness.Readiness.on_stop`) or at shut-down, letting calls in
    flight finish within ``LOSS_SERVICE_GRACEFUL_TIMEOUT_SECONDS``."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.health = Health(services.readiness, (SERVICE,))
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self._stopping: asyncio.Future[None] | None = None

    async def start(self) -> int:
        """Listen on the settings' host and ``grpc_port`` (shared by the workers through
        SO_REUSEPORT when there are several); returns the port."""
        settings = self.services.settings
        options = [
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.max_concurrent_streams", MAX_STREAMS),
            ("grpc.max_connection_idle_ms", settings.keepalive_seconds * 1000),
            ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
        ]
        server = grpc.aio.server(options=options)
        server.add_generic_rpc_handlers((InferenceService(self.services).handler(),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection((SERVICE, HEALTH, reflection.SERVICE_NAME), server)
        host = settings.host
        address = (
            f"[{host}]:{settings.grpc_port}" if ":" in host else f"{host}:{settings.grpc_port}"
        )
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError as error:
            raise RuntimeError(
                f"gRPC cannot listen on {address} ({error}); free the port, choose another "
                "with --grpc-port / LOSS_SERVICE_GRPC_PORT, or set it to 0 to turn gRPC off"
            ) from None
        await server.start()
        self.server = server
        loop = asyncio.get_running_loop()

        def stop_soon() -> None:  # called from a signal handler or a timer thread
            loop.call_soon_threadsafe(self._stop_soon)

        self.services.readiness.on_stop.append(stop_soon)
        logger.info("gRPC: %s on %s port %d", SERVICE, host, self.port)
        return self.port

    def _stop_soon(self) -> None:
        if self._stopping is None and self.server is not None:
            self._stopping = asyncio.ensure_future(self._stop(self.server))

    async def _stop(self, server: grpc.aio.Server) -> None:
        self.health.closing = True  # watches end; new calls are refused (UNAVAILABLE)
        await server.stop(self.services.settings.graceful_timeout_seconds)

    async def stop(self) -> None:
        self._stop_soon()
        if self._stopping is not None:
            await self._stopping
