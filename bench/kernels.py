"""Kernel benchmark: every loss's kernel against vectorised NumPy, in the same run.

    python -m bench.kernels [--sizes 10000 1000000] [--repeats 7]

For each registered loss and size (number of prediction entries) it times the kernel path the
engine runs (contract views, output allocation, gradient scale, kernel) and
:mod:`bench.numpy_losses` computing the same element losses and mean-cost gradient. Times are
the best of ``--repeats`` runs; the figure to read is the ratio (NumPy time / kernel time),
since the absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

import service.losses  # noqa: F401  (registers every loss)
from bench import numpy_losses
from service.contracts import Inputs
from service.registry import REGISTRY, LossSpec

CLASSES = 10
#: Params for which the NumPy baseline computes the same thing as the kernel.
BENCH_PARAMS = {
    "binary_cross_entropy": {"from_logits": True},
    "binary_focal": {"from_logits": True},
    "categorical_cross_entropy": {"from_logits": True},
    "sparse_categorical_cross_entropy": {"from_logits": True},
    "categorical_focal": {"from_logits": True},
    "kl_divergence": {"from_logits": True},
}


def make_inputs(
    spec: LossSpec, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions with ``size`` entries and matching targets, inside the loss's domain."""
    if spec.family in ("regression", "binary"):
        shape = (size // 1000, 1000) if size >= 1000 else (1, size)
        if spec.name == "msle":
            return rng.uniform(0, 5, shape), rng.uniform(0, 5, shape)
        if spec.name == "poisson_nll":
            return rng.normal(size=shape), rng.poisson(2.0, shape).astype(np.float64)
        if spec.family == "binary":
            return rng.normal(0, 2, shape), rng.integers(0, 2, shape).astype(np.float64)
        return rng.normal(size=shape), rng.normal(size=shape)
    samples = size // CLASSES
    logits = rng.normal(0, 2, (samples, CLASSES))
    labels = rng.integers(0, CLASSES, samples)
    if spec.name in ("sparse_categorical_cross_entropy", "multi_margin"):
        return logits, labels.astype(np.float64)
    if spec.name == "kl_divergence":
        soft = rng.dirichlet(np.ones(CLASSES), samples)
        return logits, soft
    return logits, np.eye(CLASSES)[labels]


def best_time(function: Callable[[], object], repeats: int) -> float:
    function()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def kernel_call(
    spec: LossSpec, predictions: np.ndarray, targets: np.ndarray
) -> Callable[[], object]:
    params = spec.params(**BENCH_PARAMS.get(spec.name, {}))
    batch = spec.contract.prepare(Inputs(predictions, targets), params)
    n_elements = batch.n_samples * batch.elements_per_sample
    arguments = spec.kernel_args(params)

    def run() -> object:
        scale = np.full(n_elements, 1.0 / n_elements)
        losses = np.empty(n_elements)
        gradient = np.empty(batch.gradient_shape)
        spec.kernel(*batch.kernel_arrays, scale, losses, gradient.reshape(-1), *arguments)
        return losses, gradient

    return run


def numpy_call(
    spec: LossSpec, predictions: np.ndarray, targets: np.ndarray
) -> Callable[[], object]:
    baseline = getattr(numpy_losses, spec.name)
    if spec.name in ("sparse_categorical_cross_entropy", "multi_margin"):
        labels = targets.astype(np.int64)
        return lambda: baseline(predictions, labels)
    return lambda: baseline(predictions, targets)


def check_same(spec: LossSpec, predictions: np.ndarray, targets: np.ndarray) -> float:
    """Largest relative difference between kernel and baseline: the two compute the same."""
    kernel_losses, kernel_gradient = kernel_call(spec, predictions, targets)()
    numpy_losses_, numpy_gradient = numpy_call(spec, predictions, targets)()
    scale = max(np.abs(numpy_losses_).max(), 1e-300)
    worst = np.abs(kernel_losses - np.ravel(numpy_losses_)).max() / scale
    gradient_scale = max(np.abs(numpy_gradient).max(), 1e-300)
    return max(worst, np.abs(kernel_gradient - numpy_gradient).max() / gradient_scale)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(
        f"# kernels vs vectorised NumPy ({platform.machine()}, {platform.python_version()}, "
        f"numpy {np.__version__}); best of {args.repeats}; speed-up = NumPy time / kernel time"
    )
    print("| loss | entries | kernel ms | NumPy ms | speed-up | max rel diff |")
    print("|---|---:|---:|---:|---:|---:|")
    for spec in REGISTRY.values():
        if not hasattr(numpy_losses, spec.name):
            continue
        for size in args.sizes:
            predictions, targets = make_inputs(spec, size, rng)
            difference = check_same(spec, predictions, targets)
            kernel_seconds = best_time(kernel_call(spec, predictions, targets), args.repeats)
            numpy_seconds = best_time(numpy_call(spec, predictions, targets), args.repeats)
            print(
                f"| {spec.name} | {predictions.size:,} | {kernel_seconds * 1e3:.3f} | "
                f"{numpy_seconds * 1e3:.3f} | {numpy_seconds / kernel_seconds:.1f}x | "
                f"{difference:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
