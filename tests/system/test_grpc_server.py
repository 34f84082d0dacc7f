"""gRPC in real server processes (``python -m service --grpc-port``): the SIGTERM drain (health
turns NOT_SERVING while calls are still served, a call in flight finishes, new calls are
refused once the drain ends, the process exits by itself), several workers on one gRPC port,
and a clear failure when the port is taken.
"""

from __future__ import annotations

import signal
import socket
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.api.v2_grpc import grpc_predict_v2_pb2 as pb
from service.api.v2_grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.support.grpc import outputs_of, raw_request
from tests.support.grpc import slow_ctc as support_slow_ctc
from tests.support.mse import MSE_BODY
from tests.support.prometheus import sample
from tests.system.server import REQUEST_TIMEOUT, Server, clean_env, fetch, free_port, running

pytestmark = pytest.mark.system

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def small() -> pb.ModelInferRequest:
    return raw_request("mse", {"predictions": [3.0, 1.0], "targets": [1.0, 1.0]})


def slow_ctc(samples: int = 4) -> pb.ModelInferRequest:
    """~0.4-0.8 s of one core per sample, so a call is still computing while the test acts
    (it waits for it to be in flight, never sleeps)."""
    return support_slow_ctc(samples, steps=2000, length=800)


def test_sigterm_drains_grpc_then_finishes_the_call_in_flight() -> None:
    http, port = free_port(), free_port()
    env = clean_env(
        LOSS_SERVICE_DRAIN_SECONDS="2",
        LOSS_SERVICE_KERNEL_THREADS="1",
        LOSS_SERVICE_LOG_LEVEL="info",
    )
    with running(["--port", str(http), "--grpc-port", str(port)], env) as server:
        server.wait_ready()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=120)
        assert next(watch).status == SERVING
        in_flight = stub.ModelInfer.future(slow_ctc(), timeout=120)
        wait_for_metric(http, "loss_service_requests_in_flight", 1.0)
        server.process.send_signal(signal.SIGTERM)
        assert next(watch).status == NOT_SERVING  # at once, for the load balancers
        assert not stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready
        # Still served while draining.
        assert outputs_of(stub.ModelInfer(small(), timeout=30))["cost"][0] == 2.0
        server.wait_for("Application shutdown complete", timeout=120)
        response = in_flight.result(timeout=120)  # the call in flight got its whole answer
        assert np.isfinite(outputs_of(response)["cost"][0])
        channel.close()
        code, killed = server.stop()
    assert not killed, server.output()
    assert code in (0, -signal.SIGTERM), server.output()


def test_new_calls_are_unavailable_once_the_drain_ends() -> None:
    http, port = free_port(), free_port()
    env = clean_env(LOSS_SERVICE_DRAIN_SECONDS="1", LOSS_SERVICE_KERNEL_THREADS="1")
    with running(["--port", str(http), "--grpc-port", str(port)], env) as server:
        server.wait_ready()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            in_flight = stub.ModelInfer.future(slow_ctc(), timeout=120)
            wait_for_metric(http, "loss_service_requests_in_flight", 1.0)
            server.process.send_signal(signal.SIGTERM)
            server.wait_for("SIGTERM: draining")
            refused = None
            stop_at = time.monotonic() + 60
            while refused is None and time.monotonic() < stop_at:
                try:
                    stub.ModelInfer(small(), timeout=10)
                except grpc.RpcError as error:
                    refused = error
                time.sleep(0.05)
            # Refused by the stopping server (UNAVAILABLE); a call that races the stop, taken
            # just before it and cut off when the connection closes, ends CANCELLED.
            assert refused is not None
            assert refused.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
            assert in_flight.result(timeout=120).outputs[0].name == "cost"
        server.stop()


def wait_for_metric(http: int, name: str, value: float) -> None:
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while True:
        status, text = fetch(http, "GET", "/metrics")
        if status == 200 and sample(text.decode(), name) == value:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not reach {value}")
        time.sleep(0.02)


def test_workers_share_one_grpc_port() -> None:
    http, port = free_port(), free_port()
    args = ["--workers", "2", "--port", str(http), "--grpc-port", str(port)]
    with running(args, clean_env()) as server:
        server.wait_ready(workers=2)
        assert len(server.wait_for(f"on 127.0.0.1 port {port}", count=2)) == 2
        results = []

        def client() -> None:
            for _ in range(5):  # new connections: the kernel spreads them over the workers
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = pb_grpc.GRPCInferenceServiceStub(channel)
                    results.append(outputs_of(stub.ModelInfer(small(), timeout=30))["cost"][0])

        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert results == [2.0] * 20
        status, text = fetch(http, "GET", "/metrics")
        assert status == 200
        labels = {"rpc": "inference.GRPCInferenceService/ModelInfer", "loss": "mse", "code": "OK"}
        assert sample(text.decode(), "loss_service_grpc_requests_total", **labels) == 20.0


def test_a_taken_grpc_port_stops_the_start_with_a_clear_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Server(["--port", str(free_port()), "--grpc-port", str(port)], clean_env())
        try:
            code = server.process.wait(timeout=120)
        finally:
            server.stop()
    assert code != 0
    assert f"gRPC cannot listen on 127.0.0.1:{port}" in server.output()
    assert "LOSS_SERVICE_GRPC_PORT" in server.output()


def test_grpc_and_http_share_one_workers_bounds_and_cheap_calls_pass_the_heavy_one() -> None:
    """One scoring slot (LOSS_SERVICE_MAX_IN_FLIGHT=1) shared by both protocols: while a slow
    gRPC call holds it, HTTP scoring gets 503; with room for two, a cheap call (gRPC or HTTP)
    is answered while the slow one is still computing (separate lanes)."""
    for slots in (1, 2):
        http, port = free_port(), free_port()
        env = clean_env(
            LOSS_SERVICE_MAX_IN_FLIGHT=str(slots),
            LOSS_SERVICE_KERNEL_THREADS="1",
            LOSS_SERVICE_HEAVY_THREADS="1",
        )
        with running(["--port", str(http), "--grpc-port", str(port)], env) as server:
            server.wait_ready()
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)
                slow = stub.ModelInfer.future(slow_ctc(samples=10), timeout=120)
                wait_for_metric(http, "loss_service_requests_in_flight", 1.0)
                status, answer = fetch(http, "POST", "/v1/losses/mse", MSE_BODY)
                if slots == 1:
                    assert status == 503, answer
                    assert b"LOSS_SERVICE_MAX_IN_FLIGHT" in answer
                else:
                    assert status == 200, answer
                    cheap = stub.ModelInfer(small(), timeout=60)
                    assert outputs_of(cheap)["cost"][0] == 2.0
                    assert not slow.done(), "the slow call ended first: nothing was shown"
                assert slow.result(timeout=120).outputs[0].name == "cost"
