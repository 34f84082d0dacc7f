"""HTTP benchmark: the service against baselines started here, under the same uvicorn.

    python -m bench.http [--rounds 7] [--seconds 5]

1. JSON path: a 1e6-element MSE request (predictions (1000, 1000)), one client, end to end,
   against the floor (bench/floor_app.py: bare ASGI + orjson + NumPy).
2. Small requests (N = 32 MSE): requests/s at 16 connections and p99 latency at 1 connection
   with wrk, against a plain FastAPI + Pydantic list[float] + NumPy app (bench/baseline_app.py).
3. /healthz while the service is saturated: loader processes keep more 1e6-element requests
   in flight than the worker computes at once; a probe on its own connection times /healthz
   every 20 ms. Baseline: the same probe against the idle service.
4. Start to ready (python -m service until /readyz answers 200), cold and warm numba cache.

Every figure is read against its baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def print_table(rows: list[tuple[str, float, float, str, str]]) -> None:
    """Rows of (measure, service, baseline, what the baseline is, goal) as a Markdown table,
    with each ratio to its baseline measured in the same run."""
    print("| measure | service | baseline | ratio | baseline is | goal |")
    print("|---|---:|---:|---:|---|---|")
    for name, value, baseline, what, goal in rows:
        ratio = value / baseline if baseline else float("nan")
        print(f"| {name} | {value:.4g} | {baseline:.4g} | {ratio:.2f}x | {what} | {goal} |")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(port: int, path: str, deadline: float = 120.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            status = connection.getresponse().status
            connection.close()
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"port {port} not ready after {deadline} s")


@contextmanager
def serving(arguments: list[str], port: int, ready_path: str, env: dict | None = None):
    process = subprocess.Popen(
        arguments, cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield wait_ready(port, ready_path)
    finally:
        process.terminate()
        process.wait(timeout=30)


def uvicorn_app(module: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", module, "--port", str(port), "--log-level", "warning"]


def post_times(
    port: int, path: str, body: bytes, rounds: int, headers: dict[str, str] | None = None
) -> list[float]:
    """Round-trip times of ``rounds`` POSTs, each on a new connection (JSON by default)."""
    headers = headers or {"Content-Type": "application/json"}
    times = []
    for _ in range(rounds):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        started = time.perf_counter()
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        response.read()
        times.append(time.perf_counter() - started)
        assert response.status == 200, response.status
        connection.close()
    return times


def binary_request(predictions: np.ndarray, targets: np.ndarray) -> tuple[bytes, int]:
    """A Triton binary-tensor infer request: JSON header, then little-endian FP64 chunks."""
    header = orjson.dumps(
        {
            "inputs": [
                {"name": name, "shape": list(array.shape), "datatype": "FP64",
                 "parameters": {"binary_data_size": array.nbytes}}
                for name, array in (("predictions", predictions), ("targets", targets))
            ],
            "outputs": [
                {"name": name, "parameters": {"binary_data": True}}
                for name in ("cost", "per_sample", "gradient", "sum", "weight_sum")
            ],
        }
    )  # fmt: skip
    chunks = predictions.astype("<f8").tobytes() + targets.astype("<f8").tobytes()
    return header + chunks, len(header)


def post_binary_times(port: int, body: bytes, header_length: int, rounds: int) -> list[float]:
    headers = {"Inference-Header-Content-Length": str(header_length)}
    return post_times(port, "/v2/models/mse/infer", body, rounds, headers)


def _load(port: int, body: bytes, stop, done) -> None:  # a loader process
    while not stop.is_set():
        post_times(port, "/v1/losses/mse", body, 1)
        with done.get_lock():
            done.value += 1


def health_times(port: int, seconds: float) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        times.append(time.perf_counter() - started)
        assert response.status == 200, response.status
        time.sleep(0.02)
    connection.close()
    return times


def saturated_health(port: int, body: bytes, loaders: int, seconds: float) -> tuple[list, int]:
    """/healthz times while ``loaders`` processes post ``body`` back to back."""
    context = multiprocessing.get_context("spawn")
    stop, done = context.Event(), context.Value("i", 0)
    processes = [
        context.Process(target=_load, args=(port, body, stop, done)) for _ in range(loaders)
    ]
    for process in processes:
        process.start()
    try:
        time.sleep(2.0)  # every loader has a request in flight
        return health_times(port, seconds), done.value
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=120)


def wrk(port: int, body: bytes, connections: int, seconds: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name,
         f"http://127.0.0.1:{port}/v1/losses/mse"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return {"rps": rps, "p99_ms": float(p99.group(1)) * unit}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    big_predictions, big_targets = rng.normal(size=(1000, 1000)), rng.normal(size=(1000, 1000))
    big = orjson.dumps(
        {"predictions": big_predictions, "targets": big_targets},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    binary, header_length = binary_request(big_predictions, big_targets)
    small = orjson.dumps({"predictions": rng.normal(size=32), "targets": rng.normal(size=32)},
                         option=orjson.OPT_SERIALIZE_NUMPY)  # fmt: skip
    service_port, floor_port, baseline_port = free_port(), free_port(), free_port()
    service = [sys.executable, "-m", "service", "--port", str(service_port)]
    os.environ["LOSS_SERVICE_LOG_LEVEL"] = "warning"  # no access log, like the baselines
    rows = []
    with (
        serving(service, service_port, "/readyz"),
        serving(uvicorn_app("bench.floor_app:app", floor_port), floor_port, "/"),
    ):
        ours = post_times(service_port, "/v1/losses/mse", big, args.rounds)
        floor = post_times(floor_port, "/", big, args.rounds)
        binary_times = post_binary_times(service_port, binary, header_length, args.rounds)
        idle_health = health_times(service_port, 2.0)
        busy_health, served = saturated_health(service_port, big, 3, args.seconds * 2)
    rows.append(("JSON path, 1e6-element MSE, median s", statistics.median(ours),
                 statistics.median(floor), "floor (bare ASGI + orjson)", "<= 1.3x"))  # fmt: skip
    rows.append(("binary path (/v2, FP64), same request, median ms",
                 statistics.median(binary_times) * 1e3, statistics.median(ours) * 1e3,
                 "the JSON path", "<= 25 ms"))  # fmt: skip
    rows.append((f"/healthz p99 ms, 3 loaders of 1e6-element requests ({served} served)",
                 percentile(busy_health, 99) * 1e3, percentile(idle_health, 99) * 1e3,
                 "the idle service", "<= 50 ms"))  # fmt: skip
    rows.append(("/healthz max ms, same run", max(busy_health) * 1e3, max(idle_health) * 1e3,
                 "the idle service", ""))  # fmt: skip
    if shutil.which("wrk"):
        with (
            serving(service, service_port, "/readyz"),
            serving(uvicorn_app("bench.baseline_app:app", baseline_port), baseline_port, "/docs"),
        ):
            # Alternating rounds, medians: the shared machine's speed drifts between runs.
            ours, base = [], []
            for _ in range(3):
                ours.append(wrk(service_port, small, 16, args.seconds)["rps"])
                base.append(wrk(baseline_port, small, 16, args.seconds)["rps"])
            ours1 = wrk(service_port, small, 1, args.seconds)
            base1 = wrk(baseline_port, small, 1, args.seconds)
        rows.append(("small requests, req/s at 16 connections (median of 3 alternating runs)",
                     statistics.median(ours), statistics.median(base),
                     "plain FastAPI + Pydantic", ">= 2x"))  # fmt: skip
        rows.append(("small requests, p99 ms at 1 connection", ours1["p99_ms"], base1["p99_ms"],
                     "plain FastAPI + Pydantic", "<= 3 ms"))  # fmt: skip
    cache = tempfile.mkdtemp(prefix="numba-cache-")
    env = {"NUMBA_CACHE_DIR": cache}
    with serving(service, service_port, "/readyz", env) as cold:
        pass
    with serving(service, service_port, "/readyz", env) as warm:
        pass
    shutil.rmtree(cache, ignore_errors=True)
    rows.append(("start to ready, s (cold cache / warm cache)", cold, warm, "", "warm <= 3 s"))
    print_table(rows)


if __name__ == "__main__":
    main()
