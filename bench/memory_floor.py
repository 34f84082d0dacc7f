"""How close the memory-bound kernels are to the memory's own speed, and what that allows.

    python -m bench.memory_floor [--entries 1000000] [--rounds 31] [--threads T]

``mse`` and ``mae`` do a subtraction and a product or a sign per entry: their time is that of
moving the bytes (read predictions and targets, write the losses and the gradient, 8 bytes
each per entry). This times, in one run, with the service's kernel threads through
:func:`service.compute.parallel.run` as the engine calls the kernels:

- **copy**: a kernel that moves the same bytes with one addition per output (``losses[i] =
  p[i] + y[i]``, ``gradient[i] = p[i] - y[i]``): the floor for any kernel that writes these
  outputs;
- **copy, gradient only**: reads both inputs, writes their difference as the gradient: the
  floor of a kernel that would not write the per-entry losses when a request leaves
  ``per_sample`` out (summing them as it goes instead);
- the ``mse`` and ``mae`` kernels, and bench/numpy_losses.py's vectorised NumPy for them.

Each in two states, every contender taking its turn in every round: **rerun** (each timed
call right after the same call, ``RERUN_WARM`` times: inputs and outputs partly in the
last-level cache, as NumPy finds them in ``bench.kernels``; these times depend much on what
the cache holds) and **as served** (before each call the caches are flushed, twice the
last-level cache written, and the inputs written again, as the service's kernel finds them
after the JSON reader; what ``bench.container --numpy`` calls NumPy as served). Medians.

NumPy's time over the copy's is the most any kernel that writes the losses and the gradient
could reach against NumPy on this machine, whatever it computes; the kernel's time over the
copy's says how far it is from that.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from bench.container import last_level_cache_bytes, served_state
from bench.kernels import numpy_call, service_threads
from service.compute import parallel
from service.kernels.jit import kernel
from service.losses.registry import REGISTRY
from service.ops.memory import tune_allocator


@kernel
def copy(predictions, targets, scale, losses, gradient):
    """The bytes of an elementwise kernel with its gradient, one addition per output. (A plain
    copy, ``losses[i] = predictions[i]``, becomes two ``memcpy`` calls, whose large-size path
    differs: 0.85 against this loop's 0.58 ms on two threads here.)"""
    for i in range(predictions.size):
        losses[i] = predictions[i] + targets[i]
        gradient[i] = predictions[i] - targets[i]


@kernel
def copy_gradient_only(predictions, targets, scale, losses, gradient):
    """Both inputs read, the gradient alone written."""
    for i in range(predictions.size):
        gradient[i] = predictions[i] - targets[i]


#: Rerun: each timed call follows this many untimed calls of itself. After the previous
#: contender (NumPy's ~40 MB of arrays and temporaries) a kernel's arrays take a few calls to
#: come back into the last-level cache: mse 0.53, 0.47, 0.36 ms after 1, 3, 10 calls here.
RERUN_WARM = 3
#: Rerun: each round starts with this long of untimed calls of the first contender. After
#: NumPy's single-threaded calls the second core comes back slowly: the copy's time was 0.67 ms
#: first in the round without it, 0.47 with it, next to mse's 0.43-0.47 either way.
SPIN_SECONDS = 0.02


def medians(
    calls: dict[str, Callable[[], object]],
    inputs: tuple[np.ndarray, np.ndarray],
    rounds: int,
    as_served: bool,
) -> dict[str, float]:
    prepare = served_state(inputs) if as_served else None
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()
    first = next(iter(calls.values()))
    for round_ in range(rounds):
        if prepare is None:
            spin = time.perf_counter()
            while time.perf_counter() - spin < SPIN_SECONDS:
                first()
        for name, call in calls.items():
            if prepare is not None:
                prepare(round_)
            else:  # the same call just before (not whatever the previous contender left)
                for _ in range(RERUN_WARM):
                    call()
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--threads", type=int, default=service_threads())
    args = parser.parse_args(argv)
    tune_allocator()  # as in the service: freed outputs are reused, not faulted in again
    n, threads = args.entries, max(1, args.threads)
    rng = np.random.default_rng(0)
    predictions, targets = rng.standard_normal(n), rng.standard_normal(n)
    losses, gradient = np.empty(n), np.empty(n)
    scale = 1.0 / n

    def through_engine(function: Callable[..., None]) -> Callable[[], object]:
        return lambda: parallel.run(
            function, (predictions, targets), scale, losses, gradient, (), threads=threads
        )

    calls = {
        "copy": through_engine(copy),
        "copy, gradient only": through_engine(copy_gradient_only),
        "mse kernel": through_engine(REGISTRY["mse"].kernel),
        "mae kernel": through_engine(REGISTRY["mae"].kernel),
        "mse NumPy": numpy_call(REGISTRY["mse"], predictions, targets),
        "mae NumPy": numpy_call(REGISTRY["mae"], predictions, targets),
    }
    print(
        f"# {n:,} entries, {threads} kernel threads, medians of {args.rounds} interleaved "
        f"rounds; last-level cache {last_level_cache_bytes() >> 20} MiB"
    )
    print("| | rerun ms | as served ms |")
    print("|---|---:|---:|")
    states = {state: medians(calls, (predictions, targets), args.rounds, state == "served")
              for state in ("rerun", "served")}  # fmt: skip
    for name in calls:
        print(
            f"| {name} | {states['rerun'][name] * 1e3:.3f} | {states['served'][name] * 1e3:.3f} |"
        )
    print()
    print("| ratio | rerun | as served | NumPy rerun over kernel as served |")
    print("|---|---:|---:|---:|")
    for loss in ("mse", "mae"):
        for over, under in ((f"{loss} kernel", "copy"), (f"{loss} NumPy", "copy"),
                            (f"{loss} NumPy", "copy, gradient only"),
                            (f"{loss} NumPy", f"{loss} kernel")):  # fmt: skip
            rerun = states["rerun"][over] / states["rerun"][under]
            served = states["served"][over] / states["served"][under]
            mixed = states["rerun"][over] / states["served"][under]
            print(f"| {over} / {under} | {rerun:.2f} | {served:.2f} | {mixed:.2f} |")


if __name__ == "__main__":
    main()
