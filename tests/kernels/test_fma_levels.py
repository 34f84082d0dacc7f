"""vmath's polynomials fuse products and sums into FMA where the CPU has it (``jit.muladd``):
the same bits on every CPU level that has FMA, and within the functions' accuracy on the levels
without it.

A probe (tests/support/level_probe.py) runs the exp/log-bound kernels and vmath's four
functions in a process compiled for each level (``NUMBA_CPU_NAME``, a fresh cache each) on the
same random inputs: x86-64-v3 (AVX2 and FMA), x86-64-v4 (AVX-512) and this host's own CPU
(numba's default) must agree to the bit; every level's exp, expm1, log and log1p must be
within 1 ulp of libm's on 1e6 arguments each; ``generic`` (SSE2, no FMA) may differ from v3
in the last bits, by no more than a few units of 1e-16 of the entry (or of the array's
typical entry, where an entry is a difference that cancels), and does somewhere (else FMA
would not be in use and this test would not tell anything).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bench.vmath import LIBM, NAMES, evaluate, ulp_distance
from service.ops import cpu
from tests.support.level_probe import LOSSES, vmath_arguments
from tests.support.paths import ROOT

pytestmark = [
    pytest.mark.compiled,
    pytest.mark.skipif(
        not cpu.supports(cpu.cpu_flags(), "x86-64-v4"),
        reason="needs an x86-64 CPU with AVX-512 (x86-64-v4) to run every level's code",
    ),
]

#: The x86-64 levels, and ``host``: numba's default, this CPU with all its features (a
#: checkout's kernels, and the image's tuned cache).
LEVELS = ("generic", "x86-64-v3", "x86-64-v4", "host")
WITH_FMA = ("x86-64-v3", "x86-64-v4", "host")
KERNEL_KEYS = [f"{name}.{part}" for name in LOSSES for part in ("losses", "gradient")]
#: Compiling the probe for one level from an empty cache takes ~15 s here.
PROBE_TIMEOUT = 300


def probe(level: str, directory: Path) -> dict[str, np.ndarray]:
    out = directory / f"{level}.npz"
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")
    }
    environment |= {"NUMBA_CACHE_DIR": str(directory / level), "NUMBA_DISABLE_JIT": "0"}
    if level != "host":
        environment |= {"NUMBA_CPU_NAME": level, "NUMBA_CPU_FEATURES": ""}
    completed = subprocess.run(
        [sys.executable, "-m", "tests.support.level_probe", str(out)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with np.load(out) as saved:
        return {key: saved[key] for key in saved.files}


@pytest.fixture(scope="module")
def by_level(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    directory = tmp_path_factory.mktemp("levels")
    with ThreadPoolExecutor(len(LEVELS)) as pool:
        results = pool.map(lambda level: probe(level, directory), LEVELS)
        return dict(zip(LEVELS, results, strict=True))


@pytest.mark.parametrize("level", WITH_FMA[1:])
def test_every_level_with_fma_gives_the_same_bits(by_level: dict, level: str) -> None:
    v3, other = by_level["x86-64-v3"], by_level[level]
    assert sorted(v3) == sorted(other) == sorted(KERNEL_KEYS + [f"vmath.{n}" for n in NAMES])
    for key in v3:
        assert v3[key].tobytes() == other[key].tobytes(), (
            level,
            key,
            int(np.count_nonzero(v3[key] != other[key])),
        )


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", NAMES)
def test_every_level_is_within_one_ulp_of_libm(by_level: dict, level: str, name: str) -> None:
    values = vmath_arguments(name)
    distance = ulp_distance(by_level[level][f"vmath.{name}"], evaluate(LIBM, name, values))
    worst = int(np.argmax(distance))
    assert distance[worst] <= 1.0, (level, name, values[worst])


def test_without_fma_the_last_bits_only(by_level: dict) -> None:
    generic, v3 = by_level["generic"], by_level["x86-64-v3"]
    differing = 0
    for key in KERNEL_KEYS:
        assert np.isfinite(generic[key]).all() and np.isfinite(v3[key]).all()
        # Against the entry, or the array's typical size where the entry cancels (Poisson's
        # gradient rate - y, fused or not, near rate = y).
        scale = np.maximum(np.abs(v3[key]), np.sqrt(np.mean(v3[key] ** 2)))
        relative = np.abs(generic[key] - v3[key]) / scale
        assert relative.max() <= 4e-15, (key, float(relative.max()))
        differing += int(np.count_nonzero(generic[key] != v3[key]))
    assert differing > 0, "no result differs: the kernels do not use FMA on x86-64-v3"
