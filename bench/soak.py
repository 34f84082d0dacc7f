"""Soak test: minutes of steady load at ~80 % of measured capacity; errors and memory growth.

    python -m bench.soak [--seconds 300] [--load 0.8] [--max-rss-growth 10]

1. Starts ``python -m service`` on a free 127.0.0.1 port (LOSS_SERVICE_LOG_LEVEL=warning, so
   no access log) and waits for ``/readyz`` 200.
2. Capacity: wrk at 16 connections for ``--capacity-seconds`` on a small request (N = 32 MSE,
   the request of bench/http.py), closed loop: requests/s when the server is saturated.
3. Soak: wrk for ``--seconds`` paced at ``--load`` x capacity. A Lua ``delay()`` gives every
   request a send slot ``start + k / rate`` (the thread's clock, through LuaJIT's FFI), so the
   aggregate rate is constant whatever the latency; if the server falls behind, requests go
   out at once and the achieved rate shows it. Latency is measured from the actual send, so it
   does not include time a late request spent behind its slot.
4. Meanwhile, the resident memory (VmRSS) of the server and all its descendants, from /proc,
   every ``--sample-every`` seconds. "Start" is the first sample after ``--warmup`` seconds of
   soak (allocator pools, caches and numba dispatch filled), "end" the last one.

Prints a markdown table; exits 1 if any request failed (non-2xx or a socket error) or the RSS
grew by more than ``--max-rss-growth`` percent from start to end. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from bench.http import ROOT, free_port, wait_ready, wrk

ROUTE = "/v1/losses/mse"
RESULT = re.compile(r"^SOAK (\{.*\})$", re.MULTILINE)

# Paced POST: ``delay()`` (ms) is asked before each request after a connection's first. Every
# request takes the next slot of a fixed-rate schedule shared by the thread's connections.
PACED_SCRIPT = """\
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } soak_timespec;
int clock_gettime(int clock_id, soak_timespec *tp);
]]
local now_spec = ffi.new("soak_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, now_spec)  -- CLOCK_MONOTONIC
  return tonumber(now_spec.tv_sec) * 1e3 + tonumber(now_spec.tv_nsec) / 1e6
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = @BODY@
local interval_ms = @INTERVAL_MS@
local start_ms = nil
local scheduled = 0

function delay()
  local now = now_ms()
  if start_ms == nil then start_ms = now end
  scheduled = scheduled + 1
  local slot = start_ms + scheduled * interval_ms
  if slot <= now then return 0 end
  return slot - now
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'SOAK {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def small_body() -> bytes:
    """N = 32 MSE, as in bench/http.py's small-request measure."""
    rng = np.random.default_rng(0)
    document = {"predictions": rng.normal(size=32), "targets": rng.normal(size=32)}
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


@contextmanager
def service(port: int, workers: int) -> Iterator[subprocess.Popen]:
    """``python -m service`` on ``port``, ready (``/readyz`` 200); terminated on exit."""
    arguments = [sys.executable, "-m", "service", "--port", str(port), "--workers", str(workers)]
    env = {**os.environ, "LOSS_SERVICE_LOG_LEVEL": "warning"}
    process = subprocess.Popen(arguments, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_ready(port, "/readyz")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's workers and their children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def rss_bytes(pid: int) -> int:
    """Summed VmRSS of ``pid`` and its descendants."""
    total = 0
    for process in descendants(pid):
        try:
            status = Path(f"/proc/{process}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total += int(match.group(1)) * 1024
    return total


@dataclass
class Sampler:
    """RSS samples ``(seconds since start, bytes)`` taken on a thread until stopped."""

    pid: int
    every: float
    samples: list[tuple[float, int]] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        started = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - started, rss_bytes(self.pid)))
            if self.stopped.wait(self.every):
                break
        self.samples.append((time.monotonic() - started, rss_bytes(self.pid)))


def paced_wrk(port: int, body: bytes, rate: float, connections: int, seconds: int) -> dict:
    """wrk at ``rate`` requests/s in total; the ``done()`` summary as a dict."""
    script_text = PACED_SCRIPT.replace("@BODY@", json.dumps(body.decode())).replace(
        "@INTERVAL_MS@", repr(1e3 / rate)
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(script_text)
    try:
        output = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
             "-s", script.name, f"http://127.0.0.1:{port}{ROUTE}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    match = RESULT.search(output)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    return json.loads(match.group(1))


def mib(size: float) -> float:
    return size / 2**20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=int, default=300, help="soak duration (300)")
    parser.add_argument("--capacity-seconds", type=int, default=10, help="capacity run (10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--load", type=float, default=0.8, help="fraction of capacity (0.8)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before RSS start (10)")
    parser.add_argument("--sample-every", type=float, default=2.0, help="RSS period, s (2)")
    parser.add_argument(
        "--max-rss-growth", type=float, default=10.0, help="fail past this RSS growth, %% (10)"
    )
    parser.add_argument("--workers", type=int, default=1, help="server workers (1)")
    args = parser.parse_args(argv)
    if not 0 < args.load <= 1:
        parser.error("--load must be in (0, 1]")
    if args.warmup >= args.seconds:
        parser.error("--warmup must be shorter than --seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("bench.soak needs wrk on PATH (Debian/Ubuntu: apt-get install wrk)")
    body = small_body()
    port = free_port()
    with service(port, args.workers) as process:
        print(f"service: pid {process.pid}, port {port}", file=sys.stderr)
        print(f"capacity: {args.capacity_seconds} s at {args.connections} connections",
              file=sys.stderr)  # fmt: skip
        capacity = wrk(port, body, args.connections, args.capacity_seconds)["rps"]
        target = args.load * capacity
        print(f"soak: {args.seconds} s at {target:.0f} req/s", file=sys.stderr)
        sampler = Sampler(process.pid, args.sample_every)
        sampling = threading.Thread(target=sampler.run, daemon=True)
        sampling.start()
        try:
            result = paced_wrk(port, body, target, args.connections, args.seconds)
        finally:
            sampler.stopped.set()
            sampling.join()
        alive = process.poll() is None
    settled = [size for seconds, size in sampler.samples if seconds >= args.warmup]
    start, end = settled[0], settled[-1]
    peak = max(size for _, size in sampler.samples)
    growth = end - start
    growth_percent = 100.0 * growth / start
    errors = sum(result[key] for key in ("connect", "read", "write", "status", "timeout"))
    achieved = result["requests"] / (result["duration_us"] / 1e6)
    rows = [
        ("capacity, req/s (closed loop, "
         f"{args.connections} connections, {args.capacity_seconds} s)", f"{capacity:.0f}", ""),
        (f"target, req/s ({args.load:.0%} of capacity)", f"{target:.0f}", ""),
        (f"achieved, req/s over {args.seconds} s", f"{achieved:.0f}",
         f"{achieved / target:.1%} of target"),
        ("requests", f"{result['requests']}", ""),
        ("errors (non-2xx + socket: connect/read/write/timeout)",
         f"{errors} ({result['status']} + {result['connect']}/{result['read']}/"
         f"{result['write']}/{result['timeout']})", "0"),
        ("latency p50 / p99 / max, ms",
         f"{result['p50_us'] / 1e3:.2f} / {result['p99_us'] / 1e3:.2f} / "
         f"{result['max_us'] / 1e3:.1f}", ""),
        (f"RSS samples (every {args.sample_every:g} s)", f"{len(sampler.samples)}", ""),
        (f"RSS at start (after {args.warmup:g} s) / end / max, MiB",
         f"{mib(start):.1f} / {mib(end):.1f} / {mib(peak):.1f}", ""),
        ("RSS growth, start to end", f"{mib(growth):+.1f} MiB ({growth_percent:+.1f} %)",
         f"<= {args.max_rss_growth:g} %"),
        ("server alive at the end", "yes" if alive else "NO", "yes"),
    ]  # fmt: skip
    print("| measure | value | goal |")
    print("|---|---:|---|")
    for name, value, goal in rows:
        print(f"| {name} | {value} | {goal} |")
    if achieved < 0.95 * target:
        print(
            f"note: achieved {achieved / target:.0%} of the target rate: the server (or a busy "
            "machine) could not keep up, so the soak ran closer to saturation than intended",
            file=sys.stderr,
        )
    failures = []
    if errors:
        failures.append(f"{errors} failed requests")
    if growth_percent > args.max_rss_growth:
        failures.append(f"RSS grew {growth_percent:.1f} % > {args.max_rss_growth:g} %")
    if not alive:
        failures.append("the server died")
    if failures:
        print("FAIL: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
