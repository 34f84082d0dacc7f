"""The real server as a child process: ``python -m service`` on a free 127.0.0.1 port, its output
read line by line, and plain HTTP to it.

Readiness is the "ready:" line that warm-up logs: :meth:`Server.wait_for` reads the process's
output until it appears, never sleeps. A server is stopped with SIGTERM, then SIGKILL of its
process group past a deadline.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import pytest

from tests.support.paths import ROOT

READY_TIMEOUT = 180.0  # s; a cold numba compile takes ~10 s, a warm cache well under 1 s
STOP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0
READY_LINE = "ready:"
PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; closed again at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**variables: str) -> dict[str, str]:
    """This environment without LOSS_SERVICE_* or proxies (the developer's own must not leak
    into the server or the healthcheck), plus ``variables``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LOSS_SERVICE_") and name.lower() not in PROXY_VARIABLES
    }
    env["PYTHONUNBUFFERED"] = "1"
    # No gRPC unless asked for: its default port (8001) is fixed, and servers run side by side.
    env["LOSS_SERVICE_GRPC_PORT"] = "0"
    env.update(variables)
    return env


def fetch(port: int, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        if body is None:
            connection.request(method, path)
        else:
            payload = json.dumps(body).encode()
            connection.request(method, path, payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT):
            return False
    except ConnectionRefusedError:
        return True


def run_healthcheck(port: int, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.ops.healthcheck"],
        cwd=ROOT,
        env=clean_env(LOSS_SERVICE_PORT=str(port), **variables),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Server:
    """``python -m service ARGS`` with its output (stdout and stderr) read line by line."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._ended = False
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # its own process group, workers included
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)  # end of output: every process holding the pipe has exited

    def _take(self, timeout: float) -> str | None:
        line = self._queue.get(timeout=timeout)
        if line is None:
            self._ended = True
        else:
            self.lines.append(line)
        return line

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, count: int = 1, timeout: float = READY_TIMEOUT) -> list[str]:
        """The first ``count`` output lines containing ``text``; fails (with the output so
        far) if the process ends first or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while len(found := [line for line in self.lines if text in line]) < count:
            if any("warm-up failed" in line for line in self.lines):
                pytest.fail(f"warm-up failed:\n{self.output()}")
            remaining = deadline - time.monotonic()
            if self._ended or remaining <= 0:
                why = "the output ended" if self._ended else f"{timeout:.0f} s passed"
                pytest.fail(
                    f"{why} before {count} line(s) with {text!r} "
                    f"(exit code {self.process.poll()}); output:\n{self.output()}"
                )
            try:
                self._take(timeout=remaining)
            except queue.Empty:
                continue
        return found[:count]

    def wait_ready(self, workers: int = 1) -> None:
        self.wait_for(READY_LINE, count=workers)

    def _kill_group(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self, timeout: float = STOP_TIMEOUT) -> tuple[int, bool]:
        """SIGTERM (as ``docker stop`` sends), then SIGKILL to the whole group past
        ``timeout``. Returns the exit code and whether it had to be killed."""
        killed = False
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                killed = True
                self._kill_group()
                self.process.wait()
        self._reader.join(timeout=timeout)
        if self._reader.is_alive():  # a worker outlived its parent and holds the pipe
            killed = True
            self._kill_group()
            self._reader.join()
        while not self._ended:
            self._take(timeout=timeout)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.process.returncode, killed


@contextmanager
def running(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> Iterator[Server]:
    server = Server(args, env, cwd)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def replicas(count: int = 2) -> Iterator[list[int]]:
    """``count`` servers on free ports (default settings), ready; their ports."""
    ports = [free_port() for _ in range(count)]
    with ExitStack() as stack:
        servers = [
            stack.enter_context(running(["--port", str(port)], clean_env())) for port in ports
        ]
        for server in servers:
            server.wait_ready()
        yield ports
