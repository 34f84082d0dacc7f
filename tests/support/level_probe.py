"""Run the exp/log-bound kernels and vmath's functions on fixed random inputs and save their
outputs: a probe that tests/kernels/test_fma_levels.py starts once per CPU level
(``NUMBA_CPU_NAME``, with a cache directory of its own), to compare the bits each level's
machine code gives.

    python -m tests.support.level_probe OUT.npz
"""

from __future__ import annotations

import sys

import numpy as np

import service.losses  # noqa: F401  (registers every loss)
from bench.kernels import BENCH_PARAMS, make_inputs
from bench.vmath import NAMES, VMATH, arguments, evaluate
from service.compute.engine import compute
from service.losses.registry import REGISTRY
from service.validation.contracts import Inputs

#: Exp/log-bound kernels that take vmath's functions in each of their forms: expm1_moderate and
#: log1p_half (log-cosh), log1p_finite (MSLE), exp (Poisson), the logistic's exp and log1p
#: (binary cross-entropy), the blocks' softmax with exp, log and log1p (categorical focal).
LOSSES = (
    "log_cosh",
    "msle",
    "poisson_nll",
    "binary_cross_entropy",
    "categorical_focal",
)
#: Not a multiple of any vector width: the loops' remainders run too.
ENTRIES = 40_003
#: Random arguments per vmath function, over its whole domain (bench/vmath.py).
ARGUMENTS = 1_000_000


def vmath_arguments(name: str) -> np.ndarray:
    return arguments(name, ARGUMENTS, np.random.default_rng(11))


def outputs() -> dict[str, np.ndarray]:
    arrays = {}
    for name in LOSSES:
        spec = REGISTRY[name]
        predictions, targets = make_inputs(spec, ENTRIES, np.random.default_rng(7))
        params = spec.params(**BENCH_PARAMS.get(name, {}))
        result = compute(spec, Inputs(predictions, targets), params, "mean", True)
        arrays[f"{name}.losses"] = result.per_sample
        assert result.gradient is not None
        arrays[f"{name}.gradient"] = result.gradient
    for name in NAMES:
        arrays[f"vmath.{name}"] = evaluate(VMATH, name, vmath_arguments(name))
    return arrays


if __name__ == "__main__":
    np.savez(sys.argv[1], **outputs())
