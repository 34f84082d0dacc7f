"""Hostile clients (issue 11): the review's findings 1-6, measured against fresh servers.

    python -m bench.hostile [--quick] [--root PATH] [--python PATH] [--only 1,3]

Each scenario starts its own ``python -m service`` (one worker, 127.0.0.1, a free port;
default settings unless the scenario says otherwise) from ``--root`` (default: this checkout)
with ``--python`` (default: this interpreter), so another checkout can be measured with this
venv: ``git -C /work/main worktree add /tmp/before HEAD`` then
``python -m bench.hostile --root /tmp/before``. The server runs with its working directory and
``PYTHONPATH`` at the root, and the script prints where ``service`` was imported from.

Clients are raw sockets (tests/system/hostile_clients.py, shared with
tests/system/test_hostile.py). Memory is the resident set of the server's process tree (worker
and decode helper, from /proc); "peak" is the growth of its summed ``VmHWM`` (reset before the
request) over its RSS before. CPU is the tree's ``utime + stime``. Latency probes run on their
own kept-alive connections during a scenario: ``/healthz`` every 20 ms, a small scoring request
(mse, N = 32) every 50 ms; a probe that gets no answer within 60 s counts as 60 s, and the sends
a stalled probe missed count as the waits they would have had (see ``Probe.latencies``).
Baselines that a ratio needs are measured in the same run: the idle probes, one orjson parse of
the same body in this process, gzip members at a tenth of the count, the kernel time per entry
of ``mse``.

Sizes are the review's, except: finding 1c sends 100 MB bodies (the review's were 200 MB, which
took a worker to 8.7 GB); finding 5 uses ``LOSS_SERVICE_MAX_WORK_SECONDS=1000`` where heavy
work must be admitted (else a fixed server refuses it) and
``LOSS_SERVICE_COMPUTE_TIMEOUT_SECONDS=5`` for the deadline. The expensive expression is a sum
of 64 distinct ``sin(p*ke299+k)`` (the review's 95 identical terms are computed once by the
compiler's common-subexpression step). ``--quick`` scales every size down (about a fifth) and
shortens the body timeout to 3 s; a full run takes about 6 minutes on the old code, less on the
fixed one. Every wait is bounded, so the script
finishes even when a server hangs or balloons.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from tests.system import hostile_clients as hostile
from tests.system.hostile_clients import MiB

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 300.0  # s; a checkout's first start compiles its kernels (numba cache)
PROBE_TIMEOUT = 60.0
MSE = "/v1/losses/mse"
CUSTOM = "/v1/losses/custom"
EVALUATE = "/v1/evaluate"
INFER = "/v2/models/mse/infer"
GZIP_JSON = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
HEAVY_SETTINGS = {
    "LOSS_SERVICE_MAX_WORK_SECONDS": "1000",
    "LOSS_SERVICE_COMPUTE_TIMEOUT_SECONDS": "5",
}


@dataclass
class Row:
    finding: str
    measure: str
    figure: str
    goal: str = ""


@dataclass
class Options:
    root: Path
    python: str
    quick: bool

    def size(self, full: float, quick: float) -> int:
        return int(quick if self.quick else full)


# ---- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(root: Path, settings: dict[str, str]) -> dict[str, str]:
    """This environment without LOSS_SERVICE_* or proxies, ``service`` importable from
    ``root`` first, plus ``settings``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LOSS_SERVICE_")
        and name.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    }
    env["PYTHONPATH"] = str(root)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def imported_from(options: Options) -> str:
    """Where ``python -m service`` run from ``root`` imports ``service`` from."""
    result = subprocess.run(
        [options.python, "-c", "import service; print(service.__file__)"],
        cwd=options.root,
        env=server_env(options.root, {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


class Service:
    """``python -m service --port P`` from ``root``; ready once it logs "ready:"."""

    def __init__(self, options: Options, settings: dict[str, str]) -> None:
        self.port = free_port()
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [options.python, "-m", "service", "--port", str(self.port)],
            cwd=options.root,
            env=server_env(options.root, settings),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self.pid = self.process.pid
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"no 'ready:' line in {READY_TIMEOUT:.0f} s") from None
            if line is None:
                raise RuntimeError(f"the server exited with {self.process.wait()}")
            if "ready:" in line:
                return

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "ready:" in line or "Traceback" in line:
                self.lines.put(line)
        self.lines.put(None)

    def alive(self) -> bool:
        try:
            return hostile.request(self.port, "GET", "/healthz", timeout=30).status == 200
        except (hostile.NoAnswer, OSError):
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):  # a decode helper left behind
            os.killpg(self.pid, signal.SIGKILL)


@contextlib.contextmanager
def serving(options: Options, **settings: str) -> Iterator[Service]:
    service = Service(options, settings)
    try:
        yield service
    finally:
        service.stop()


# ---- probes and measures --------------------------------------------------------------------


@dataclass
class Probe:
    """A request sent every ``every`` s on its own kept-alive connection, on a thread."""

    port: int
    method: str
    path: str
    body: bytes = b""
    every: float = 0.02
    times: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=PROBE_TIMEOUT + 5)

    def _run(self) -> None:
        headers = hostile.JSON_HEADERS if self.body else None
        connection: hostile.Connection | None = None
        while not self.stopped.is_set():
            started = time.monotonic()
            try:
                if connection is None:
                    connection = hostile.Connection(self.port, PROBE_TIMEOUT)
                response = connection.request(self.method, self.path, self.body, headers)
                self.times.append(response.seconds)
                self.statuses.append(response.status)
                if response.headers.get("connection") == "close":
                    connection.close()
                    connection = None
            except (hostile.NoAnswer, OSError):
                self.times.append(min(time.monotonic() - started, PROBE_TIMEOUT))
                self.statuses.append(0)
                if connection is not None:
                    connection.close()
                connection = None
            self.stopped.wait(self.every)
        if connection is not None:
            connection.close()

    def latencies(self) -> list[float]:
        """The samples, plus those a stalled probe could not send: a probe that waited ``t``
        for an answer missed the sends due every ``every`` s meanwhile, which would have
        waited ``t - every``, ``t - 2 every``, ... (the coordinated-omission correction of
        wrk2 and HdrHistogram; without it one 7 s stall is one sample among hundreds)."""
        samples = []
        for seconds in self.times:
            samples.append(seconds)
            missed = seconds - self.every
            while missed > 0 and len(samples) < 1_000_000:
                samples.append(missed)
                missed -= self.every
        return samples

    def summary(self) -> str:
        if not self.times:
            return "no samples"
        samples = self.latencies()
        p99, worst = np.percentile(samples, 99) * 1e3, max(samples) * 1e3
        bad = sum(status != 200 for status in self.statuses)
        failed = f", {bad} not 200" if bad else ""
        return f"p99 {p99:.0f} ms, max {worst:.0f} ms ({len(self.times)} sent{failed})"


def health_probe(port: int) -> Probe:
    return Probe(port, "GET", "/healthz", every=0.02)


def small_probe(port: int) -> Probe:
    return Probe(port, "POST", MSE, hostile.SMALL_MSE, every=0.05)


def idle_baseline(port: int, seconds: float = 2.0) -> tuple[Probe, Probe]:
    with health_probe(port) as health, small_probe(port) as small:
        hostile.pause(seconds)
    return health, small


def mib(size: float) -> str:
    return f"{size / MiB:+.0f} MiB"


def outcome(send: Callable[[], hostile.Response]) -> tuple[str, hostile.Response | None]:
    """``"200 in 1.23 s"`` (with the problem type, if any), or why there was no answer."""
    started = time.monotonic()
    try:
        response = send()
    except hostile.NoAnswer as error:
        return f"no answer ({error}) after {time.monotonic() - started:.1f} s", None
    except OSError as error:
        return f"connection error {error!r} after {time.monotonic() - started:.1f} s", None
    kind = ""
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        with contextlib.suppress(ValueError):
            kind = " " + str(response.json().get("type"))
    return f"{response.status}{kind} in {response.seconds:.2f} s", response


def with_peak(service: Service, send: Callable[[], hostile.Response]) -> tuple[str, int, object]:
    """``send()``'s outcome, the tree's peak RSS growth meanwhile, and the response."""
    before = hostile.rss_bytes(service.pid)
    hostile.reset_peak(service.pid)
    text, response = outcome(send)
    return text, hostile.peak_rss_bytes(service.pid) - before, response


def kernel_seconds(port: int, loss: str) -> float:
    """``loss_service_kernel_duration_seconds_sum`` of ``loss`` from /metrics."""
    text = hostile.request(port, "GET", "/metrics", timeout=30).body.decode()
    pattern = rf'^loss_service_kernel_duration_seconds_sum\{{[^}}]*loss="{loss}"[^}}]*\}} (\S+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else float("nan")


# ---- 1. memory kept after requests ----------------------------------------------------------


def repeated_growth(
    options: Options, body: bytes, count: int, settings: dict[str, str] | None = None
) -> tuple[str, int, int, int]:
    """Send ``body`` ``count`` times to a fresh server: statuses, and the settled RSS growth
    from the fresh server to after the first, and from after the first to after all."""
    with serving(options, **(settings or {})) as service:
        fresh = hostile.rss_bytes(service.pid)
        statuses: dict[str, int] = {}
        first = 0
        for index in range(count):
            text, _ = outcome(lambda: hostile.post_json(service.port, MSE, body, timeout=300))
            key = text.split(" in ")[0]
            statuses[key] = statuses.get(key, 0) + 1
            if index == 0:
                first = hostile.settled_rss(service.pid, service.port, at_most=0, within=1.0)
        last = hostile.settled_rss(service.pid, service.port, at_most=0, within=2.0)
        described = ", ".join(f"{n} x {status}" for status, n in statuses.items())
        return described, first - fresh, last - first, last


def finding_1(options: Options) -> list[Row]:
    rows = []
    count = options.size(30, 10)
    predictions = hostile.flat(240_000, b"0.12345678")
    body = hostile.document(predictions=predictions, targets=hostile.flat(239_999, b"0.12345678"))
    statuses, first, rest, _ = repeated_growth(options, body, count)
    per = rest / (count - 1) / len(body)
    rows += [
        Row("1a", f"{count} failed {len(body) / 1e6:.1f} MB requests (shape mismatch)", statuses),
        Row("1a", "settled RSS growth: fresh -> after 1st", mib(first)),
        Row(
            "1a",
            f"settled RSS growth: after 1st -> after {count}",
            f"{mib(rest)} ({per:.1f}x body per request)",
            "near 0",
        ),
    ]
    count = options.size(20, 6)
    body = hostile.document(
        predictions=hostile.matrix(1000, 1000, b"0.123456789012345"),
        targets=hostile.matrix(1000, 1000, b"0.987654321098765"),
    )
    statuses, first, rest, _ = repeated_growth(options, body, count)
    per = rest / (count - 1) / len(body)
    rows += [
        Row(
            "1b", f"{count} successful 1e6-entry mse requests of {len(body) / 1e6:.0f} MB", statuses
        ),
        Row("1b", "settled RSS growth: fresh -> after 1st", mib(first)),
        Row(
            "1b",
            f"settled RSS growth: after 1st -> after {count}",
            f"{mib(rest)} ({per:.1f}x body per request)",
            "near 0",
        ),
    ]
    entries = options.size(50_000_000, 10_000_000)
    settings = {} if not options.quick else {"LOSS_SERVICE_MAX_ELEMENTS": "5000000"}
    body = hostile.document(predictions=hostile.flat(entries, b"0"), targets=b"[0]")
    statuses, first, rest, last = repeated_growth(options, body, 3, settings)
    limit = settings.get("LOSS_SERVICE_MAX_ELEMENTS", "5e7 (default)")
    rows += [
        Row(
            "1c",
            f"3 bodies of {len(body) / 1e6:.0f} MB, {entries:.0e} elements (limit {limit})",
            statuses,
            "413",
        ),
        Row("1c", "settled RSS growth: fresh -> after 1st", mib(first)),
        Row(
            "1c",
            "settled RSS growth: after 1st -> after 3rd; RSS at the end",
            f"{mib(rest)}; {last / MiB:.0f} MiB",
            "near 0",
        ),
    ]
    del body
    return rows


# ---- 2. slow bodies ---------------------------------------------------------------------------


def stalled_scenario(
    options: Options, sockets: int, declared: int, body_timeout: float
) -> list[tuple[str, str, str]]:
    settings = {"LOSS_SERVICE_BODY_TIMEOUT_SECONDS": str(body_timeout)} if options.quick else {}
    results = []
    with serving(options, **settings) as service:
        stalled = [hostile.stalled_body(service.port, MSE, declared, b"{") for _ in range(sockets)]
        since = time.monotonic()
        try:
            early = sum(hostile.answered_yet(sock) for sock in stalled)
            statuses: dict[int, int] = {}
            with hostile.Connection(service.port, 30) as connection:
                for _ in range(20):
                    try:
                        status = connection.request(
                            "POST", MSE, hostile.SMALL_MSE, hostile.JSON_HEADERS
                        ).status
                    except (hostile.NoAnswer, OSError):
                        status = 0
                    statuses[status] = statuses.get(status, 0) + 1
            health = hostile.request(service.port, "GET", "/healthz", timeout=30).status
            described = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
            results.append(
                ("20 scoring requests on another connection while held", described, "20 x 200")
            )
            results.append(("/healthz while held", str(health), "200"))
            results.append(
                (
                    "stalled requests answered at once (before any timeout)",
                    f"{early} of {sockets}",
                    "0",
                )
            )
            deadline = since + body_timeout + 5.0
            answers: dict[str, int] = {}
            times = []
            for sock in stalled:
                try:
                    response = hostile.read_response(sock, deadline)
                    key = f"{response.status}"
                    if response.status == 408:
                        times.append(time.monotonic() - since)
                        key += " " + str(response.json().get("type"))
                except (hostile.NoAnswer, OSError, ValueError):
                    key = "none"
                answers[key] = answers.get(key, 0) + 1
            waited = f"{body_timeout + 5:.0f} s"
            described = ", ".join(f"{n} x {key}" for key, n in sorted(answers.items()))
            results.append(
                (
                    f"answers of the stalled requests within {waited}",
                    described,
                    f"{sockets} x 408 /problems/request-timeout",
                )
            )
            if times:
                results.append(
                    (
                        "408s arrived after (s since the stall)",
                        f"{min(times):.1f} to {max(times):.1f}",
                        f"~{body_timeout:g} (BODY_TIMEOUT)",
                    )
                )
        finally:
            for sock in stalled:
                sock.close()
    return results


def finding_2(options: Options) -> list[Row]:
    body_timeout = 3.0 if options.quick else 10.0
    rows = []
    for label, sockets, declared in (("2a", 4, 256 * MiB), ("2b", 70, 10)):
        shown = f"{declared // MiB} MiB" if declared >= MiB else f"{declared} bytes"
        name = f"{sockets} sockets declaring {shown}, 1 byte sent"
        rows.append(Row(label, name, f"BODY_TIMEOUT {body_timeout:g} s"))
        for measure, figure, goal in stalled_scenario(options, sockets, declared, body_timeout):
            rows.append(Row(label, measure, figure, goal))
    return rows


# ---- 3. memory inflated by JSON structure ------------------------------------------------------


def finding_3(options: Options) -> list[Row]:
    rows = []
    with serving(options) as service:
        health, _ = idle_baseline(service.port, 1.0)
        rows.append(Row("3", "/healthz idle (baseline)", health.summary()))
        body = hostile.document(
            predictions=b"[0.5]", targets=b"[0.5]", junk=hostile.nested_of_size(30, 12_000_000)
        )
        with health_probe(service.port) as health:
            text, peak, _ = with_peak(
                service, lambda: hostile.post_json(service.port, MSE, body, timeout=120)
            )
        rows += [
            Row(
                "3a",
                f"{len(body) / 1e6:.0f} MB body, unknown field of arrays 30 deep",
                text,
                "422 /problems/invalid-structure",
            ),
            Row("3a", "peak RSS growth", f"{mib(peak)} ({peak / len(body):.0f}x body)", "<= 10x"),
            Row("3a", "/healthz meanwhile", health.summary(), "p99 <= 100 ms"),
        ]
        decoded = hostile.infer_body(
            1, junk=hostile.nested_of_size(30, options.size(49_600_000, 10_000_000))
        )
        gzipped = hostile.gzip_member(decoded)
        with health_probe(service.port) as health:
            text, peak, _ = with_peak(
                service,
                lambda: hostile.request(service.port, "POST", INFER, gzipped, GZIP_JSON, 180),
            )
        rows += [
            Row(
                "3b",
                f"/v2 gzip {len(gzipped) / 1e3:.0f} KB -> {len(decoded) / 1e6:.1f} MB "
                "of arrays 30 deep",
                text,
                "400 /problems/invalid-structure",
            ),
            Row(
                "3b",
                "peak RSS growth",
                f"{mib(peak)} ({peak / len(decoded):.0f}x decoded)",
                "<= 10x",
            ),
            Row("3b", "/healthz meanwhile", health.summary(), "p99 <= 100 ms"),
        ]
        count = options.size(5_500_000, 1_100_000)
        values = hostile.flat(count, b"0.123456789012345")
        valid = hostile.document(predictions=values, targets=values)
        del values
        started = time.process_time()
        orjson.loads(valid)
        one_parse = time.process_time() - started
        malformed = valid[:-1]
        del valid
        before = hostile.cpu_seconds(service.pid)
        with health_probe(service.port) as health:
            text, peak, _ = with_peak(
                service, lambda: hostile.post_json(service.port, MSE, malformed, timeout=180)
            )
        used = hostile.cpu_seconds(service.pid) - before
        rows += [
            Row(
                "3c",
                f"{len(malformed) / 1e6:.0f} MB malformed body (last '}}' missing)",
                text,
                "400 /problems/malformed-json",
            ),
            Row(
                "3c",
                "server CPU; one orjson parse of it here (baseline)",
                f"{used:.2f} s; {one_parse:.2f} s ({used / one_parse:.1f}x)",
                "~1x (parsed once)",
            ),
            Row(
                "3c",
                "peak RSS growth",
                f"{mib(peak)} ({peak / len(malformed):.1f}x body)",
                "<= 10x",
            ),
            Row("3c", "/healthz meanwhile", health.summary(), "p99 <= 100 ms"),
        ]
        rows.append(Row("3", "server alive afterwards", "yes" if service.alive() else "NO", "yes"))
    return rows


# ---- 4. gzip members --------------------------------------------------------------------------


def finding_4(options: Options) -> list[Row]:
    rows = []
    members = options.size(100_000, 50_000)
    with serving(options) as service:
        costs = {}
        for count in (members // 10, members):
            body = hostile.gzip_members(hostile.infer_body(2), count)
            before = hostile.cpu_seconds(service.pid)
            text, _ = outcome(
                lambda body=body: hostile.request(service.port, "POST", INFER, body, GZIP_JSON, 300)
            )
            costs[count] = hostile.cpu_seconds(service.pid) - before
            rows.append(
                Row(
                    "4a",
                    f"{count} empty gzip members ({len(body) / 1e6:.1f} MB)",
                    f"{text}, {costs[count]:.2f} s CPU",
                    "200",
                )
            )
        ratio = costs[members] / max(costs[members // 10], 0.01)
        rows.append(
            Row(
                "4a",
                f"CPU ratio {members} / {members // 10} members",
                f"{ratio:.0f}x",
                "~10x (linear); 100x is quadratic",
            )
        )
        heavy_members = options.size(245_000, 50_000)
        body = hostile.gzip_members(hostile.infer_body(2), heavy_members)
        senders = []
        for _ in range(2):
            sock = hostile.connect(service.port, 300)
            sock.sendall(hostile.request_bytes("POST", INFER, body, GZIP_JSON))
            senders.append(sock)
        hostile.cpu_grows(service.pid, by=0.3, within=10)
        text, _ = outcome(lambda: hostile.post_json(service.port, MSE, hostile.SMALL_MSE, 300))
        rows.append(
            Row(
                "4b",
                f"small request behind two {len(body) / 1e6:.1f} MB bodies of "
                f"{heavy_members} members",
                text,
                "200 in < 0.25 s",
            )
        )
        for sock in senders:
            with contextlib.suppress(hostile.NoAnswer, OSError):
                hostile.read_response(sock, time.monotonic() + 300)
            sock.close()
    return rows


# ---- 5. expensive work ------------------------------------------------------------------------


def finding_5(options: Options) -> list[Row]:
    rows = []
    heavy_entries = options.size(2_000_000, 1_000_000)
    with serving(options, **HEAVY_SETTINGS) as service:
        # Cost per entry, kernel against kernel (the metrics' kernel time), same server.
        mse_entries, custom_entries = 1_000_000, 100_000
        hostile.post_json(service.port, MSE, hostile.mse_body(mse_entries), timeout=120)
        mse_kernel = kernel_seconds(service.port, "mse")
        hostile.post_json(service.port, CUSTOM, hostile.custom_body(custom_entries), timeout=300)
        custom_kernel = kernel_seconds(service.port, "custom")
        ratio = (custom_kernel / custom_entries) / (mse_kernel / mse_entries)
        rows.append(
            Row(
                "5",
                "expensive expression: kernel time per entry / mse's",
                f"{ratio:.0f}x ({custom_kernel / custom_entries * 1e6:.1f} us per entry)",
                "known before it runs",
            )
        )

        # Small requests and /healthz while two heavy requests compute.
        idle_health, idle_small = idle_baseline(service.port)
        rows.append(
            Row(
                "5c",
                "idle: /healthz; small requests (baselines)",
                f"{idle_health.summary()}; {idle_small.summary()}",
            )
        )
        body = hostile.custom_body(heavy_entries)
        with health_probe(service.port) as health, small_probe(service.port) as small:
            started = time.monotonic()
            heavy = [hostile.Abandoned.send(service.port, CUSTOM, body) for _ in range(2)]
            statuses = []
            for request in heavy:
                try:
                    response = hostile.read_response(request.sock, started + 60)
                    statuses.append(f"{response.status} at {time.monotonic() - started:.1f} s")
                except (hostile.NoAnswer, OSError):
                    statuses.append("none in 60 s")
                request.hang_up()
        rows += [
            Row("5c", f"two heavy requests ({heavy_entries:.0e} entries)", ", ".join(statuses)),
            Row("5c", "/healthz while they run", health.summary(), "p99 <= 100 ms"),
            Row("5c", "small requests while they run", small.summary(), "p99 <= 250 ms"),
        ]
        hostile.cpu_settles(service.pid, within=60)

        # The client goes away.
        heavy_one = hostile.Abandoned.send(service.port, CUSTOM, body)
        hostile.cpu_grows(service.pid, by=1.0, within=30)
        heavy_one.hang_up()
        before = hostile.cpu_seconds(service.pid)
        settled = hostile.cpu_settles(service.pid, within=60)
        after = hostile.cpu_seconds(service.pid) - before
        rows.append(
            Row(
                "5e",
                "client hangs up after ~1 s of CPU: CPU used afterwards",
                f"{after:.1f} s; stopped after "
                + (f"{settled:.1f} s" if settled is not None else "> 60 s"),
                "~0 s, stops within 2 s",
            )
        )

        # The deadline (5 s here).
        text, _ = outcome(lambda: hostile.post_json(service.port, CUSTOM, body, timeout=60))
        settled = hostile.cpu_settles(service.pid, within=60)
        rows.append(
            Row(
                "5f",
                f"heavy request, COMPUTE_TIMEOUT 5 s ({heavy_entries:.0e} entries)",
                text,
                "504 /problems/deadline-exceeded at ~5 s",
            )
        )
        rows.append(
            Row(
                "5f",
                "CPU stops growing after the answer",
                f"{settled:.1f} s" if settled is not None else "> 60 s",
                "< 2 s",
            )
        )
        rows.append(Row("5", "server alive afterwards", "yes" if service.alive() else "NO", "yes"))
    with serving(options) as service:  # defaults: LOSS_SERVICE_MAX_WORK_SECONDS 10
        text, response = outcome(
            lambda: hostile.post_json(service.port, CUSTOM, hostile.custom_body(2_000_000), 120)
        )
        detail = ""
        if response is not None and response.status == 413:
            detail = f": {response.json().get('detail', '')[:300]}"
        rows.append(
            Row(
                "5a",
                "defaults: expensive expression on 2e6 entries",
                text + detail,
                "413 /problems/work-too-large, at once",
            )
        )
        terms = 16
        text, _ = outcome(
            lambda: hostile.post_json(
                service.port, EVALUATE, hostile.evaluate_body(100_000, terms), 120
            )
        )
        rows.append(
            Row(
                "5a",
                f"defaults: /v1/evaluate, {terms} such terms on 1e5 entries",
                text,
                "413 /problems/work-too-large, at once",
            )
        )
    return rows


# ---- 6. unbounded error list ------------------------------------------------------------------


def finding_6(options: Options) -> list[Row]:
    keys = options.size(1_000_000, 200_000)
    body = hostile.document(
        predictions=b"[0.5]", targets=b"[0.5]", params=hostile.unknown_params(keys)
    )
    with serving(options) as service:
        text, peak, response = with_peak(
            service, lambda: hostile.post_json(service.port, MSE, body, timeout=240)
        )
        rows = [
            Row(
                "6",
                f"params with {keys} unknown keys ({len(body) / 1e6:.0f} MB)",
                text,
                "422, small",
            ),
            Row("6", "peak RSS growth", f"{mib(peak)} ({peak / len(body):.0f}x body)", "<= 10x"),
        ]
        if response is not None:
            errors = "?"
            with contextlib.suppress(ValueError, AttributeError):
                errors = str(len(response.json().get("errors") or []))
            rows.append(
                Row(
                    "6",
                    "answer size; errors listed",
                    f"{len(response.body) / 1e3:.0f} KB; {errors}",
                    "< 20 KB; <= 21",
                )
            )
        rows.append(Row("6", "server alive afterwards", "yes" if service.alive() else "NO", "yes"))
    return rows


FINDINGS: dict[str, Callable[[Options], list[Row]]] = {
    "1": finding_1,
    "2": finding_2,
    "3": finding_3,
    "4": finding_4,
    "5": finding_5,
    "6": finding_6,
}


def checkout(root: Path) -> str:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", "service") else ""
    return f"{root} at {head}{dirty}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hostile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a fifth)")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose service to start")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the server")
    parser.add_argument("--only", default=",".join(FINDINGS), help="findings to run (1,2,...)")
    args = parser.parse_args(argv)
    options = Options(args.root.resolve(), args.python, args.quick)
    where = imported_from(options)
    print(f"server: {checkout(options.root)}; service from {where}", file=sys.stderr)
    if not Path(where).resolve().is_relative_to(options.root):
        sys.exit(f"{args.python} imports service from {where}, not from {options.root}")
    rows: list[Row] = []
    for name in args.only.split(","):
        started = time.monotonic()
        print(f"finding {name} ...", file=sys.stderr)
        try:
            found = FINDINGS[name.strip()](options)
        except Exception as error:  # one finding's trouble must not lose the others
            found = [Row(name, "the scenario failed", repr(error)[:200])]
        rows += found
        print(f"finding {name}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(
        f"\nhostile clients against {checkout(options.root)}"
        f"{' (--quick)' if options.quick else ''}\n"
    )
    print("| finding | measure | figure | goal |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row.finding} | {row.measure} | {row.figure} | {row.goal} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
