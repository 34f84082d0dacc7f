"""A scripted HTTP server in a thread on 127.0.0.1, for the client's transport behaviour only
(retries, Retry-After, round-robin, headers, errors): it answers each POST with the next reply
of its script, records what it received, and computes nothing. Numbers are checked against the
real service (tests/client/test_system.py).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class Drop:
    """Close the connection without an answer (a replica that died mid-request)."""


class Cut:
    """A 200 whose body stops short of its Content-Length, then the connection closed (a
    replica that died while it sent its answer)."""


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any


Script = list[Reply | Drop | Cut]
Responder = Callable[[Received], Reply | Drop | Cut]


class FakeService:
    def __init__(self, script: Script | None = None, otherwise: Responder | None = None) -> None:
        self.script = list(script or [])
        self.otherwise = otherwise
        self.received: list[Received] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                request = Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)
                )
                reply = owner._next(request)
                if isinstance(reply, Drop):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(reply, Cut):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b'{"state": {"n"')
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = data.encode() if isinstance(data, str) else data
                self.send_response(reply.status)
                content_type = (
                    "application/json" if reply.status < 400 else "application/problem+json"
                )
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _next(self, request: Received) -> Reply | Drop | Cut:
        with self._lock:
            self.received.append(request)
            if self.script:
                return self.script.pop(0)
        if self.otherwise is None:
            raise AssertionError(f"unexpected request {request.path}")
        return self.otherwise(request)

    def paths(self) -> list[str]:
        return [request.path for request in self.received]


@contextmanager
def serving(
    script: Script | None = None, otherwise: Responder | None = None
) -> Iterator[FakeService]:
    service = FakeService(script, otherwise)
    thread = threading.Thread(target=service.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.server.shutdown()
        service.server.server_close()
        thread.join(timeout=10)


@contextmanager
def refusing_url() -> Iterator[str]:
    """A URL whose port is bound but not listening: every connection is refused at once, and
    no other process can take the port while the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


def problem(status: int, detail: str) -> Reply:
    return Reply(
        status, {"type": "about:blank", "title": "Error", "status": status, "detail": detail}
    )


class FakeTime:
    """A clock that moves only when the transport sleeps: back-offs are recorded, not waited."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
