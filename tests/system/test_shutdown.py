"""A real server process on SIGTERM and with several workers: the drain (/readyz turns 503
while requests are still served, an in-flight request finishes with its full answer, the
process exits without being killed) and /metrics aggregated over every worker. The request in
flight at the SIGTERM is known to be in flight: it asked ``Expect: 100-continue`` and got the
``100 Continue`` (nothing sleeps to let it get there).
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import numpy as np
import orjson
import pytest

from tests.support.mse import MSE_BODY, MSE_EXPECTED
from tests.support.prometheus import sample
from tests.system import hostile_clients as hostile
from tests.system.server import REQUEST_TIMEOUT, clean_env, fetch, free_port, running

pytestmark = pytest.mark.system


def start_request(port: int, body: bytes) -> socket.socket:
    """A ``POST /v1/losses/mse`` of ``body`` whose headers ask ``Expect: 100-continue``: the body
    is held back, and the server answers ``100 Continue`` once its app starts reading it, that
    is once the request is in flight."""
    sock = hostile.connect(port, timeout=REQUEST_TIMEOUT)
    headers = {**hostile.JSON_HEADERS, "Expect": "100-continue"}
    sock.sendall(hostile.request_bytes("POST", "/v1/losses/mse", b"", headers, len(body)))
    return sock


def finish_in_background(sock: socket.socket, body: bytes, results: list) -> threading.Thread:
    """Send the held-back body and read the answer, in a thread: (status, body) into results."""

    def run() -> None:
        try:
            sock.sendall(body)
            response = hostile.read_response(sock, time.monotonic() + 120)
            results.append((response.status, response.body))
        except (OSError, hostile.NoAnswer) as error:
            results.append((None, repr(error).encode()))
        finally:
            sock.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def big_mse_body() -> tuple[bytes, float]:
    rng = np.random.default_rng(3)
    predictions, targets = rng.normal(size=(400, 1000)), rng.normal(size=(400, 1000))
    body = orjson.dumps({"predictions": predictions, "targets": targets},
                        option=orjson.OPT_SERIALIZE_NUMPY)  # fmt: skip
    return body, float(np.mean((predictions - targets) ** 2))


def test_sigterm_drains_then_finishes_in_flight_requests() -> None:
    """SIGTERM: /readyz turns 503 while the worker still serves (drain), an in-flight request
    completes with its full answer, and the process exits without being killed."""
    port = free_port()
    body, expected = big_mse_body()
    env = clean_env(LOSS_SERVICE_DRAIN_SECONDS="2", LOSS_SERVICE_LOG_LEVEL="info")
    with running(["--port", str(port)], env) as server:
        server.wait_ready()
        results: list = []
        sock = start_request(port, body)
        # In flight: the app reads the body (a deadline on a broken run, not a pause).
        interim = hostile.read_response(sock, time.monotonic() + REQUEST_TIMEOUT)
        assert interim.status == 100, interim
        server.process.send_signal(signal.SIGTERM)
        server.wait_for("SIGTERM: draining")
        thread = finish_in_background(sock, body, results)
        status, answer = fetch(port, "GET", "/readyz")
        assert status == 503 and json.loads(answer) == {"status": "draining"}
        status, answer = fetch(port, "POST", "/v1/losses/mse", MSE_BODY)  # still served
        assert status == 200 and json.loads(answer)["cost"] == MSE_EXPECTED["cost"]
        thread.join(timeout=60)
        code, killed = server.stop()
    assert not killed, server.output()
    assert code in (0, -signal.SIGTERM), server.output()
    assert results and results[0][0] == 200, results
    assert json.loads(results[0][1])["cost"] == pytest.approx(expected, rel=1e-12)
    assert "Application shutdown complete." in server.output()
    access = [json.loads(line) for line in server.lines if '"logger":"service.access"' in line]
    assert any(entry["status"] == 503 and entry["path"] == "/readyz" for entry in access)


def test_metrics_aggregate_every_worker() -> None:
    """With --workers 2 each worker is a process: /metrics (whichever answers) counts the
    requests both served, through PROMETHEUS_MULTIPROC_DIR."""
    port = free_port()
    with running(["--workers", "2", "--port", str(port)], clean_env()) as server:
        server.wait_ready(workers=2)
        for _ in range(12):
            status, _ = fetch(port, "POST", "/v1/losses/mse", MSE_BODY)
            assert status == 200
        counts = set()
        for _ in range(4):
            status, text = fetch(port, "GET", "/metrics")
            assert status == 200
            labels = {"route": "/v1/losses/{name}", "loss": "mse", "status": "200"}
            counts.add(sample(text.decode(), "loss_service_requests_total", **labels))
    assert counts == {12.0}
