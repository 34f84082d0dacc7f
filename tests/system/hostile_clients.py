"""Hostile clients of a real server, and what they cost it, read from /proc.

Shared by tests/system/test_hostile.py, tests/system/test_connections.py and bench/hostile.py
(issue 11, the hostile-client review):

- **bodies**, built from bytes templates (a 40 MB body in milliseconds, never a Python list of
  its numbers): flat and (rows, cols) arrays of one repeated number, JSON arrays nested
  ``depth`` deep, gzip streams of many members, the expensive custom expression, ``params``
  with many unknown keys;
- **clients** on raw sockets: one request with its answer, a request whose body stalls after
  a few bytes, a request sent in full whose answer is never read (to hang up on it later);
- **measures** of the server's process tree (the process, its workers and the decode helper):
  resident memory (``VmRSS``), its peak (``VmHWM``, reset through ``clear_refs``) and CPU time
  (``utime + stime``).

Every wait is bounded by a deadline; nothing here sleeps to "wait for" something.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.soak import descendants

MiB = 1 << 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
JSON_HEADERS = {"Content-Type": "application/json"}

# ---- the server's process tree, from /proc -------------------------------------------------
# (descendants: bench/soak.py's walk of /proc, every live process below a pid)


def _status_kib(pid: int, key: str) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{key}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (summed ``VmRSS``)."""
    return sum(_status_kib(process, "VmRSS") for process in descendants(pid)) * 1024


def peak_rss_bytes(pid: int) -> int:
    """Summed peak resident memory (``VmHWM``) of ``pid`` and its descendants since their last
    :func:`reset_peak` (an upper bound of the tree's peak: the peaks need not coincide)."""
    return sum(_status_kib(process, "VmHWM") for process in descendants(pid)) * 1024


def reset_peak(pid: int) -> None:
    """Reset ``VmHWM`` to the current ``VmRSS`` in the whole tree (Linux >= 4.0)."""
    for process in descendants(pid):
        with contextlib.suppress(OSError):
            Path(f"/proc/{process}/clear_refs").write_text("5")


def peak_reset_works(pid: int) -> bool:
    """Whether this kernel lets us reset ``VmHWM`` (checked once per server)."""
    reset_peak(pid)
    return all(
        _status_kib(process, "VmHWM") <= _status_kib(process, "VmRSS") + 4096
        for process in descendants(pid)
    )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by ``pid`` and its live descendants."""
    ticks = 0
    for process in descendants(pid):
        try:
            stat = Path(f"/proc/{process}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return ticks / CLOCK_TICKS


def cpu_settles(
    pid: int, *, within: float, window: float = 0.5, tolerance: float = 0.1
) -> float | None:
    """Seconds until the tree's CPU time grew by at most ``tolerance`` s over ``window`` s of
    wall time (the work stopped), or None if that did not happen within ``within`` s."""
    started = time.monotonic()
    previous = cpu_seconds(pid)
    while time.monotonic() - started < within:
        pause(window)
        current = cpu_seconds(pid)
        if current - previous <= tolerance:
            return time.monotonic() - started - window
        previous = current
    return None


def cpu_grows(pid: int, *, by: float, within: float) -> bool:
    """Whether the tree's CPU time grows by ``by`` s within ``within`` s (work is running)."""
    started, first = time.monotonic(), cpu_seconds(pid)
    while time.monotonic() - started < within:
        if cpu_seconds(pid) - first >= by:
            return True
        pause(0.05)
    return False


def pause(seconds: float) -> None:
    """Pass ``seconds`` of wall time: the pacing of a measure, not a wait for the server."""
    select.select([], [], [], seconds)


def settled_rss(pid: int, port: int, *, at_most: int, within: float = 3.0) -> int:
    """The tree's RSS once it is at most ``at_most`` bytes, or the lowest seen in ``within`` s.

    Between samples a ``/healthz`` round trip lets the worker's event loop run (a finished
    request's clean-up is done by then); nothing else is sent, so no garbage collection is
    provoked: memory that only a collection would free stays counted.
    """
    started, lowest = time.monotonic(), rss_bytes(pid)
    while lowest > at_most and time.monotonic() - started < within:
        request(port, "GET", "/healthz", timeout=5.0)
        pause(0.1)
        lowest = min(lowest, rss_bytes(pid))
    return lowest


# ---- HTTP on raw sockets --------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the request's first byte sent to the answer's last byte read

    def json(self) -> dict:
        return orjson.loads(self.body)


class NoAnswer(Exception):
    """The server did not answer (in full) within the deadline, or hung up without answering."""


def request_bytes(
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    declared: int | None = None,
) -> bytes:
    """The request's bytes; ``declared`` is its Content-Length (default: the body's size)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if method != "GET" or body:
        lines.append(f"Content-Length: {len(body) if declared is None else declared}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock: socket.socket, deadline: float, started: float | None = None) -> Response:
    """One HTTP/1.1 answer (Content-Length framed), read by ``deadline`` (monotonic)."""
    started = time.monotonic() if started is None else started
    data = bytearray()
    head_end = -1
    length = 0
    while True:
        if head_end < 0:
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                match = re.search(rb"(?im)^content-length:\s*(\d+)\r?$", data[:head_end])
                length = int(match.group(1)) if match else 0
        if head_end >= 0 and len(data) >= head_end + 4 + length:
            break
        chunk = _receive(sock, deadline)
        if not chunk:
            raise NoAnswer(f"connection closed after {len(data)} bytes: {bytes(data[:200])!r}")
        data += chunk
    head = data[:head_end].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = bytes(data[head_end + 4 : head_end + 4 + length])
    return Response(status, headers, body, time.monotonic() - started)


def _receive(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise NoAnswer("no answer before the deadline")
    sock.settimeout(remaining)
    try:
        return sock.recv(1 << 20)
    except TimeoutError:
        raise NoAnswer("no answer before the deadline") from None
    except ConnectionResetError:
        return b""


def closes_after(sock: socket.socket, deadline: float) -> bool:
    """Whether the server closes ``sock`` (end of stream or reset) by ``deadline``."""
    try:
        while True:
            if not _receive(sock, deadline):
                return True
    except NoAnswer:
        return False


def request(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Response:
    """One request on a new connection; its answer within ``timeout`` s, or NoAnswer."""
    with connect(port, timeout) as sock:
        started = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request_bytes(method, path, body, headers))  # an early answer may cut it
        return read_response(sock, started + timeout, started)


def post_json(port: int, path: str, body: bytes, timeout: float = 30.0, **headers: str) -> Response:
    return request(port, "POST", path, body, {**JSON_HEADERS, **headers}, timeout)


class Connection:
    """One kept-alive connection for a series of requests (one at a time, no pipelining)."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.sock = connect(port, timeout)
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Response:
        started = time.monotonic()
        self.sock.sendall(request_bytes(method, path, body, headers))
        return read_response(self.sock, started + self.timeout, started)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stalled_body(port: int, path: str, declared: int, sent: bytes) -> socket.socket:
    """A POST that declares ``declared`` body bytes, sends ``sent`` of them, and stops."""
    sock = connect(port)
    sock.sendall(request_bytes("POST", path, sent, JSON_HEADERS, declared))
    return sock


def answered_yet(sock: socket.socket) -> bool:
    """Whether anything (an answer, or the end of the stream) is waiting on ``sock``."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


@dataclass
class Abandoned:
    """A request sent in full whose answer nobody reads until :meth:`hang_up`."""

    sock: socket.socket

    @classmethod
    def send(cls, port: int, path: str, body: bytes) -> Abandoned:
        sock = connect(port)
        sock.sendall(request_bytes("POST", path, body, JSON_HEADERS))
        return cls(sock)

    def hang_up(self) -> None:
        """Close at once (RST when unread data waits, FIN otherwise)."""
        with contextlib.suppress(OSError):
            self.sock.close()


# ---- bodies -----------------------------------------------------------------------------------


def flat(count: int, number: bytes = b"0.5") -> bytes:
    """``[n, n, ..., n]`` with ``count`` entries."""
    return b"[" + b",".join([number] * count) + b"]"


def matrix(rows: int, cols: int, number: bytes = b"0.5") -> bytes:
    row = flat(cols, number)
    return b"[" + b",".join([row] * rows) + b"]"


def document(**fields: bytes) -> bytes:
    """A JSON object from ready-made JSON values (bytes), in order."""
    return (
        b"{"
        + b",".join(b'"%s":%s' % (name.encode(), value) for name, value in fields.items())
        + b"}"
    )


def nested(depth: int, count: int) -> bytes:
    """``count`` arrays, each nested ``depth`` deep around one 0: ``[[[0]]],[[[0]]],...`` in
    one list. Parsed naively, each 2*depth+2 bytes become ``depth`` Python lists (~40x)."""
    unit = b"[" * depth + b"0" + b"]" * depth
    return b"[" + b",".join([unit] * count) + b"]"


def nested_of_size(depth: int, size: int) -> bytes:
    return nested(depth, max(1, size // (2 * depth + 2)))


def gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def gzip_members(first: bytes, empty_members: int) -> bytes:
    """``first`` gzipped, then ``empty_members`` empty gzip members (20 bytes each)."""
    return gzip_member(first) + gzip_member(b"") * empty_members


def expensive_expression(terms: int = 64) -> tuple[str, dict[str, float]]:
    """The review's expensive custom expression: a sum of ``terms`` sines of huge arguments,
    ``sin(p*ke299+k)`` with ke299 = 1e299 (each needs a long argument reduction): ~1.1 KB,
    ~6000x mse per entry (value and slope).

    The review wrote 95 times the same ``sin(p*ke299)``; the compiler computes a repeated
    subexpression once, so here the terms differ (``+k``). 64 is within the grammar's limits
    (at most 500 nodes; a flat sum nests a level per ``+``, so it is grouped as a tree).
    """

    def grouped(first: int, count: int) -> str:
        if count == 1:
            return f"sin(p*ke299+{first})"
        half = count // 2
        return f"({grouped(first, half)}+{grouped(first + half, count - half)})"

    return grouped(0, terms), {"ke299": 1e299}


def custom_body(count: int, terms: int = 64) -> bytes:
    """``POST /v1/losses/custom`` with the expensive expression on ``count`` entries."""
    expression, constants = expensive_expression(terms)
    params = orjson.dumps({"expression": expression, "constants": constants})
    values = flat(count)
    return document(predictions=values, targets=values, params=params)


def evaluate_body(count: int, expression_terms: int = 16, terms: int = 64) -> bytes:
    """``POST /v1/evaluate`` with ``expression_terms`` custom terms, each the expensive one."""
    expression, constants = expensive_expression(terms)
    term = {"loss": "custom", "params": {"expression": expression, "constants": constants}}
    listed = orjson.dumps([{**term, "label": f"t{k}"} for k in range(expression_terms)])
    values = flat(count)
    return document(predictions=values, targets=values, terms=listed)


def infer_body(count: int, **extra: bytes) -> bytes:
    """An OIP v2 infer request for ``mse`` with ``count`` entries of JSON data, plus ``extra``
    top-level members (ready-made JSON)."""
    data = flat(count)
    inputs = b"[%s]" % b",".join(
        b'{"name":"%s","shape":[%d],"datatype":"FP64","data":%s}' % (name, count, data)
        for name in (b"predictions", b"targets")
    )
    return document(inputs=inputs, **extra)


def unknown_params(keys: int) -> bytes:
    """``params`` of ``keys`` unknown keys (``{"k0":0,"k1":0,...}``; ~12 bytes each)."""
    return b"{" + b",".join(b'"k%d":0' % k for k in range(keys)) + b"}"


def mse_body(count: int) -> bytes:
    values = flat(count)
    return document(predictions=values, targets=values)


SMALL_MSE = mse_body(32)
