"""The outermost ASGI layer: what every request goes through, and the scoring fast path.

For every HTTP request: a request id (``X-Request-ID`` when the client sends a sane one, else a
new one; echoed in the response), API keys on ``/v1`` and ``/v2`` when configured (health
routes and ``/metrics`` stay open), one JSON access-log line and the Prometheus metrics.

The scoring routes (``POST /v1/losses/{name}``, ``POST /v1/evaluate``,
``POST /v2/models/{name}[/versions/{v}]/infer``) are also admitted against the worker's
in-flight bounds (503 with ``Retry-After`` past them) and served here directly by
:mod:`service.compute.pipeline`: a small request then costs no framework routing, dependency solving or
Request objects (they measured ~40 % of its time). Everything else (catalogue, metadata,
health, docs, the error pages of unknown routes and wrong methods) goes to the FastAPI app.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, NamedTuple

from fastapi import FastAPI

from service.api.body import ClientGone, Progress
from service.api.v2.routes import model as inference_model
from service.compute.pipeline import TRACE, Reply, Scoring, problem_reply
from service.losses.registry import canonical_name, lookup
from service.ops import logs
from service.ops import prometheus as monitoring
from service.ops.settings import Settings
from service.validation.errors import ServiceError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

logger = logging.getLogger("service")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
#: Generated ids: 16 random hex digits per process, then a 16-digit counter (32 in all):
#: unique across workers and restarts, without a system call per request (uuid4 is one).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/metrics"})
FIXED_PATHS = frozenset({"/v1/losses", "/v1/evaluate", "/v2", "/docs", "/redoc", "/openapi.json"})
INFER_TEMPLATES = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")


#: The headers the scoring pipeline reads, as its str names and the raw ASGI keys.
_SCORING_HEADERS = tuple(
    (name, name.encode())
    for name in (
        "content-length",
        "content-type",
        "content-encoding",
        "inference-header-content-length",
    )
)


class Unauthorized(ServiceError):
    status, slug, title = 401, "unauthorized", "Unauthorized"


class ApiKeys:
    """The configured keys, as SHA-256 digests compared in constant time.

    Hashing first makes every comparison the same length, and every key is compared (no early
    exit), so the time taken says nothing about how much of a key was right.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.digests = [hashlib.sha256(key.encode()).digest() for key in keys]

    def check(self, headers: dict[bytes, bytes]) -> None:
        given = headers.get(b"x-api-key")
        authorization = headers.get(b"authorization")
        if given is None and authorization is not None:
            scheme, _, credentials = authorization.partition(b" ")
            if scheme.lower() == b"bearer":
                given = credentials.strip()
        if given is None:
            raise Unauthorized(
                "this route needs an API key: send 'Authorization: Bearer <key>' or "
                "'X-API-Key: <key>'",
                headers={"WWW-Authenticate": 'Bearer realm="loss-service"'},
            )
        digest = hashlib.sha256(given).digest()
        matched = False
        for known in self.digests:
            matched |= hmac.compare_digest(digest, known)
        if not matched:
            raise Unauthorized(
                "the API key is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="loss-service", error="invalid_token"'},
            )


class Route(NamedTuple):
    """What a path is: its template, the loss (or model) name as sent, the canonical loss name
    for metrics and logs (``"unknown"`` when it names none), and a ``/v2`` model version."""

    template: str
    name: str = ""
    loss: str = ""
    version: str | None = None


def route_of(path: str) -> Route:
    """The route of ``path``, parsed once for labels (bounded values) and for dispatch."""
    if path in OPEN_PATHS or path in FIXED_PATHS:
        return Route(path)
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "v1" and parts[2] == "losses" and parts[3]:
        return Route("/v1/losses/{name}", parts[3], canonical_name(parts[3]) or "unknown")
    if len(parts) >= 4 and parts[1] == "v2" and parts[2] == "models" and parts[3]:
        rest, version = parts[4:], None
        template = "/v2/models/{name}"
        if len(rest) >= 2 and rest[0] == "versions":
            template += "/versions/{version}"
            rest, version = rest[2:], rest[1]
        if rest in ([], ["ready"], ["infer"]):
            loss = canonical_name(parts[3]) or "unknown"
            return Route("/".join([template, *rest]), parts[3], loss, version)
    return Route("unmatched")


class Front:
    """ASGI app wrapping the FastAPI app; ``state`` is the FastAPI app's."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.state = app.state
        self.scoring: Scoring = app.state.scoring
        self.keys = ApiKeys(settings.api_keys) if settings.api_keys else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        given_id = headers.get(b"x-request-id", b"").decode("latin-1")
        if not REQUEST_ID.fullmatch(given_id):
            given_id = f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
        request_id = given_id
        path, method = scope["path"], scope["method"]
        route = route_of(path)
        exchange = Exchange(send, request_id, headers)
        try:
            reply = await self._serve(scope, receive, exchange, headers, route, method)
            if reply is not None:
                await exchange.reply(reply)
        except ClientGone:
            exchange.status = 499  # nginx's code for "client closed the request"
        except Exception as unexpected:
            # Log the trace for operators (a compute thread's came back as text); the client
            # gets no internals.
            trace = getattr(unexpected, TRACE, None)
            if trace is None:
                logger.exception("unhandled error", extra={"fields": {"request_id": request_id}})
            else:
                fields = {"request_id": request_id, "exception": trace}
                logger.error("unhandled error", extra={"fields": fields})
            del unexpected
            if not exchange.started:
                error = ServiceError("The service failed to process the request.")
                await exchange.reply(problem_reply(error))
        finally:
            seconds = time.perf_counter() - started
            monitoring.observe_request(
                route.template,
                route.loss,
                method,
                exchange.status,
                seconds,
                exchange.received,
                exchange.sent,
            )
            if logs.ACCESS.isEnabledFor(logging.INFO):
                logs.access(
                    {
                        "request_id": request_id,
                        "method": method,
                        "path": path,
                        "route": route.template,
                        "loss": route.loss or None,
                        "status": exchange.status,
                        "duration_ms": round(seconds * 1e3, 3),
                        "request_bytes": exchange.received,
                        "response_bytes": exchange.sent,
                        "client": (scope.get("client") or ("", 0))[0],
                    }
                )

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        exchange: Exchange,
        headers: dict[bytes, bytes],
        route: Route,
        method: str,
    ) -> Reply | None:
        path = scope["path"]
        inference = path.startswith("/v2")
        if (
            self.keys is not None
            and path not in OPEN_PATHS
            and (path.startswith("/v1") or inference)
        ):
            try:
                self.keys.check(headers)
            except Unauthorized as error:
                return problem_reply(error, inference=inference)
        serve = self._scoring_route(route, headers) if method == "POST" else None
        if serve is None:
            await self.app(scope, receive, exchange.wrap)
            return None
        return await serve(receive, exchange.progress)

    def _scoring_route(
        self, route: Route, headers: dict[bytes, bytes]
    ) -> Callable[[Receive, Progress], Awaitable[Reply]] | None:
        """The scoring coroutine of a POST to ``route``, or None for the FastAPI app."""
        text = {
            name: value.decode("latin-1")
            for name, key in _SCORING_HEADERS
            if (value := headers.get(key)) is not None
        }
        if route.template == "/v1/losses/{name}":
            return partial(self._loss, route.name, text)
        if route.template == "/v1/evaluate":
            return partial(self.scoring.evaluate, text)
        if route.template in INFER_TEMPLATES:
            model = partial(inference_model, route.name, route.version)
            return partial(self.scoring.infer, model, text)
        return None

    async def _loss(
        self, name: str, headers: dict[str, str], receive: Receive, progress: Progress
    ) -> Reply:
        try:
            spec = lookup(name)
        except ServiceError as error:
            return problem_reply(error)
        return await self.scoring.loss(spec, headers, receive, progress)


class Exchange:
    """One request's response side: status and sizes for the logs, the request id header, and
    ``Connection: close`` when the answer comes before the request's body was read whole."""

    def __init__(self, send: Send, request_id: str, headers: dict[bytes, bytes]) -> None:
        self.send = send
        self.request_id = request_id.encode("latin-1")
        self.status = 500
        self.started = False
        self.sent = 0
        self.progress = Progress()
        length = headers.get(b"content-length")
        self.has_body = (length is not None and length != b"0") or (b"transfer-encoding" in headers)

    @property
    def received(self) -> int | None:
        return self.progress.received if self.progress.received or self.progress.complete else None

    async def wrap(self, message: dict[str, Any]) -> None:
        """``send`` for the FastAPI app: adds the request id, notes status and size."""
        if message["type"] == "http.response.start":
            self.status, self.started = message["status"], True
            message = {
                **message,
                "headers": [*message.get("headers", ()), (b"x-request-id", self.request_id)],
            }
        elif message["type"] == "http.response.body":
            self.sent += len(message.get("body", b""))
        await self.send(message)

    async def reply(self, reply: Reply) -> None:
        headers = [
            (b"content-type", reply.media_type.encode()),
            (b"content-length", str(len(reply.body)).encode()),
            (b"x-request-id", self.request_id),
            *((name.encode(), value.encode()) for name, value in reply.headers),
        ]
        if (
            self.has_body
            and not self.progress.complete
            and not any(name.lower() == "connection" for name, _ in reply.headers)
        ):
            headers.append((b"connection", b"close"))  # the rest of the body is never read
        self.status, self.started = reply.status, True
        await self.send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await self.send({"type": "http.response.body", "body": reply.body})
        self.sent = len(reply.body)
