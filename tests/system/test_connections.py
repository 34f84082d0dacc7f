"""Connection guards (service/api/connections/) against a real ``python -m service`` on 127.0.0.1,
spoken to over raw sockets: header size limit (431), header deadline (408), the bound on open
connections, and that keep-alive and pipelining still work. The unit tests of the bound's
derivation and of which connection is closed to make room are in
tests/api/test_connection_bound.py.

Every wait is a blocking socket call with a generous timeout (a bound, not a measurement); no
test sleeps. The servers run with a 1 s header timeout, so the deadline tests take about 1 s.
"""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import pytest

from service.api.connections.bound import (
    derive_max_connections,
)
from tests.support.mse import MSE_BODY, MSE_EXPECTED
from tests.system.hostile_clients import rss_bytes
from tests.system.server import Server, clean_env, free_port, running

pytestmark = pytest.mark.system
HEADER_TIMEOUT = 1.0  # s, LOSS_SERVICE_HEADER_TIMEOUT_SECONDS of the servers below
KEEPALIVE = 3  # s, LOSS_SERVICE_KEEPALIVE_SECONDS (an int setting)
MAX_CONNECTIONS = 40
MAX_HEADER_BYTES = 65_536  # the default, LOSS_SERVICE_MAX_HEADER_BYTES
WAIT = 20.0  # s, bound on any single socket wait
MIB = 1 << 20
SLACK_FDS = 8  # files a worker may hold beyond its idle count and its connections


# ---- raw HTTP ---------------------------------------------------------------------------------


class Response(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, object]:
        assert self.headers["content-type"] == "application/problem+json", self.headers
        return json.loads(self.body)


def request(
    path: str = "/healthz",
    method: str = "GET",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One client socket and what it has read but not parsed yet."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> bool:
        """Sends ``data``; False if the server had closed the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def readable(self) -> bool:
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65_536)
        except ConnectionResetError:
            chunk = b""
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> Response:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"closed before a complete response: {self.buffer[:200]!r}"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        assert "transfer-encoding" not in headers, headers
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            assert self._fill(), "closed inside a response body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Response(int(status_line.split()[1]), headers, body)

    def closed(self) -> bool:
        """Blocks until the server closes (True) or sends more bytes (False)."""
        return not self.buffer and not self._fill()


@contextmanager
def connections(port: int, count: int = 1) -> Iterator[list[Connection]]:
    opened: list[Connection] = []
    try:
        for _ in range(count):
            opened.append(Connection(port))
        yield opened
    finally:
        for connection in opened:
            connection.close()


def fresh(port: int, data: bytes) -> Response:
    """``data`` on a new connection; the first response."""
    with connections(port) as (connection,):
        connection.send(data)
        return connection.response()


# ---- the server process -----------------------------------------------------------------------


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@contextmanager
def open_file_limit(soft: int) -> Iterator[None]:
    """This process's soft RLIMIT_NOFILE set to ``soft`` (children started inside inherit it)."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def guarded_env(**variables: str) -> dict[str, str]:
    return clean_env(
        LOSS_SERVICE_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        LOSS_SERVICE_KEEPALIVE_SECONDS=str(KEEPALIVE),
        **variables,
    )


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Server, int]]:
    """``python -m service`` with a 1 s header timeout and at most 40 connections."""
    port = free_port()
    env = guarded_env(LOSS_SERVICE_MAX_CONNECTIONS=str(MAX_CONNECTIONS))
    with running(["--port", str(port)], env) as server:
        server.wait_ready()
        yield server, port


def healthy(port: int) -> bool:
    response = fresh(port, request("/healthz", headers=(("Connection", "close"),)))
    return (response.status, json.loads(response.body)) == (200, {"status": "ok"})


# ---- still HTTP -------------------------------------------------------------------------------


def test_keep_alive_and_pipelining_still_work(served: tuple[Server, int]) -> None:
    _, port = served
    mse = request("/v1/losses/mse", "POST", body=json.dumps(MSE_BODY).encode())
    with connections(port) as (connection,):
        for _ in range(3):  # one connection, one request after another
            connection.send(request("/healthz"))
            assert connection.response().status == 200
        # Three requests in one write: three responses, in order.
        connection.send(request("/healthz") + mse + request("/readyz"))
        health, scored, ready = (connection.response() for _ in range(3))
        assert (health.status, scored.status, ready.status) == (200, 200, 200), scored.body
        assert json.loads(scored.body)["cost"] == pytest.approx(MSE_EXPECTED["cost"])
        assert json.loads(ready.body)["status"] == "ready"
        connection.send(request("/healthz", headers=(("Connection", "close"),)))
        assert connection.response().status == 200
        assert connection.closed()


def test_invalid_requests_still_get_uvicorns_400(served: tuple[Server, int]) -> None:
    _, port = served
    with connections(port) as (connection,):
        connection.send(b"NOT-HTTP\r\n\r\n")
        response = connection.response()
        assert (response.status, response.body) == (400, b"Invalid HTTP request received.")
        assert connection.closed()


def test_a_body_left_unread_by_an_early_answer_is_dropped_and_the_connection_kept(
    served: tuple[Server, int],
) -> None:
    """An unknown route answers 404 before reading the body; the rest of the body is dropped,
    then the connection serves the next request, or idles until the keep-alive timeout."""
    _, port = served
    head = b"POST /nope HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n"
    with connections(port, 2) as (reused, idle):
        for connection in (reused, idle):
            connection.send(head + b"x" * 10)
            assert connection.response().status == 404
        reused.send(b"x" * 990 + request("/healthz"))  # the rest, and the next request
        assert reused.response().status == 200
        idle.send(b"x" * 990)
        assert idle.closed()  # after KEEPALIVE s


def padded(size: int) -> bytes:
    """A GET /healthz whose request line and headers take exactly ``size`` bytes."""
    bare = request("/healthz", headers=(("X-Pad", ""),))
    return request("/healthz", headers=(("X-Pad", "p" * (size - len(bare))),))


def test_headers_up_to_the_limit_are_served_one_byte_more_is_a_431(
    served: tuple[Server, int],
) -> None:
    _, port = served
    assert len(padded(MAX_HEADER_BYTES)) == MAX_HEADER_BYTES
    with connections(port) as (connection,):
        for _ in range(2):  # each request of a kept-alive connection has the whole limit
            connection.send(padded(MAX_HEADER_BYTES))
            assert connection.response().status == 200
    assert fresh(port, padded(MAX_HEADER_BYTES + 1)).status == 431


def assert_headers_too_large(response: Response) -> None:
    assert response.status == 431
    assert response.headers["connection"] == "close"
    problem = response.problem()
    assert {key: problem[key] for key in ("type", "title", "status")} == {
        "type": "/problems/headers-too-large",
        "title": "Request Header Fields Too Large",
        "status": 431,
    }
    detail = str(problem["detail"])
    assert f"{MAX_HEADER_BYTES} bytes" in detail and "LOSS_SERVICE_MAX_HEADER_BYTES" in detail


def test_unterminated_header_is_a_431_and_memory_stays_flat(served: tuple[Server, int]) -> None:
    server, port = served
    assert fresh(port, padded(MAX_HEADER_BYTES + 1)).status == 431  # the path is warm
    before = rss_bytes(server.process.pid) / 1024
    piece = b"a" * MIB
    with connections(port) as (connection,):
        connection.send(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: ")
        answer = None
        offered = 0
        for _ in range(64):  # offer 64 MiB; the answer is read as soon as it arrives
            if not connection.send(piece):
                break
            offered += 1
            if answer is None and connection.readable():
                answer = connection.response()
        if answer is None:
            answer = connection.response()
        assert_headers_too_large(answer)
        assert connection.closed()
    growth_mib = (rss_bytes(server.process.pid) / 1024 - before) / 1024
    assert offered >= 1
    assert growth_mib <= 8, f"RSS grew by {growth_mib:.1f} MiB while {offered} MiB were offered"
    assert healthy(port)


def test_huge_request_line_is_a_431(served: tuple[Server, int]) -> None:
    _, port = served
    with connections(port) as (connection,):
        connection.send(b"GET /" + b"a" * MIB)  # no line end at all
        assert_headers_too_large(connection.response())
        assert connection.closed()


def test_many_small_headers_are_a_431(served: tuple[Server, int]) -> None:
    _, port = served
    headers = b"".join(b"X-H%d: v\r\n" % index for index in range(20_000))  # ~200 kB
    with connections(port) as (connection,):
        connection.send(b"GET /healthz HTTP/1.1\r\nHost: test\r\n" + headers + b"\r\n")
        assert_headers_too_large(connection.response())
        assert connection.closed()


def test_an_oversized_pipelined_request_is_answered_after_the_one_before(
    served: tuple[Server, int],
) -> None:
    _, port = served
    with connections(port) as (connection,):
        connection.send(request("/healthz") + b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * MIB)
        assert connection.response().status == 200
        assert_headers_too_large(connection.response())
        assert connection.closed()


# ---- header deadline --------------------------------------------------------------------------


def assert_request_timeout(response: Response, since: str) -> None:
    assert response.status == 408
    assert response.headers["connection"] == "close"
    problem = response.problem()
    assert {key: problem[key] for key in ("type", "title", "status")} == {
        "type": "/problems/request-timeout",
        "title": "Request Timeout",
        "status": 408,
    }
    detail = str(problem["detail"])
    assert since in detail and "LOSS_SERVICE_HEADER_TIMEOUT_SECONDS" in detail, detail


def test_a_stalled_request_line_is_a_408_after_the_header_timeout(
    served: tuple[Server, int],
) -> None:
    _, port = served
    with connections(port) as (connection,):
        opened = time.monotonic()
        connection.send(b"GET /heal")
        response = connection.response()  # blocks until the server gives up
        waited = time.monotonic() - opened
        assert_request_timeout(response, "after the connection opened")
        assert connection.closed()
    assert waited >= HEADER_TIMEOUT * 0.9, f"closed after {waited:.2f} s, before the deadline"


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    served: tuple[Server, int],
) -> None:
    _, port = served
    with connections(port) as (connection,):
        assert_request_timeout(connection.response(), "after the connection opened")
        assert connection.closed()


def test_an_idle_kept_alive_connection_is_left_to_the_keep_alive_timeout(
    served: tuple[Server, int],
) -> None:
    _, port = served
    with connections(port) as (connection,):
        connection.send(request("/healthz"))
        assert connection.response().status == 200
        # Idle for twice the header timeout: nothing arrives and the connection stays open.
        connection.sock.settimeout(2 * HEADER_TIMEOUT)
        with pytest.raises(TimeoutError):
            connection.sock.recv(1)
        connection.sock.settimeout(WAIT)
        connection.send(request("/healthz"))
        assert connection.response().status == 200
        # The next request's clock starts at its first byte.
        connection.send(b"GET /heal")
        assert_request_timeout(connection.response(), "after its first byte arrived")
        assert connection.closed()
    with connections(port) as (connection,):
        connection.send(request("/healthz"))
        assert connection.response().status == 200
        assert connection.closed()  # after KEEPALIVE s, silently (no 408)


# ---- the bound on open connections ------------------------------------------------------------


@contextmanager
def half_open(port: int, count: int) -> Iterator[list[Connection]]:
    """``count`` connections, each stopped in the middle of its headers."""
    with connections(port, count) as opened:
        for connection in opened:
            connection.send(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        yield opened


def test_a_flood_of_half_open_connections_never_blocks_health(served: tuple[Server, int]) -> None:
    server, port = served
    assert healthy(port)
    idle_files = open_files(server.process.pid)
    with half_open(port, 3 * MAX_CONNECTIONS) as flood:
        for _ in range(5):
            assert healthy(port)
            assert open_files(server.process.pid) <= idle_files + MAX_CONNECTIONS + SLACK_FDS
        assert flood[0].closed()  # the oldest was closed to make room, without a word


def test_at_the_open_file_limit_health_is_served_and_busy_connections_survive() -> None:
    """The review's case: open-file limit 400, max_connections derived (328), a long header
    timeout (only the bound helps), three times the bound of half-open connections."""
    soft_limit = 400
    bound = derive_max_connections(soft_limit)
    port = free_port()
    env = clean_env(LOSS_SERVICE_HEADER_TIMEOUT_SECONDS="60")
    with open_file_limit(soft_limit):
        server = Server(["--port", str(port)], env)
    try:
        server.wait_ready()
        pid = server.process.pid
        assert healthy(port)
        idle_files = open_files(pid)
        mse = json.dumps(MSE_BODY).encode()
        with connections(port, 2) as (kept_alive, uploading):
            kept_alive.send(request("/healthz"))
            assert kept_alive.response().status == 200
            uploading.send(request("/v1/losses/mse", "POST", body=mse)[:-10])  # body unfinished
            with half_open(port, 3 * bound) as flood:
                for _ in range(5):
                    assert healthy(port)
                    assert open_files(pid) <= idle_files + bound + SLACK_FDS
                assert open_files(pid) < soft_limit
                assert flood[0].closed()
                # Connections still sending headers went first: these two are served.
                kept_alive.send(request("/healthz"))
                assert kept_alive.response().status == 200
                uploading.send(mse[-10:])
                scored = uploading.response()
                assert scored.status == 200, scored.body
                assert json.loads(scored.body)["cost"] == pytest.approx(MSE_EXPECTED["cost"])
    finally:
        server.stop()
    assert "at the connection bound" in server.output()
