"""JSON reading benchmark: service.api.jsonread against orjson + NumPy, in the same run.

    python -m bench.json_read [--repeats 9] [--size 1000] [--skip-compile] [--skip-memory]

Speed. A body of two (size, size) arrays of random doubles (``predictions`` standard normal,
``targets`` uniform), written by ``orjson.dumps`` and by ``json.dumps``. Contenders, timed in
turns within every round (best of ``--repeats``), so load on the machine falls on all alike:

- baseline: ``orjson.loads`` + ``np.asarray(..., float64)`` of both arrays (what the service
  did);
- orjson floor: ``orjson.loads`` alone (no array made);
- jsonread: ``read`` + ``value(key, arrays={()})`` + ``to_array`` of both arrays.

The figures to read are the ratios (jsonread time / baseline time, / orjson floor).

Compilation. In fresh processes with an empty ``NUMBA_CACHE_DIR``: the time ``warm()`` takes
to compile every kernel, then, in another process, to load them from that cache.

Memory. ``python -m tests.system.jsonread_memory``: the RSS high-water mark of reading each
pathological body (12 MB) in a fresh process, above the RSS that held the body, as a multiple
of the body's size, for the service's way of reading and for building every value in Python.

GIL. While ``read`` scans the orjson body in a thread, how many times the main thread got to
run a Python loop iteration (about zero if the scan held the GIL).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import orjson

from service.api.jsonread import read, warm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def best_times(functions: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Best time of each function over ``repeats`` rounds, the functions taking turns."""
    for function in functions:
        function()
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for index, function in enumerate(functions):
            started = time.perf_counter()
            function()
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def numeric_body(size: int, writer: str) -> bytes:
    rng = np.random.default_rng(2024)
    predictions = rng.standard_normal((size, size))
    targets = rng.random((size, size))
    if writer == "orjson.dumps":
        payload = {"predictions": predictions, "targets": targets}
        return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps({"predictions": predictions.tolist(), "targets": targets.tolist()}).encode()


def baseline(body: bytes) -> tuple[np.ndarray, np.ndarray]:
    document = orjson.loads(body)
    predictions = np.asarray(document["predictions"], dtype=np.float64)
    return predictions, np.asarray(document["targets"], dtype=np.float64)


def jsonread(body: bytes) -> tuple[np.ndarray, np.ndarray]:
    document = read(body)
    predictions = document.value("predictions", arrays={()}).to_array("predictions")
    return predictions, document.value("targets", arrays={()}).to_array("targets")


def speed(size: int, repeats: int) -> None:
    print(f"speed: two ({size}, {size}) arrays of random doubles, best of {repeats}")
    print(f"{'writer':<14}{'MB':>7}{'baseline':>11}{'orjson':>10}{'jsonread':>11}"
          f"{'/baseline':>11}{'/orjson':>9}")  # fmt: skip
    for writer in ("orjson.dumps", "json.dumps"):
        body = numeric_body(size, writer)
        ours, theirs = jsonread(body), baseline(body)
        for mine, reference in zip(ours, theirs, strict=True):
            assert np.array_equal(mine.view(np.uint64), reference.view(np.uint64))
        base, floor, mine = best_times(
            [
                lambda body=body: baseline(body),
                lambda body=body: orjson.loads(body),
                lambda body=body: jsonread(body),
            ],
            repeats,
        )
        print(
            f"{writer:<14}{len(body) / 1e6:>7.1f}{base * 1e3:>9.1f}ms{floor * 1e3:>8.1f}ms"
            f"{mine * 1e3:>9.1f}ms{mine / base:>11.2f}{mine / floor:>9.2f}"
        )


_WARM = "import time, service.api.jsonread as j; t = time.perf_counter(); j.warm(); print(time.perf_counter() - t)"


def compile_times() -> None:
    with tempfile.TemporaryDirectory() as cache:
        environment = {**os.environ, "NUMBA_CACHE_DIR": cache}
        seconds = []
        for _ in range(2):
            run = subprocess.run(
                [sys.executable, "-c", _WARM], env=environment, cwd=ROOT,
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            seconds.append(float(run.stdout.strip().splitlines()[-1]))
    print(
        f"numba: compile every kernel {seconds[0]:.1f} s; load them from the cache {seconds[1]:.2f} s"
    )


def memory() -> None:
    print("memory: RSS peak above the body (reading it), as a multiple of the body")
    run = subprocess.run(
        [sys.executable, "-m", "tests.system.jsonread_memory"], cwd=ROOT,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows: dict[str, dict[str, dict]] = {}
    for line in run.stdout.splitlines():
        result = json.loads(line)
        rows.setdefault(result["case"], {})[result["flow"]] = result
    print(f"{'body':<34}{'MB':>6}{'service':>10}{'python':>9}")
    for case, flows in rows.items():
        size = flows["service"]["body"] / 1e6
        print(
            f"{case:<34}{size:>6.1f}{flows['service']['ratio']:>9.2f}x{flows['python']['ratio']:>8.2f}x"
        )


def gil(size: int) -> None:
    body = numeric_body(size, "orjson.dumps")
    done = threading.Event()
    turns = 0

    def scan() -> None:
        read(body)
        done.set()

    started = time.perf_counter()
    worker = threading.Thread(target=scan)
    worker.start()
    while not done.is_set():
        turns += 1
    worker.join()
    seconds = time.perf_counter() - started
    print(f"GIL: the main thread ran {turns} loop turns during a {seconds * 1e3:.0f} ms scan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    options = parser.parse_args(argv)
    warm()
    speed(options.size, options.repeats)
    gil(options.size)
    if not options.skip_compile:
        compile_times()
    if not options.skip_memory:
        memory()


if __name__ == "__main__":
    main()
