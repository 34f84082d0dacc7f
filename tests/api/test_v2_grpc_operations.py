"""gRPC operations through a real grpc.aio server in this process: the standard health service
through warm-up, drain and stop; server reflection; metrics and access-log lines by RPC, model
and status; and a cancelled call that stops its work and frees its slot."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from service.api.v2_grpc import grpc_predict_v2_pb2 as pb
from service.compute import deadline
from service.ops.settings import Settings
from tests.support.grpc import TIMEOUT, Served, grpc_served, outputs_of, raw_request
from tests.support.grpc import slow_ctc as support_slow_ctc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
INFERENCE = "inference.GRPCInferenceService"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline_at = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline_at:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.01)


def check(served: Served, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(served.channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT).status


def test_health_check_follows_warm_up_and_drain() -> None:
    with grpc_served(ready=False) as served:
        readiness = served.services.readiness
        assert check(served) == check(served, INFERENCE) == NOT_SERVING
        readiness.ready = True
        assert check(served) == check(served, INFERENCE) == SERVING
        readiness.draining = True
        assert check(served) == NOT_SERVING
        with pytest.raises(grpc.RpcError) as raised:
            check(served, "no.such.Service")
        assert raised.value.code() is grpc.StatusCode.NOT_FOUND


def test_health_watch_streams_every_change_and_ends_at_stop() -> None:
    with grpc_served(ready=False) as served:
        readiness = served.services.readiness
        stub = health_pb2_grpc.HealthStub(served.channel)
        stream = stub.Watch(health_pb2.HealthCheckRequest(service=INFERENCE), timeout=TIMEOUT)
        assert next(stream).status == NOT_SERVING  # warming up
        readiness.ready = True
        assert next(stream).status == SERVING
        readiness.draining = True
        assert next(stream).status == NOT_SERVING
        readiness.draining = False
        assert next(stream).status == SERVING
        unknown = stub.Watch(health_pb2.HealthCheckRequest(service="nope"), timeout=TIMEOUT)
        assert next(unknown).status == SERVICE_UNKNOWN
        served.run(served.server.stop())  # what the end of a drain does
        assert next(stream).status == NOT_SERVING
        assert list(stream) == []  # the stream ended, so the stop did not wait for it
        assert stream.code() is grpc.StatusCode.OK


def test_reflection_lists_the_services() -> None:
    with grpc_served() as served:
        stub = reflection_pb2_grpc.ServerReflectionStub(served.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = list(stub.ServerReflectionInfo(iter([request]), timeout=TIMEOUT))
        names = {service.name for service in answer.list_services_response.service}
        assert names == {
            INFERENCE,
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=INFERENCE)
        (answer,) = list(stub.ServerReflectionInfo(iter([request]), timeout=TIMEOUT))
        assert answer.file_descriptor_response.file_descriptor_proto  # grpcurl can call it


def rpc_count(rpc: str, loss: str, code: str) -> float:
    labels = {"rpc": f"{INFERENCE}/{rpc}", "loss": loss, "code": code}
    return REGISTRY.get_sample_value("loss_service_grpc_requests_total", labels) or 0.0


def test_metrics_and_access_lines_by_rpc_model_and_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with grpc_served() as served:
        before = {
            "ok": rpc_count("ModelInfer", "mse", "OK"),
            "invalid": rpc_count("ModelInfer", "mse", "INVALID_ARGUMENT"),
            "unknown": rpc_count("ModelInfer", "unknown", "NOT_FOUND"),
            "live": rpc_count("ServerLive", "", "OK"),
        }
        good = raw_request("mse", {"predictions": [1.0, 2.0], "targets": [1.0, 0.0]})
        caplog.set_level(logging.INFO, logger="service.access")
        served.stub.ModelInfer(good, metadata=[("x-request-id", "m-1")], timeout=TIMEOUT)
        served.stub.ModelInfer(good, timeout=TIMEOUT)
        bad = raw_request("mse", {"predictions": [1.0, 2.0], "targets": [1.0]})
        served.error("ModelInfer", bad)
        served.error("ModelInfer", raw_request("mse2", {"predictions": [1.0], "targets": [1.0]}))
        served.call("ServerLive", pb.ServerLiveRequest())
        assert rpc_count("ModelInfer", "mse", "OK") == before["ok"] + 2
        assert rpc_count("ModelInfer", "mse", "INVALID_ARGUMENT") == before["invalid"] + 1
        assert rpc_count("ModelInfer", "unknown", "NOT_FOUND") == before["unknown"] + 1
        assert rpc_count("ServerLive", "", "OK") == before["live"] + 1
        lines = [record.fields for record in caplog.records if record.name == "service.access"]
        first = next(line for line in lines if line["request_id"] == "m-1")
        assert first["protocol"] == "grpc"
        assert first["path"] == f"/{INFERENCE}/ModelInfer"
        assert (first["loss"], first["status"]) == ("mse", "OK")
        assert first["request_bytes"] == good.ByteSize()
        assert first["response_bytes"] > 5 * 8  # five outputs of FP64
        assert [line["status"] for line in lines][-3:] == ["INVALID_ARGUMENT", "NOT_FOUND", "OK"]


def slow_ctc(samples: int) -> pb.ModelInferRequest:
    """~1 s of one core per sample."""
    return support_slow_ctc(samples, steps=3000, length=1200)


def test_a_cancelled_call_stops_its_work_and_frees_its_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """48 samples of slow CTC take ~45 s of one core; cancelled, the heavy lane (one thread)
    is free for the next job within seconds, and the slot (one in flight) at once."""
    cancelled: list[deadline.Deadline] = []
    real_cancel = deadline.Deadline.cancel

    def recorded(self: deadline.Deadline) -> None:
        cancelled.append(self)
        real_cancel(self)

    monkeypatch.setattr(deadline.Deadline, "cancel", recorded)
    settings = Settings(
        grpc_port=0,
        max_in_flight=1,
        heavy_threads=1,
        kernel_threads=1,
        max_work_seconds=1000,
        compute_timeout_seconds=600,
    )
    with grpc_served(settings) as served:
        admission = served.services.pipeline.admission
        future = served.stub.ModelInfer.future(slow_ctc(48), timeout=600)
        wait_until(lambda: admission.requests == 1, "the slow call admitted")
        small = raw_request("mse", {"predictions": [3.0], "targets": [1.0]})
        refused = served.error("ModelInfer", small)
        assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # the one slot is taken
        future.cancel()
        wait_until(lambda: admission.requests == 0, "the slot freed")
        assert len(cancelled) == 1 and cancelled[0].cancelled
        # The heavy lane's one thread takes a new job once the cancelled work has stopped
        # (at its next checkpoint, ~1 s): far sooner than the ~45 s the call needed.
        ran = threading.Event()
        served.run(served.services.pipeline.heavy.run(ran.set))
        assert ran.is_set()
        assert outputs_of(served.call("ModelInfer", small))["cost"][0] == 4.0
