"""Kernel benchmark: every loss's kernel against vectorised NumPy (and PyTorch), in the same run.

    python -m bench.kernels [--sizes 10000 1000000] [--repeats 7] [--min-seconds 0.2]
                            [--threads T]

For each registered loss and size (number of prediction entries) it times, in one run:

- :mod:`bench.numpy_losses` computing the same element losses and mean-cost gradient;
- the kernel path the engine runs (contract views, output allocation, gradient scale, kernel)
  on one thread;
- the same path as the service runs it: through :func:`service.compute.parallel.run` with the
  service's kernel threads (``LOSS_SERVICE_KERNEL_THREADS``, default cores / workers). Calls
  under ``parallel.THRESHOLD`` prediction entries stay serial there, so this column differs
  from the one-thread column only above it;
- when ``import torch`` works, :mod:`bench.torch_losses`: the mean cost's forward pass and
  ``.backward()`` for the gradient with respect to the predictions, float64, with
  ``torch.set_num_threads`` set to the service's kernel threads. torch is not a dependency;
  without it the torch columns say "—".

Times are the best of ``--repeats`` rounds or more (until ``--min-seconds`` have passed); in
each round every contender runs once, in turn, so load from other work on the machine falls on
all of them alike. With torch, a 2 ms pause follows each call, so that torch's OpenMP threads,
which spin for a while after an operation, do not take a core from the next contender. The
figures to read are the ratios (NumPy time / kernel time, torch time / kernel time), since the
absolute times move with the machine's load. "max rel diff" is the largest difference of the
element losses and the gradient (NumPy), or of the cost and the gradient (torch), relative to
the largest magnitude.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable, Sequence

import numpy as np

import service.losses  # noqa: F401  (registers every loss)
from bench import numpy_losses
from service import reduction as reducing
from service.compute import parallel
from service.losses.registry import REGISTRY, LossSpec
from service.ops.memory import tune_allocator
from service.ops.settings import default_threads
from service.validation.contracts import Inputs

try:
    import torch

    from bench import torch_losses
except (ImportError, OSError):  # torch is optional: not a dependency of the service
    torch = None
    torch_losses = None

DASH = "—"

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
    return best_times([function], repeats)[0]


def best_times(
    functions: Sequence[Callable[[], object]],
    repeats: int,
    min_seconds: float = 0.0,
    settle: float = 0.0,
) -> list[float]:
    """Best time of each function over ``repeats`` rounds (more, until ``min_seconds`` have
    passed), the functions taking turns within every round. ``settle`` seconds of sleep after
    each call let an OpenMP pool (torch's) stop spinning before the next function is timed."""
    for function in functions:
        function()
    best = [float("inf")] * len(functions)
    started_all = time.perf_counter()
    rounds = 0
    while rounds < repeats or time.perf_counter() - started_all < min_seconds:
        for index, function in enumerate(functions):
            started = time.perf_counter()
            function()
            best[index] = min(best[index], time.perf_counter() - started)
            if settle:
                time.sleep(settle)
        rounds += 1
    return best


def service_threads() -> int:
    """The service's kernel threads per call: ``LOSS_SERVICE_KERNEL_THREADS``, else
    ``settings.default_threads(LOSS_SERVICE_WORKERS)`` (cores / workers), as in the settings."""
    configured = os.environ.get("LOSS_SERVICE_KERNEL_THREADS")
    if configured:
        return max(1, int(configured))
    return default_threads(int(os.environ.get("LOSS_SERVICE_WORKERS", "1")))


def kernel_call(
    spec: LossSpec, predictions: np.ndarray, targets: np.ndarray, threads: int | None = None
) -> Callable[[], object]:
    """The engine's kernel path: the kernel called directly (one thread), or with ``threads``
    through :func:`service.compute.parallel.run` as the engine calls it, which splits calls of
    ``parallel.THRESHOLD`` prediction entries or more."""
    params = spec.params(**BENCH_PARAMS.get(spec.name, {}))
    batch = spec.contract.prepare(Inputs(predictions, targets), params)
    n_elements = batch.n_samples * batch.elements_per_sample
    arguments = spec.kernel_arguments(params)

    weights = reducing.weigh(
        batch.n_samples, batch.elements_per_sample, batch.element_weights, None
    )

    def run() -> object:
        scale = reducing.gradient_scale(weights, "mean")  # as the engine makes it
        losses = np.empty(n_elements)
        gradient = np.empty(batch.gradient_shape)
        if threads is not None:
            parallel.run(
                spec.kernel,
                batch.kernel_arrays,
                scale,
                losses,
                gradient.reshape(-1),
                arguments,
                threads=threads,
            )
        else:
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


def torch_call(
    spec: LossSpec, predictions: np.ndarray, targets: np.ndarray
) -> Callable[[], object] | None:
    if torch_losses is None or spec.name not in torch_losses.NAMES:
        return None
    return torch_losses.call(spec.name, predictions, targets)


def check_same(
    spec: LossSpec, predictions: np.ndarray, targets: np.ndarray, threads: int | None = None
) -> float:
    """Largest relative difference between kernel and baseline: the two compute the same."""
    kernel_losses, kernel_gradient = kernel_call(spec, predictions, targets, threads)()
    numpy_losses_, numpy_gradient = numpy_call(spec, predictions, targets)()
    scale = max(np.abs(numpy_losses_).max(), 1e-300)
    worst = np.abs(kernel_losses - np.ravel(numpy_losses_)).max() / scale
    gradient_scale = max(np.abs(numpy_gradient).max(), 1e-300)
    return max(worst, np.abs(kernel_gradient - numpy_gradient).max() / gradient_scale)


def check_torch(spec: LossSpec, predictions: np.ndarray, targets: np.ndarray) -> float:
    """Largest relative difference between the kernel's mean cost and gradient and torch's."""
    kernel_losses, kernel_gradient = kernel_call(spec, predictions, targets)()
    cost, gradient = torch_call(spec, predictions, targets)()
    kernel_cost = kernel_losses.mean()  # the mean over samples (categorical) or entries
    worst = abs(cost.item() - kernel_cost) / max(abs(kernel_cost), 1e-300)
    gradient = gradient.numpy()
    gradient_scale = max(np.abs(kernel_gradient).max(), 1e-300)
    return max(worst, np.abs(gradient - kernel_gradient).max() / gradient_scale)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=0.2,
        help="keep taking rounds until this long has passed (more rounds for small sizes)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=service_threads(),
        help="kernel threads as the service runs (default: the service's, cores / workers)",
    )
    parser.add_argument(
        "--losses", nargs="+", metavar="NAME", help="only these losses (default: every loss)"
    )
    args = parser.parse_args(argv)
    threads = max(1, args.threads)
    # As in every worker of the service: freed buffers are reused, not handed back and
    # faulted in again on the next call (without it the first loss timed, mse, paid ~4 ms of
    # page faults per call on both sides and every ratio moved with the order).
    tuned = tune_allocator()
    rng = np.random.default_rng(0)
    print(
        f"# kernels vs vectorised NumPy ({platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}); best of "
        f">= {args.repeats} interleaved rounds; speed-up = NumPy time / kernel time; "
        f"allocator tuned as in the service: {'yes' if tuned else 'no (not glibc)'}"
    )
    print(
        f"# kernel 1T: one thread; kernel {threads}T: as the service runs it, "
        f"parallel.run with {threads} kernel threads (split only at >= "
        f"{parallel.THRESHOLD:,} prediction entries)"
    )
    if torch is None:
        print("# torch is not installed: the torch columns say —")
    else:
        torch.set_num_threads(threads)
        print(
            f"# torch {torch.__version__}: forward (reduction mean) + .backward(), float64, "
            f"torch.set_num_threads({torch.get_num_threads()}) = the service's kernel threads; "
            f"torch/kernel = torch time / kernel {threads}T time; — = no torch version here"
        )
    print(
        f"| loss | entries | NumPy ms | kernel 1T ms | speed-up 1T | kernel {threads}T ms | "
        f"speed-up {threads}T | max rel diff | torch ms | torch/kernel | torch max rel diff |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spec in REGISTRY.values():
        if not hasattr(numpy_losses, spec.name) or (args.losses and spec.name not in args.losses):
            continue
        for size in args.sizes:
            predictions, targets = make_inputs(spec, size, rng)
            difference = max(
                check_same(spec, predictions, targets),
                check_same(spec, predictions, targets, threads),
            )
            contenders = [
                numpy_call(spec, predictions, targets),
                kernel_call(spec, predictions, targets),
                kernel_call(spec, predictions, targets, threads),
            ]
            with_torch = torch_call(spec, predictions, targets)
            if with_torch is not None:
                torch_difference = check_torch(spec, predictions, targets)
                contenders.append(with_torch)
            settle = 0.002 if with_torch is not None else 0.0
            seconds = best_times(contenders, args.repeats, args.min_seconds, settle)
            numpy_seconds, single_seconds, service_seconds = seconds[:3]
            if with_torch is None:
                torch_columns = f"{DASH} | {DASH} | {DASH}"
            else:
                torch_seconds = seconds[3]
                torch_columns = (
                    f"{torch_seconds * 1e3:.3f} | {torch_seconds / service_seconds:.1f}x | "
                    f"{torch_difference:.1e}"
                )
            print(
                f"| {spec.name} | {predictions.size:,} | {numpy_seconds * 1e3:.3f} | "
                f"{single_seconds * 1e3:.3f} | {numpy_seconds / single_seconds:.1f}x | "
                f"{service_seconds * 1e3:.3f} | {numpy_seconds / service_seconds:.1f}x | "
                f"{difference:.1e} | {torch_columns} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
