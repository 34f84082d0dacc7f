"""Kernel time in running services against a native ``python -m service``, loss by loss.

    python -m bench.container --target container=http://127.0.0.1:18000
                              [--target generic=http://127.0.0.1:18001]
                              [--entries 1000000] [--rounds 9] [--losses mse quantile ...]
    python -m bench.container --numpy [--losses ...]


Starts a native ``python -m service`` from this checkout (numba compiling for this machine's
CPU, the default outside an image) on a free port, then, for every registered loss, sends the
same ``/v1/losses/<name>`` request to the native service and to each ``--target`` in turn,
round after round, and reads each request's time in its kernel from the service's own metric
(``loss_service_kernel_duration_seconds_sum`` for the loss, before and after the request). Only
the kernel is timed: decoding the body, validation and the answer are not.

Inputs: the regression, binary and categorical losses get bench/kernels.py's random inputs
(``--entries`` prediction entries); the others (boxes, overlap, sequence, custom) their
catalogue example tiled along the sample axis to about as many entries (per-sample params,
like CTC's ``target_lengths``, tiled with it).

Rounds interleave the services so a change of the machine's speed falls on all of them alike.
The table gives each service's median kernel time and its ratio to native (median over median),
and the ratio of the best times (best over best: the cleanest view when the machine is noisy).
The image's test (tests/system/test_image.py) checks two losses this way; the README's Docker
section gives this table for every loss. To see what the image's CPU levels buy, add a second
container run with ``-e NUMBA_CPU_NAME=generic`` (the SSE2 cache every x86-64 can run).

``--numpy``: the requests ask for the gradient too (the kernel computes it), and more columns
give vectorised NumPy's time for the same loss and gradient on the same arrays, timed in this
process after each loss's rounds, over native's kernel time: the kernels as the service runs
them (its kernel threads) against NumPy, through the service's own metric. NumPy twice: rerun
on the same arrays (in the caches), and "as served": each call after the caches were flushed
and the inputs written again, as a kernel in the service finds them after the JSON reader.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson

from bench import numpy_losses
from bench.http import free_port, serving
from bench.kernels import BENCH_PARAMS, DASH, make_inputs, numpy_call
from service.losses.registry import REGISTRY, LossSpec

KERNEL_SUM = re.compile(r'^loss_service_kernel_duration_seconds_sum\{loss="(\w+)"\} (\S+)$', re.M)
#: The families bench/kernels.py makes random inputs for; the others tile their example.
RANDOM_FAMILIES = ("regression", "binary", "categorical")
#: Keys of an example whose list is one entry per sample.
SAMPLE_KEYS = ("predictions", "targets", "mask", "sample_weights")


@dataclass(frozen=True)
class Service:
    name: str
    host: str
    port: int

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"{self.name}: {method} {path}: {response.status} {data[:300]!r}")
        return data

    def kernel_seconds(self) -> dict[str, float]:
        """Seconds each loss has spent in its kernel since the service started."""
        text = self.call("GET", "/metrics").decode()
        return {name: float(value) for name, value in KERNEL_SUM.findall(text)}

    def timed(self, loss: str, body: bytes) -> float:
        """One request's time in its kernel."""
        before = self.kernel_seconds().get(loss, 0.0)
        self.call("POST", f"/v1/losses/{loss}", body)
        return self.kernel_seconds()[loss] - before


def service_at(name: str, url: str) -> Service:
    parts = urlsplit(url if "//" in url else f"http://{url}")
    return Service(name, parts.hostname or "127.0.0.1", parts.port or 80)


def tiled(example: Mapping[str, Any], entries: int) -> dict[str, Any]:
    """The example repeated along its sample axis to about ``entries`` prediction entries."""
    samples = len(example["predictions"])
    per_sample = max(1, np.asarray(example["predictions"], dtype=np.float64).size // samples)
    copies = max(1, entries // (per_sample * samples))
    body: dict[str, Any] = {}
    for key, value in example.items():
        if key in SAMPLE_KEYS:
            body[key] = list(value) * copies
        elif key == "params":
            body[key] = {
                name: list(v) * copies if isinstance(v, list) and len(v) == samples else v
                for name, v in value.items()
            }
        else:
            body[key] = value
    return body


def request_body(
    spec: LossSpec, entries: int, rng: np.random.Generator, gradient: bool = False
) -> tuple[bytes, tuple[np.ndarray, np.ndarray] | None]:
    """A ``/v1/losses/<name>`` body of about ``entries`` prediction entries (cost only, or
    with the gradient), and its predictions and targets where they are random arrays."""
    arrays = None
    if spec.family in RANDOM_FAMILIES:
        arrays = make_inputs(spec, entries, rng)
        body: dict[str, Any] = {"predictions": arrays[0], "targets": arrays[1]}
        if spec.name in BENCH_PARAMS:
            body["params"] = BENCH_PARAMS[spec.name]
    else:
        body = tiled(spec.example, entries)
    body["include"] = ["cost", "gradient"] if gradient else ["cost"]
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), arrays


def last_level_cache_bytes() -> int:
    """The first CPU's last-level (L3) cache size from sysfs; 32 MiB where it cannot be read."""
    try:
        text = Path("/sys/devices/system/cpu/cpu0/cache/index3/size").read_text().strip()
    except OSError:
        return 32 << 20
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def served_state(arrays: Sequence[np.ndarray]) -> Callable[[int], None]:
    """A function to call before each timed call of round ``round_`` that leaves memory as a
    kernel in the service finds it: the caches flushed (twice the last-level cache written),
    then ``arrays`` written again with their first contents (as the JSON reader has just
    written the inputs), outputs in memory the caches do not hold."""
    originals = [array.copy() for array in arrays]
    flush = np.empty(2 * last_level_cache_bytes() // 8)

    def prepare(round_: int) -> None:
        flush.fill(float(round_))
        for array, original in zip(arrays, originals, strict=True):
            np.copyto(array, original)

    return prepare


def numpy_seconds(
    spec: LossSpec,
    arrays: tuple[np.ndarray, np.ndarray] | None,
    rounds: int,
    as_served: bool = False,
) -> tuple[float, float] | None:
    """Vectorised NumPy's best and median time for the loss and its gradient on ``arrays``
    (bench/numpy_losses.py), or None where it has no version of the loss.

    Rerun on the same arrays, NumPy finds them in the caches (up to 32 MB here), which the
    service's kernel never does: between two requests the JSON reader and encoder went over
    the whole body and answer. With ``as_served`` each call starts as a kernel in the service
    does (:func:`served_state`)."""
    if arrays is None or not hasattr(numpy_losses, spec.name):
        return None
    call = numpy_call(spec, *arrays)
    prepare = served_state(arrays) if as_served else None
    call()
    times = []
    for round_ in range(rounds):
        if prepare is not None:
            prepare(round_)
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


@dataclass(frozen=True)
class Times:
    """Each service's kernel times, one per round."""

    by_service: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.by_service[name])

    def best(self, name: str) -> float:
        return min(self.by_service[name])


def kernel_times(
    services: Sequence[Service], loss: str, body: bytes, rounds: int, warm: int = 1
) -> Times:
    """``rounds`` requests to each service, taking turns, after ``warm`` untimed ones each.

    Every timed request follows an untimed one to the same service, so each is timed with its
    allocator in the same state, that of a busy service: an idle one returns its free memory
    to the system after 0.5 s (service/ops/memory.py), and its next request's kernel then
    first-touches fresh pages for its outputs (2 ms more at 1e6 entries, say), which with
    several services taking turns would fall on some rounds and not others."""
    path = f"/v1/losses/{loss}"
    for _ in range(warm):
        for service in services:
            service.call("POST", path, body)
    times: dict[str, list[float]] = {service.name: [] for service in services}
    for _ in range(rounds):
        for service in services:
            service.call("POST", path, body)
            times[service.name].append(service.timed(loss, body))
    return Times(times)


def ratios(times: Times, name: str, baseline: str) -> tuple[float, float]:
    """(median / median, best / best) of ``name`` against ``baseline``."""
    return (
        times.median(name) / times.median(baseline),
        times.best(name) / times.best(baseline),
    )


def native_command(port: int) -> list[str]:
    return [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]


#: The native service as ``make run`` starts it: numba compiling for this machine's CPU (its
#: default; run the bench where LOSS_KERNEL_CACHES and NUMBA_CPU_NAME are unset), caching
#: beside the checkout's sources. No gRPC, only warnings logged.
NATIVE_ENV = {"LOSS_SERVICE_LOG_LEVEL": "warning", "LOSS_SERVICE_GRPC_PORT": "0"}


def table(
    specs: Sequence[LossSpec],
    services: Sequence[Service],
    entries: int,
    rounds: int,
    write: Callable[[str], None] = print,
    numpy: bool = False,
) -> dict[str, dict[str, tuple[float, float]]]:
    """Print the table; return each loss's (median ratio, best ratio) per non-native service.
    With ``numpy`` the requests ask for the gradient too, and two more columns give NumPy's
    time for the loss and its gradient over native's kernel time (medians, and bests)."""
    others = [service.name for service in services[1:]]
    baseline = services[0].name
    header = "".join(f" {name} ms | {name} / native (median, best) |" for name in others)
    extra = (
        " NumPy ms | NumPy / native (median, best) |"
        " NumPy as served ms | as served / native (median, best) |"
        if numpy
        else ""
    )
    write(f"| loss | family | entries | native ms |{header}{extra}")
    write("|---|---|---:|---:|" + "---:|---:|" * (len(others) + 2 * numpy))
    rng = np.random.default_rng(0)
    found: dict[str, dict[str, tuple[float, float]]] = {}
    for spec in specs:
        body, arrays = request_body(spec, entries, rng, gradient=numpy)
        times = kernel_times(services, spec.name, body, rounds)
        found[spec.name] = {name: ratios(times, name, baseline) for name in others}
        cells = "".join(
            f" {times.median(name) * 1e3:.3f} | "
            f"{found[spec.name][name][0]:.2f}x, {found[spec.name][name][1]:.2f}x |"
            for name in others
        )
        for as_served in (False, True) if numpy else ():
            measured = numpy_seconds(spec, arrays, rounds, as_served)
            if measured is None:
                cells += f" {DASH} | {DASH} |"
            else:
                best, median = measured
                cells += (
                    f" {median * 1e3:.3f} | {median / times.median(baseline):.1f}x, "
                    f"{best / times.best(baseline):.1f}x |"
                )
        size = np.asarray(orjson.loads(body)["predictions"], dtype=np.float64).size
        write(
            f"| {spec.name} | {spec.family} | {size:,} | "
            f"{times.median(baseline) * 1e3:.3f} |{cells}"
        )
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="a running service to compare with native, e.g. container=http://127.0.0.1:8000",
    )
    parser.add_argument(
        "--numpy",
        action="store_true",
        help="ask for the gradient too, and compare native's kernel time with NumPy's",
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--losses", nargs="+", help="only these losses (default: every one)")
    args = parser.parse_args(argv)
    if not args.target and not args.numpy:
        parser.error("give a --target, or --numpy, or both")
    targets = [service_at(*item.split("=", 1)) for item in args.target]
    specs = [spec for spec in REGISTRY.values() if not args.losses or spec.name in args.losses]
    port = free_port()
    with serving(native_command(port), port, "/readyz", NATIVE_ENV) as ready:
        print(
            f"# kernel time through loss_service_kernel_duration_seconds, {args.rounds} "
            f"interleaved rounds; native: python -m service on this machine "
            f"({os.cpu_count()} cores), ready in {ready:.1f} s"
        )
        services = [Service("native", "127.0.0.1", port), *targets]
        table(specs, services, args.entries, args.rounds, numpy=args.numpy)


if __name__ == "__main__":
    main()
