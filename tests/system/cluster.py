"""Three replicas behind nginx on one machine, for tests/system/test_scaleout.py.

The same topology as docker-compose.yml: three ``python -m service`` processes, each with an
HTTP and a gRPC port free on 127.0.0.1, and Debian's nginx running ``deploy/nginx/nginx.conf``
itself, rendered for the test (tests/system/nginx_conf.py: the replica addresses instead of
Docker's DNS name, free listen ports, every writable path in a temporary directory); client
threads that loop over scoring requests through nginx; and readings of nginx's access log.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.system.nginx_conf import (
    GRPC_PORT,
    HTTP_PORT,
    NGINX_CONF,
    nginx_binary,
    nginx_build,
    render_nginx_conf,
)
from tests.system.server import clean_env, free_port

READY_TIMEOUT = 120.0  # a cold numba cache compiles every kernel (~20 s); warm is ~2 s
REQUEST_TIMEOUT = 30.0


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    timeout: float = 5.0,
    host: str = "127.0.0.1",
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def status_of(port: int, path: str) -> int | None:
    try:
        return request(port, "GET", path, timeout=2.0)[0]
    except OSError:
        return None


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path.name} missing)"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# ---- processes ------------------------------------------------------------------------------


class Process:
    """A child in its own process group, output to a file; stopped with its whole group."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.needed_sigkill = False

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.args,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL, like a crash or the OOM killer: no chance to finish anything."""
        if self.process is not None:
            self.signal_group(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 35.0) -> int | None:
        """``signum`` to the main process, SIGKILL to the group past ``timeout``."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.needed_sigkill = True
                self.signal_group(signal.SIGKILL)
                self.process.wait(timeout=10)
        self.signal_group(signal.SIGKILL)  # anything of the group left behind
        return self.process.returncode

    def wait_for_status(self, port: int, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while status_of(port, path) != 200:
            if not self.running():
                pytest.fail(f"{self.name} exited ({self.process.returncode}):\n{tail(self.log)}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{self.name}: no 200 from {path} in {timeout:.0f} s:\n{tail(self.log)}"
                )
            time.sleep(0.1)


class Replica(Process):
    def __init__(
        self, index: int, port: int, grpc_port: int, workdir: Path, **variables: str
    ) -> None:
        settings = {
            "LOSS_SERVICE_WORKERS": "1",
            "LOSS_SERVICE_KERNEL_THREADS": "1",
            "LOSS_SERVICE_COMPUTE_THREADS": "2",
            "LOSS_SERVICE_KEEPALIVE_SECONDS": "75",  # above nginx's upstream keepalive_timeout
            "LOSS_SERVICE_LOG_LEVEL": "warning",
        }
        env = clean_env(**{**settings, **variables})
        args = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
        args += ["--grpc-port", str(grpc_port)]  # as a container's LOSS_SERVICE_GRPC_PORT
        name = f"replica {index} (port {port}, gRPC {grpc_port})"
        super().__init__(name, args, env, workdir / f"replica{index}.log")
        self.port = port
        self.grpc_port = grpc_port

    def wait_ready(self) -> None:
        self.wait_for_status(self.port, "/readyz", READY_TIMEOUT)


# ---- the cluster ------------------------------------------------------------------------------


@dataclass
class Cluster:
    nginx_port: int
    nginx_grpc_port: int
    replicas: list[Replica]
    nginx: Process
    access_log: Path
    work: Path
    started: list[Process] = field(default_factory=list)

    def logs(self) -> str:
        parts = [f"--- {p.name}: {p.log}\n{tail(p.log)}" for p in [self.nginx, *self.replicas]]
        return "\n".join(parts)


def distinct_free_ports(count: int) -> list[int]:
    found: list[int] = []
    while len(found) < count:
        port = free_port()
        if port not in found:
            found.append(port)
    return found


@contextmanager
def running_cluster(
    work: Path, edit: Callable[[str], str] = lambda text: text, **replica_env: str
) -> Iterator[Cluster]:
    """nginx in front of three replicas; ``edit`` changes the rendered nginx.conf."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip(
            "nginx is not installed: `apt-get install -y nginx` (Debian/Ubuntu); "
            ".ci/run installs it when it runs as root"
        )
    version, http2 = nginx_build(binary)
    if not http2:
        pytest.skip(
            f"{binary} is built without the HTTP/2 module (--with-http_v2_module), which "
            "nginx.conf's gRPC server needs; Debian's and the official nginx have it"
        )
    ports = distinct_free_ports(8)  # HTTP and gRPC of three replicas and of nginx
    replicas = [Replica(i, ports[2 * i], ports[2 * i + 1], work, **replica_env) for i in range(3)]
    nginx_port, nginx_grpc_port = ports[6:]
    local = {  # the template's ports -> (nginx's local one, the replicas')
        HTTP_PORT: (nginx_port, [r.port for r in replicas]),
        GRPC_PORT: (nginx_grpc_port, [r.grpc_port for r in replicas]),
    }
    template = NGINX_CONF.read_text(encoding="utf-8")
    conf = work / "nginx.conf"
    conf.write_text(edit(render_nginx_conf(template, local, work, version)), encoding="utf-8")
    nginx_args = [binary, "-p", f"{work}/", "-e", "stderr", "-c", str(conf)]
    checked = subprocess.run(
        [*nginx_args, "-t"], capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, f"nginx -t refuses the rendered config:\n{checked.stderr}"
    nginx = Process("nginx", [*nginx_args, "-g", "daemon off;"], clean_env(), work / "nginx.log")
    cluster = Cluster(nginx_port, nginx_grpc_port, replicas, nginx, work / "nginx.log", work)
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        nginx.start()
        nginx.wait_for_status(nginx_port, "/nginx-health", 10)
        nginx.wait_for_status(nginx_port, "/readyz", 10)  # proxied to a replica
        yield cluster
    finally:
        for process in [nginx, *replicas]:
            process.stop(timeout=10)


# ---- requests ---------------------------------------------------------------------------------


def scoring_requests() -> list[tuple[str, bytes]]:
    """A fixed set of (path, body): several losses, small and larger, deterministic inputs."""
    rng = random.Random(7)

    def matrix(rows: int, cols: int, low: float = -3.0, high: float = 3.0) -> list[list[float]]:
        return [[round(rng.uniform(low, high), 6) for _ in range(cols)] for _ in range(rows)]

    large_p, large_y = matrix(3000, 16), matrix(3000, 16)
    # ~0.2 s of parsing and computing per request: most of the time some are in flight on
    # every replica, so the SIGKILL cuts requests off mid-way, not only idle connections.
    heavy_p, heavy_y = matrix(25000, 16), matrix(25000, 16)
    bodies = [
        (
            "/v1/losses/mse",
            {
                "predictions": [[0.5, 1.0], [3.0, 4.0]],
                "targets": [[1.0, 1.0], [2.0, 2.0]],
                "sample_weight": [1.0, 3.0],
            },
        ),
        (
            "/v1/losses/huber",
            {"predictions": matrix(64, 4), "targets": matrix(64, 4), "params": {"delta": 0.7}},
        ),
        (
            "/v1/losses/binary_cross_entropy",
            {
                "predictions": matrix(50, 3),
                "targets": [[rng.randint(0, 1) for _ in range(3)] for _ in range(50)],
                "params": {"from_logits": True},
            },
        ),
        (
            "/v1/losses/sparse_categorical_cross_entropy",
            {
                "predictions": matrix(40, 5),
                "targets": [rng.randrange(5) for _ in range(40)],
                "params": {"from_logits": True},
                "reduction": "sum",
            },
        ),
        ("/v1/losses/mae", {"predictions": large_p, "targets": large_y}),
        (
            "/v1/losses/log_cosh",
            {"predictions": heavy_p, "targets": heavy_y, "include": ["cost", "per_sample"]},
        ),
    ]
    return [(path, json.dumps(body).encode()) for path, body in bodies]


@dataclass
class Load:
    """Client threads looping over the requests through nginx, each on a keep-alive connection.

    A replica killed while it sends an answer cuts that answer: nginx has begun passing it on
    (headers and the first bytes), so it cannot send the request elsewhere, and the client
    reads fewer bytes than the Content-Length (``http.client.IncompleteRead``). No proxy that
    streams answers can hide that; the README tells clients to send such a request again
    (scoring has no side effects). The threads do so once, at once: the request goes in
    ``cut``, and its second answer counts as any other (ok, or a failure). A thread has at
    most one request in flight, so one kill cuts at most one answer per thread."""

    port: int
    requests: list[tuple[str, bytes]]
    expected: list[object]
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    #: Requests whose answer was cut short (then sent again): "path: the error".
    cut: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, count: int) -> None:
        for index in range(count):
            thread = threading.Thread(target=self._run, args=(index,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)
            assert not thread.is_alive(), "a client thread is stuck"

    def _run(self, index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        position = index
        try:
            while not self.stop.is_set():
                which = position % len(self.requests)
                position += 1
                path = self.requests[which][0]
                cut = None
                try:
                    problem = self._attempt(connection, which)
                except http.client.IncompleteRead as error:  # begun, then cut: send it again
                    cut = f"{path}: {error!r}"
                    connection.close()
                    try:
                        problem = self._attempt(connection, which)
                    except (OSError, http.client.HTTPException) as again:
                        problem = f"{path}, sent again after a cut answer: {again!r}"
                except (OSError, http.client.HTTPException) as error:
                    problem = f"{path}: {type(error).__name__}: {error}"
                if problem is not None:
                    connection.close()  # reconnects on the next request
                with self.lock:
                    if cut is not None:
                        self.cut.append(cut)
                    if problem is None:
                        self.ok += 1
                    else:
                        self.failures.append(problem)
        finally:
            connection.close()

    def _attempt(self, connection: http.client.HTTPConnection, which: int) -> str | None:
        """Request ``which`` on ``connection``: None when its answer is the expected one, else
        what was wrong with it."""
        path, body = self.requests[which]
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            return f"{path}: {response.status} {payload[:300]!r}"
        if json.loads(payload) != self.expected[which]:
            return f"{path}: 200 with different numbers: {payload[:300]!r}"
        return None

    def count(self) -> int:
        with self.lock:
            return self.ok + len(self.failures)


def retried(access_log: Path) -> int:
    """Requests nginx sent to more than one replica (``$upstream_addr`` lists each attempt)."""
    text = access_log.read_text(encoding="utf-8", errors="replace")
    return len(re.findall(r"upstream=[^ ]+, ", text))


def upstream_statuses(access_log: Path, start_line: int = 0) -> Counter[tuple[str, str]]:
    """(last upstream address, its status) of every access-log line from ``start_line`` on."""
    counts: Counter[tuple[str, str]] = Counter()
    lines = access_log.read_text(encoding="utf-8", errors="replace").splitlines()[start_line:]
    for line in lines:
        found = re.search(r"upstream=(.*?) ustatus=(.*?) urt=", line)
        if found:
            address = found.group(1).split(",")[-1].split(":")[-1].strip()
            status = found.group(2).split(",")[-1].strip()
            counts[(address, status)] += 1
    return counts


def access_lines(access_log: Path) -> int:
    return len(access_log.read_text(encoding="utf-8", errors="replace").splitlines())


def grpc_attempts(
    access_log: Path, method: str, start_line: int = 0
) -> list[tuple[list[str], str]]:
    """(the replica ports nginx tried, in order; the call's gRPC status) of each access-log line
    of the gRPC ``method`` (``package.Service/Method``) from ``start_line`` on."""
    found = []
    lines = access_log.read_text(encoding="utf-8", errors="replace").splitlines()[start_line:]
    for line in lines:
        if f'"POST /{method} HTTP/2.0" ' in line:  # an access line (not nginx's error log)
            match = re.search(r" upstream=(.*?) ustatus=.* grpc=(\S*)$", line)
            assert match, f"an access line of {method} without upstream or gRPC status: {line}"
            ports = [address.rpartition(":")[2] for address in match.group(1).split(", ")]
            found.append((ports, match.group(2)))
    return found
