"""service/kernels/vmath.py against the C library's scalar functions: accuracy and speed.

    python -m bench.vmath [--count 100000000] [--size 1000000] [--repeats 15]

- accuracy: ``--count`` random arguments per function (drawn by :func:`arguments`, in batches
  of ``--batch``), the distance in ulps between vmath's result and libm's (``math.*`` compiled
  by numba: glibc's ``exp``, ``expm1``, ``log``, ``log1p``), as a histogram (0, 1, more) with
  the worst argument; NaN against NaN counts as 0;
- speed: one loop over ``--size`` arguments calling libm, one calling vmath and NumPy's ufunc
  (its own SIMD code) on the same array, interleaved in every round; best times and ratios.

The helpers here (:func:`ulp_distance`, :func:`arguments`, :data:`LIBM`) serve
tests/kernels/test_vmath.py too.
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np
from numba import njit

from service.kernels import vmath
from service.kernels.jit import JIT_OPTIONS

NAMES = ("exp", "expm1", "log", "log1p")


def elementwise(function):
    """A loop applying the element function ``function`` to every argument (not cached)."""

    @njit(**{**JIT_OPTIONS, "cache": False})
    def run(arguments, out):
        for i in range(arguments.size):
            out[i] = function(arguments[i])

    return run


@njit(error_model="numpy", nogil=True)
def _libm_exp(arguments, out):
    for i in range(arguments.size):
        out[i] = math.exp(arguments[i])


@njit(error_model="numpy", nogil=True)
def _libm_expm1(arguments, out):
    for i in range(arguments.size):
        out[i] = math.expm1(arguments[i])


@njit(error_model="numpy", nogil=True)
def _libm_log(arguments, out):
    for i in range(arguments.size):
        out[i] = math.log(arguments[i])


@njit(error_model="numpy", nogil=True)
def _libm_log1p(arguments, out):
    for i in range(arguments.size):
        out[i] = math.log1p(arguments[i])


#: The C library's functions over an array (numba compiles ``math.exp`` to a call of libm's).
LIBM = {"exp": _libm_exp, "expm1": _libm_expm1, "log": _libm_log, "log1p": _libm_log1p}
#: vmath's functions over an array, in a loop LLVM vectorises as it would a kernel's.
VMATH = {name: elementwise(getattr(vmath, name)) for name in NAMES}
NUMPY = {"exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p}


def evaluate(table: dict, name: str, arguments: np.ndarray) -> np.ndarray:
    out = np.empty_like(arguments)
    table[name](arguments, out)
    return out


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many float64 values lie between a and b (0 when equal, 1 for neighbours), through
    the ordered integer image of the bits; NaN against NaN is 0, NaN against a number is huge.
    """
    bits_a = a.view(np.int64)
    bits_b = b.view(np.int64)
    lowest = np.int64(np.iinfo(np.int64).min)
    ordered_a = np.where(bits_a < 0, lowest - bits_a, bits_a)  # -0.0 and +0.0 both map to 0
    ordered_b = np.where(bits_b < 0, lowest - bits_b, bits_b)
    with np.errstate(over="ignore"):
        distance = np.abs(ordered_a.astype(np.float64) - ordered_b.astype(np.float64))
        close = np.abs(ordered_a - ordered_b)  # exact where the float difference is small
    distance = np.where(distance < 2.0**52, close.astype(np.float64), distance)
    distance[np.isnan(a) & np.isnan(b)] = 0.0
    distance[np.isnan(a) != np.isnan(b)] = np.inf
    return distance


def _random_doubles(rng: np.random.Generator, count: int, low: float, high: float) -> np.ndarray:
    """Doubles with uniformly random bit patterns (every binade alike) in [low, high], low >= 0."""
    low_bits = np.array(low).view(np.int64)
    high_bits = np.array(high).view(np.int64)
    return rng.integers(low_bits, high_bits, count, endpoint=True).view(np.float64)


def arguments(name: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random arguments spanning the function's whole domain: a quarter uniform over
    the finite range where the result is neither 0 nor inf (for exp: [-746, 710]), a quarter
    with random bit patterns (every binade equally, subnormals included), a quarter near the
    reduction boundaries or 1, a quarter tiny."""
    part = count // 4
    rest = count - 3 * part
    if name in ("exp", "expm1"):
        magnitudes = _random_doubles(rng, part, 0.0, 746.0)
        pieces = [
            rng.uniform(-746.0, 710.0, rest),
            magnitudes * rng.choice([-1.0, 1.0], part),
            rng.uniform(-2.0, 2.0, part),
            rng.normal(0.0, 1e-4, part),
        ]
    elif name == "log":
        pieces = [
            np.exp(rng.uniform(-744.0, 709.0, rest)),
            _random_doubles(rng, part, 5e-324, np.finfo(np.float64).max),
            rng.uniform(0.5, 2.0, part),
            1.0 + rng.normal(0.0, 1e-6, part),
        ]
    else:
        pieces = [
            np.expm1(rng.uniform(-40.0, 709.0, rest)),
            _random_doubles(rng, part, 5e-324, np.finfo(np.float64).max),
            rng.uniform(-1.0, 2.0, part),
            rng.normal(0.0, 1e-6, part),
        ]
    return np.concatenate(pieces)


def accuracy(name: str, count: int, batch: int, seed: int = 0) -> tuple[int, int, float, float]:
    """(arguments tested, how many differ by 1 ulp, the largest distance, its argument)."""
    rng = np.random.default_rng(seed)
    tested = differing = 0
    worst, worst_argument = 0.0, math.nan
    while tested < count:
        values = arguments(name, min(batch, count - tested), rng)
        distance = ulp_distance(evaluate(VMATH, name, values), evaluate(LIBM, name, values))
        index = int(np.argmax(distance))
        if distance[index] > worst:
            worst, worst_argument = float(distance[index]), float(values[index])
        differing += int(np.count_nonzero(distance))
        tested += values.size
    return tested, differing, worst, worst_argument


def speed(name: str, size: int, repeats: int) -> tuple[float, float, float]:
    """Best seconds of (libm loop, vmath loop, NumPy ufunc) over ``size`` arguments."""
    rng = np.random.default_rng(1)
    domain = {
        "exp": rng.uniform(-20.0, 20.0, size),
        "expm1": rng.uniform(-2.0, 2.0, size),
        "log": rng.uniform(1e-3, 1e3, size),
        "log1p": rng.uniform(-0.9, 10.0, size),
    }[name]
    out = np.empty_like(domain)
    contenders = [
        lambda: LIBM[name](domain, out),
        lambda: VMATH[name](domain, out),
        lambda: NUMPY[name](domain, out=out),
    ]
    best = [math.inf] * len(contenders)
    for _ in range(repeats):
        for index, contender in enumerate(contenders):
            started = time.perf_counter()
            contender()
            best[index] = min(best[index], time.perf_counter() - started)
    return best[0], best[1], best[2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000_000)
    parser.add_argument("--batch", type=int, default=4_000_000)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    print(f"# vmath against libm ({platform.machine()}, numpy {np.__version__})")
    print("| function | libm ms | vmath ms | NumPy ms | libm / vmath | NumPy / vmath |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in NAMES:
        libm, mine, numpy = speed(name, args.size, args.repeats)
        print(
            f"| {name} | {libm * 1e3:.2f} | {mine * 1e3:.2f} | {numpy * 1e3:.2f} | "
            f"{libm / mine:.1f}x | {numpy / mine:.1f}x |",
            flush=True,
        )
    print("\n| function | arguments | differ by 1 ulp | max ulp | at |")
    print("|---|---:|---:|---:|---|")
    for name in NAMES:
        tested, differing, worst, where = accuracy(name, args.count, args.batch)
        print(f"| {name} | {tested:,} | {differing:,} | {worst:.0f} | {where!r} |", flush=True)


if __name__ == "__main__":
    main()
