"""gRPC benchmark: ``ModelInfer`` on the service's gRPC port against a bare gRPC echo server and
against the service's own REST binary path, in the same run.

    python -m bench.grpc [--rounds 9] [--seconds 5]

1. Big round trip: a 1e6-entry FP64 MSE request (predictions and targets (1000, 1000), 8 MB
   each in ``raw_input_contents``; every output asked for, so the response holds the 8 MB
   gradient), one client, serialized once beforehand, the response taken as bytes (no client
   side parses or builds protobuf while timed). Against the floor (bench/grpc_floor.py: a bare
   ``grpc.aio`` server answering each call with a response of the same size, no protobuf) and
   against ``POST /v2/models/mse/infer`` with Triton's binary tensors (same tensors, same
   outputs, a new connection each time as in bench/http.py). Interleaved rounds, medians.
2. Small requests (N = 32 MSE, ``raw_input_contents``): calls per second with 16 calls in
   flight (a ``grpc.aio`` client in its own process: 16 tasks on one channel), against the
   same client on the floor server, and the REST binary path's requests per second at 16
   connections (wrk, when installed). Alternating rounds, medians.

Beside the wall times, each server's CPU time (user + system, all its threads, from /proc) per
call: neighbours on a shared machine disturb it less. The clients run in other processes than
the servers; the service logs at ``warning`` (no access lines).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np

from bench.http import (
    ROOT,
    binary_request,
    free_port,
    post_binary_times,
    print_table,
    wait_ready,
)
from service.api.v2_grpc import grpc_predict_v2_pb2 as pb

METHOD = "/inference.GRPCInferenceService/ModelInfer"
OUTPUTS = ("cost", "per_sample", "gradient", "sum", "weight_sum")  # bench/http.py's order
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


def infer_request(predictions: np.ndarray, targets: np.ndarray) -> bytes:
    """A serialized ``ModelInferRequest`` for MSE, the tensors' bytes in raw_input_contents."""
    tensor = pb.ModelInferRequest.InferInputTensor
    request = pb.ModelInferRequest(
        model_name="mse",
        inputs=[
            tensor(name=name, datatype="FP64", shape=list(array.shape))
            for name, array in (("predictions", predictions), ("targets", targets))
        ],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=name) for name in OUTPUTS],
        raw_input_contents=[predictions.astype("<f8").tobytes(), targets.astype("<f8").tobytes()],
    )
    return request.SerializeToString()


def outputs_of(response: bytes) -> dict[str, np.ndarray]:
    message = pb.ModelInferResponse.FromString(response)
    return {
        tensor.name: np.frombuffer(raw, dtype="<f8").reshape(tensor.shape)
        for tensor, raw in zip(message.outputs, message.raw_output_contents, strict=True)
    }


@contextmanager
def started(arguments: list[str], ready: Callable[[], object]):
    """A server process, yielded once ``ready()`` has returned."""
    process = subprocess.Popen(
        arguments, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        ready()
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def grpc_ready(port: int, deadline: float = 60.0) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=deadline)


def cpu_seconds(process: subprocess.Popen) -> float:
    """CPU time (user + system, every thread) the process has used so far."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """One server's figures over the rounds: wall times or rates, and its CPU time per call."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.values: list[float] = []
        self.cpu, self.calls = 0.0, 0

    def times(self, calls: Callable[[], list[float]]) -> None:
        """Time ``calls()`` (which returns each call's wall time)."""
        before = cpu_seconds(self.process)
        times = calls()
        self.cpu += cpu_seconds(self.process) - before
        self.values += times
        self.calls += len(times)

    def rate(self, load: Callable[[], tuple[int, float]]) -> None:
        """Run ``load()`` (which returns the calls done and the seconds taken)."""
        before = cpu_seconds(self.process)
        done, seconds = load()
        self.cpu += cpu_seconds(self.process) - before
        self.values.append(done / seconds)
        self.calls += done

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def cpu_per_call(self) -> float:
        return self.cpu / self.calls


def call_times(port: int, message: bytes, rounds: int) -> tuple[list[float], bytes]:
    """Round-trip times of ``rounds`` calls on one channel (warmed by one call first), and the
    last response."""
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
        call = channel.unary_unary(METHOD)  # no (de)serializers: bytes both ways
        response = call(message, timeout=120)
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            response = call(message, timeout=120)
            times.append(time.perf_counter() - started)
    return times, response


async def _load(port: int, message: bytes, concurrency: int, seconds: float) -> tuple[int, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) as channel:
        call = channel.unary_unary(METHOD)
        await asyncio.gather(*(call(message, timeout=30) for _ in range(concurrency)))  # warm
        done = 0
        end = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < end:
                await call(message, timeout=30)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return done, time.perf_counter() - started


def _load_process(port: int, message: bytes, concurrency: int, seconds: float, result) -> None:
    result[:] = asyncio.run(_load(port, message, concurrency, seconds))


def call_load(port: int, message: bytes, concurrency: int, seconds: float) -> tuple[int, float]:
    """Calls done with ``concurrency`` calls in flight for ``seconds``, from a client process,
    and the seconds they took."""
    context = multiprocessing.get_context("spawn")
    result = context.Array("d", 2)
    process = context.Process(
        target=_load_process, args=(port, message, concurrency, seconds, result)
    )
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"the gRPC client process failed (exit code {process.exitcode})")
    return int(result[0]), result[1]


def wrk_binary(
    port: int, body: bytes, header_length: int, connections: int, seconds: int
) -> tuple[int, float]:
    """Requests done on the REST binary path (``body`` sent as it is) by wrk, and the seconds."""
    escaped = "".join(f"\\{byte:03d}" for byte in body)  # a Lua string holds any byte
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f'wrk.headers["Inference-Header-Content-Length"] = "{header_length}"\n'
            f'wrk.body = "{escaped}"\n'
        )
    try:
        output = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name,
             f"http://127.0.0.1:{port}/v2/models/mse/infer"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s)", output)
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[done.group(3)]
    return int(done.group(1)), float(done.group(2)) * unit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    predictions, targets = rng.normal(size=(1000, 1000)), rng.normal(size=(1000, 1000))
    big = infer_request(predictions, targets)
    binary, header_length = binary_request(predictions, targets)
    small_predictions, small_targets = rng.normal(size=32), rng.normal(size=32)
    small = infer_request(small_predictions, small_targets)
    small_binary, small_header_length = binary_request(small_predictions, small_targets)

    port, grpc_port, floor_port = free_port(), free_port(), free_port()
    service = [sys.executable, "-m", "service", "--port", str(port), "--grpc-port", str(grpc_port)]
    os.environ["LOSS_SERVICE_LOG_LEVEL"] = "warning"  # no access lines
    with started(service, lambda: wait_ready(port, "/readyz")) as service_process:
        # The service's response sets the floor's size, and is checked against NumPy.
        response = call_times(grpc_port, big, 0)[1]
        outputs = outputs_of(response)
        difference = predictions - targets
        assert np.allclose(outputs["cost"], np.mean(difference**2), rtol=1e-12)
        assert np.allclose(outputs["gradient"], 2.0 * difference / difference.size, rtol=1e-12)
        floor = [sys.executable, "-m", "bench.grpc_floor", "--port", str(floor_port),
                 "--response-bytes", str(len(response))]  # fmt: skip
        with started(floor, lambda: grpc_ready(floor_port)) as floor_process:
            assert len(call_times(floor_port, big, 0)[1]) == len(response)
            post_binary_times(port, binary, header_length, 1)  # warm
            ours, bare = Meter(service_process), Meter(floor_process)
            rest = Meter(service_process)
            for _ in range(args.rounds):  # interleaved: the shared machine's speed drifts
                ours.times(lambda: call_times(grpc_port, big, 1)[0])
                bare.times(lambda: call_times(floor_port, big, 1)[0])
                rest.times(lambda: post_binary_times(port, binary, header_length, 1))
            small_ours, small_bare = Meter(service_process), Meter(floor_process)
            small_rest = Meter(service_process)
            for _ in range(3):
                small_ours.rate(lambda: call_load(grpc_port, small, 16, args.seconds))
                small_bare.rate(lambda: call_load(floor_port, small, 16, args.seconds))
                if shutil.which("wrk"):
                    small_rest.rate(
                        lambda: wrk_binary(
                            port, small_binary, small_header_length, 16, args.seconds
                        )
                    )
    sizes = f"{len(big) / 1e6:.0f} MB in, {len(response) / 1e6:.0f} MB out"
    rows = [
        (f"1e6-entry FP64 MSE round trip ({sizes}), median of {args.rounds}, ms",
         ours.median * 1e3, bare.median * 1e3, "bare grpc.aio echo, same sizes", "<= 1.3x"),
        ("same, server CPU ms per call", ours.cpu_per_call * 1e3, bare.cpu_per_call * 1e3,
         "bare grpc.aio echo, same sizes", ""),
        ("same request over gRPC, ms", ours.median * 1e3, rest.median * 1e3,
         "REST binary path (/v2, same service)", ""),
        ("same, server CPU ms per call", ours.cpu_per_call * 1e3, rest.cpu_per_call * 1e3,
         "REST binary path (/v2, same service)", ""),
        ("small requests (N = 32), calls/s with 16 in flight, median of 3", small_ours.median,
         small_bare.median, "the same client on the bare echo", ""),
        ("same, server CPU us per call", small_ours.cpu_per_call * 1e6,
         small_bare.cpu_per_call * 1e6, "the same client on the bare echo", ""),
    ]  # fmt: skip
    if small_rest.values:
        rows += [
            ("small requests, gRPC calls/s against REST req/s", small_ours.median,
             small_rest.median, "REST binary path, wrk, 16 connections", ""),
            ("same, server CPU us per call", small_ours.cpu_per_call * 1e6,
             small_rest.cpu_per_call * 1e6, "REST binary path, wrk, 16 connections", ""),
        ]  # fmt: skip
    print_table(rows)


if __name__ == "__main__":
    main()
