"""The HTTP application: one ASGI callable in front of the route table.

For every request: a request id (``X-Request-ID`` when the client sends a sane one, else a new
one; echoed in the response), the route from the table (:class:`~service.api.routes.Router`),
the API key when keys are configured and the route is not open, the route's one handler, then
the Prometheus metrics and one JSON access-log line, recorded *before* the answer is sent (a
scrape right after an answer always counts it). No framework routing, dependency solving or
request objects: a small scoring request costs little more than its own work.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from service.api.body import ClientGone
from service.api.keys import ApiKeys, Unauthorized
from service.api.problems import INTERNAL_ERROR, HttpProblem, Pieces, Reply, problem_reply
from service.api.routes import Match, Receive, Request, Router, Scope, Send, Services
from service.compute.lanes import TRACE
from service.losses.registry import canonical_name
from service.ops import logs, prometheus
from service.validation.errors import ServiceError

logger = logging.getLogger("service")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
#: Generated ids: 16 random hex digits per process, then a 16-digit counter (32 in all):
#: unique across workers and restarts, without a system call per request (uuid4 is one).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def request_id_of(given: str) -> str:
    """The client's request id when it is a sane one (``X-Request-ID``, or gRPC metadata
    ``x-request-id``), else a new one."""
    return given if REQUEST_ID.fullmatch(given) else f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


#: Paths under these prefixes need a key when keys are configured, unless their route is open
#: (an unknown path there is a 401 before it is a 404: keys hide which routes exist).
GUARDED_PREFIXES = ("/v1", "/v2")
Lifespan = Callable[["HttpApp"], AbstractAsyncContextManager[None]]


class HttpApp:
    """The ASGI application: ``services`` are what handlers use (``state`` for tests)."""

    def __init__(self, services: Services, lifespan: Lifespan) -> None:
        self.services = self.state = services
        self.router = Router(services.routes)
        self.keys = ApiKeys(services.settings.api_keys) if services.settings.api_keys else None
        self.lifespan = lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.serve(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.run_lifespan(receive, send)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = request_id_of(headers.get(b"x-request-id", b"").decode("latin-1"))
        path, method = scope["path"], scope["method"]
        match = self.router.match(path)
        template = match.template if match is not None else "unmatched"
        request = Request(scope, receive, headers, match.params if match else {}, self.services)
        status, sent = 500, 0
        try:
            reply = await self.dispatch(request, match, method, path)
        except ClientGone:
            reply, status = None, 499  # nginx's code for "client closed the request"
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
            reply = problem_reply(ServiceError(INTERNAL_ERROR))
        if reply is not None:
            status, sent = reply.status, len(reply.body)
        loss = request.loss or ""
        if request.loss is None and "name" in request.params:  # answered before the lookup
            loss = canonical_name(request.params["name"]) or "unknown"
        progress = request.progress
        received = progress.received if progress.received or progress.complete else None
        seconds = time.perf_counter() - started
        prometheus.observe_request(template, loss, method, status, seconds, received, sent)
        if logs.ACCESS.isEnabledFor(logging.INFO):
            logs.access(
                {
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "route": template,
                    "loss": loss or None,
                    "status": status,
                    "duration_ms": round(seconds * 1e3, 3),
                    "request_bytes": received,
                    "response_bytes": sent,
                    "client": (scope.get("client") or ("", 0))[0],
                }
            )
        if reply is not None:
            # A scoring route may answer before its body was read whole (413, 408, 503, ...):
            # the connection then closes, since the rest of the body is never read.
            unread = match is not None and match.reads_body and not request.progress.complete
            await _send(send, reply, request_id, headers, unread, head=method == "HEAD")

    async def dispatch(
        self, request: Request, match: Match | None, method: str, path: str
    ) -> Reply:
        route = (
            None if match is None else match.by_method.get("GET" if method == "HEAD" else method)
        )
        inference = path.startswith("/v2")
        guarded = route is None and path.startswith(GUARDED_PREFIXES)
        if self.keys is not None and (guarded or (route is not None and not route.open)):
            try:
                self.keys.check(request.headers)
            except Unauthorized as error:
                return problem_reply(error, inference=inference)
        if route is None:
            if match is None:
                return problem_reply(HttpProblem(404))
            allowed = ", ".join(match.allowed())
            return problem_reply(HttpProblem(405, {"Allow": allowed}))
        return await route.handler(request)

    async def run_lifespan(self, receive: Receive, send: Send) -> None:
        """ASGI lifespan: start-up, then shut-down when the server says so."""
        message = await receive()
        assert message["type"] == "lifespan.startup"
        context = self.lifespan(self)
        try:
            await context.__aenter__()
        except Exception as error:
            await send({"type": "lifespan.startup.failed", "message": repr(error)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        await context.__aexit__(None, None, None)
        await send({"type": "lifespan.shutdown.complete"})


#: Answers up to this size go out in one write, as one buffer: handed to the socket at once, they
#: are not cut if the process dies right after (a replica SIGKILLed under load once cut a 1.2 MB
#: answer after its first 1 MiB batch, and nginx cannot retry a response it has begun). Only
#: larger answers, where holding their bytes twice matters, go out batch by batch.
ONE_WRITE_BYTES = 8 << 20


async def _send(
    send: Send,
    reply: Reply,
    request_id: str,
    headers: dict[bytes, bytes],
    unread: bool,
    head: bool = False,
) -> None:
    """The reply, with the request id, and ``Connection: close`` when ``unread`` (a body that
    was not read whole is never read)."""
    response_headers = [
        (b"content-type", reply.media_type.encode()),
        (b"content-length", str(len(reply.body)).encode()),
        (b"x-request-id", request_id.encode("latin-1")),
        *((name.encode(), value.encode()) for name, value in reply.headers),
    ]
    length = headers.get(b"content-length")
    has_body = (length is not None and length != b"0") or (b"transfer-encoding" in headers)
    if has_body and unread and not any(name.lower() == "connection" for name, _ in reply.headers):
        response_headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": reply.status, "headers": response_headers})
    body = reply.body
    if isinstance(body, Pieces) and len(body) <= ONE_WRITE_BYTES:
        body = bytes(body)
    if head or not isinstance(body, Pieces):
        await send({"type": "http.response.body", "body": b"" if head else body})
        return
    for batch in body.batches():  # each sent (and awaited: backpressure), then let go
        await send({"type": "http.response.body", "body": batch, "more_body": True})
        del batch
    await send({"type": "http.response.body", "body": b""})
