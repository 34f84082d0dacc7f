"""The real server: ``python -m service`` as a process on 127.0.0.1, spoken to over HTTP.

Each test starts its own process on a free port and stops it (SIGTERM, then SIGKILL of its
process group past a deadline). Readiness is the "ready:" line that warm-up logs: the tests
read the process's output until it appears, never sleep (tests/system/server.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from service.ops import cpu
from tests.support.mse import MSE_BODY, MSE_EXPECTED
from tests.support.paths import ROOT
from tests.system.deployment import DOCKERFILE, parse_stages, warmup_runs
from tests.system.server import (
    READY_TIMEOUT,
    STOP_TIMEOUT,
    Server,
    clean_env,
    fetch,
    free_port,
    refuses_connections,
    run_healthcheck,
    running,
)

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Server, int]]:
    """One server for the read-only checks: ``python -m service --port <free>``."""
    port = free_port()
    with running(["--port", str(port)], clean_env()) as server:
        server.wait_ready()
        yield server, port


# ---- one server, default host ---------------------------------------------------------------


def test_listens_on_loopback_and_is_live_and_ready(served: tuple[Server, int]) -> None:
    server, port = served
    assert server.wait_for(f"Uvicorn running on http://127.0.0.1:{port} ")
    status, body = fetch(port, "GET", "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, body = fetch(port, "GET", "/readyz")
    assert status == 200, body
    assert json.loads(body)["status"] == "ready"


def test_mse_over_http(served: tuple[Server, int]) -> None:
    _, port = served
    status, body = fetch(port, "POST", "/v1/losses/mse", MSE_BODY)
    assert status == 200, body
    result = json.loads(body)
    for key, expected in MSE_EXPECTED.items():
        if isinstance(expected, str):
            assert result[key] == expected, key
        elif key == "gradient":  # approx takes no nested lists: row by row
            assert len(result[key]) == len(expected), key
            for got, want in zip(result[key], expected, strict=True):
                assert got == pytest.approx(want, rel=1e-12, abs=1e-15), key
        else:
            assert result[key] == pytest.approx(expected, rel=1e-12, abs=1e-15), key


def test_healthcheck_exits_0_when_ready(served: tuple[Server, int]) -> None:
    _, port = served
    result = run_healthcheck(port)
    assert result.returncode == 0, result.stdout + result.stderr


def test_healthcheck_ignores_proxy_settings(served: tuple[Server, int]) -> None:
    _, port = served
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    result = run_healthcheck(port, http_proxy=dead_proxy, HTTP_PROXY=dead_proxy)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- the healthcheck on its own ---------------------------------------------------------------


def test_healthcheck_exits_1_when_nothing_listens() -> None:
    port = free_port()
    assert refuses_connections(port)
    result = run_healthcheck(port)
    assert result.returncode == 1, result.stdout + result.stderr


def test_healthcheck_exits_1_while_warming_up() -> None:
    """A server that is live but answers /readyz 503 (warm-up not finished) is not healthy."""
    requested: list[str] = []

    class Warming(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            body = b'{"status":"warming up"}'
            self.send_response(200 if self.path == "/healthz" else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    stub = ThreadingHTTPServer(("127.0.0.1", 0), Warming)
    thread = threading.Thread(target=stub.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_healthcheck(stub.server_address[1])
    finally:
        stub.shutdown()
        stub.server_close()
        thread.join(timeout=STOP_TIMEOUT)
    assert requested == ["/readyz"]
    assert result.returncode == 1, result.stdout + result.stderr


# ---- configuration: environment and flags ---------------------------------------------------


def test_port_from_the_environment_alone() -> None:
    port = free_port()
    with running([], clean_env(LOSS_SERVICE_PORT=str(port))) as server:
        server.wait_ready()
        assert server.wait_for(f"Uvicorn running on http://127.0.0.1:{port} ")
        status, _ = fetch(port, "GET", "/healthz")
        assert status == 200
        code, killed = server.stop()
    # Graceful: lifespan shut down, no SIGKILL. A single uvicorn process re-raises the SIGTERM
    # it handled once it has shut down, so it ends "by the signal" (143 in a container).
    assert not killed, server.output()
    assert code in (0, -signal.SIGTERM), server.output()
    assert "Application shutdown complete." in server.output()


def test_flags_win_over_the_environment() -> None:
    flag_port, env_port = free_port(), free_port()
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: binding it would fail.
    env = clean_env(LOSS_SERVICE_HOST="192.0.2.1", LOSS_SERVICE_PORT=str(env_port))
    with running(["--host", "127.0.0.1", "--port", str(flag_port)], env) as server:
        server.wait_ready()
        assert server.wait_for(f"Uvicorn running on http://127.0.0.1:{flag_port} ")
        status, _ = fetch(flag_port, "GET", "/readyz")
        assert status == 200
        assert refuses_connections(env_port)


def test_two_workers_serve_and_stop_cleanly_on_sigterm() -> None:
    port = free_port()
    with running(["--workers", "2", "--port", str(port)], clean_env()) as server:
        server.wait_ready(workers=2)  # each worker process warms its own kernels
        started = server.wait_for("Started server process [", count=2)
        workers = {int(re.search(r"Started server process \[(\d+)\]", line)[1]) for line in started}
        assert len(workers) == 2, started
        assert server.process.pid not in workers
        for _ in range(4):
            status, body = fetch(port, "POST", "/v1/losses/mse", MSE_BODY)
            assert status == 200, body
            assert json.loads(body)["cost"] == pytest.approx(MSE_EXPECTED["cost"])
        code, killed = server.stop()
    assert (code, killed) == (0, False), server.output()
    for pid in workers:  # the parent took its workers down with it
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# ---- the image's numba cache, without the image ---------------------------------------------


def cache_files(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        path.relative_to(directory).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_dockerfile_warmup_fills_the_cache_that_the_server_loads(tmp_path: Path) -> None:
    """The Dockerfile's warm-up step (its shell loop over the CPU levels), run with the image's
    numba settings but the caches in tmp_path, bakes the levels this machine runs, and a server
    started with the same settings loads the best of them as it is: nothing is compiled again
    (no cache file is added or rewritten)."""
    runtime = parse_stages(DOCKERFILE.read_text(encoding="utf-8"))[-1]
    (warmup,) = warmup_runs(runtime)
    (levels,) = [
        shlex.split(i.args)[0].partition("=")
        for i in runtime.all("ARG")
        if i.args.startswith("KERNEL_CPU_LEVELS=")
    ]
    cache = tmp_path / "numba-cache"
    workdir = tmp_path / "app"  # like the image's empty WORKDIR
    cache.mkdir()
    workdir.mkdir()
    # Two of the image's levels (each takes ~40 s to bake): the fallback and this machine's own;
    # the image bakes them all (tests/system/test_image.py), and the list is checked statically.
    baking = "generic host"
    assert set(baking.split()) <= set(levels[2].split()), levels[2]
    env = clean_env(
        LOSS_KERNEL_CACHES=str(cache),
        KERNEL_CPU_LEVELS=baking,
        PYTHONPATH=str(ROOT),  # this checkout's service, wherever the venv's install points
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    for name in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_CACHE_DIR"):
        env.pop(name, None)  # the image sets none of them
    build = subprocess.run(
        ["sh", "-c", warmup.args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT * len(baking.split()),
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    # The levels this machine runs, and its own micro-architecture, which a server here uses.
    host = cpu.llvm_host()[0]
    runnable = [level for level in cpu.LEVELS if cpu.supports(cpu.cpu_flags(), level)]
    if host in cpu.LEVELS:  # (LLVM knows no better name for this CPU)
        host = runnable[-1]
    baked_levels = [p.name for p in sorted(cache.iterdir())]
    assert baked_levels == sorted({"generic", host}), (baked_levels, runnable)
    assert build.stdout.count("warm:") == len(baked_levels), build.stdout
    baked = cache_files(cache)
    assert any(name.startswith(f"{host}/") and name.endswith(".nbi") for name in baked), baked
    assert any(name.startswith(f"{host}/") and name.endswith(".nbc") for name in baked), baked

    port = free_port()
    with running(["--port", str(port)], env, cwd=workdir) as server:
        server.wait_ready()
        assert f"kernels for CPU level {host}, from {cache / host}" in server.output()
        assert cache_files(cache) == baked, "the server compiled kernels the build had cached"
