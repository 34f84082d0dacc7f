"""Scoring one loss on one batch: the stages in order, from validated arrays to a result.

structure (done by the caller: :mod:`service.api.v1.losses`) -> shape contract -> domain ->
kernel -> finiteness of the result -> reduction. Every route (the per-loss routes today,
composite evaluation and the inference protocol later) goes through :func:`compute`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service import reduction as reducing
from service.compute import parallel, work
from service.compute.deadline import current as current_deadline
from service.losses.registry import LossSpec
from service.validation.contracts import Batch, Inputs, check_sample_weight
from service.validation.errors import NonFiniteResult
from service.validation.finite import first_non_finite


@dataclass(frozen=True, slots=True)
class LossCall:
    """The pipeline's request for one loss: what every protocol adapter decodes into."""

    spec: LossSpec
    inputs: Inputs
    params: Any
    reduction: reducing.Reduction = "mean"
    gradient: bool = True
    #: Outputs go out as raw bytes (the estimate of their encoding is smaller).
    binary_outputs: bool = False

    def estimate(self) -> work.Estimate:
        return work.of_loss(self.spec, self.inputs, self.params, self.gradient, self.binary_outputs)

    def execute(self, threads: int, timings: list[tuple[str, float]] | None = None) -> LossResult:
        return compute(
            self.spec,
            self.inputs,
            self.params,
            self.reduction,
            self.gradient,
            threads=threads,
            timings=timings,
        )


@dataclass(frozen=True)
class LossResult:
    loss: str
    reduction: reducing.Reduction
    cost: float
    per_sample: np.ndarray
    gradient: np.ndarray | None
    sum: float
    weight_sum: float
    count: int
    extras: dict[str, Any] = field(default_factory=dict)
    #: Each sample's weight in ``sum`` and ``weight_sum`` (its sample weight times the sum of
    #: its element weights): ``sum = sample_weights @ per_sample``. Slices sum their samples'.
    sample_weights: np.ndarray | None = None


def compute(
    spec: LossSpec,
    inputs: Inputs,
    params: Any,
    reduction: reducing.Reduction = "mean",
    with_gradient: bool = True,
    *,
    threads: int = 1,
    timings: list[tuple[str, float]] | None = None,
) -> LossResult:
    """One loss on one batch. ``threads``: how many threads a large kernel call is split over;
    ``timings`` receives ``(loss, kernel seconds)`` for the caller's metrics."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # Overflow is not an exception here: every result is checked for finiteness below.
        return _compute(spec, inputs, params, reduction, with_gradient, threads, timings)


def _compute(
    spec: LossSpec,
    inputs: Inputs,
    params: Any,
    reduction: reducing.Reduction,
    with_gradient: bool,
    threads: int,
    timings: list[tuple[str, float]] | None,
) -> LossResult:
    deadline = current_deadline()
    if deadline is not None:
        deadline.check()
    batch = spec.contract.prepare(inputs, params)
    sample_weight = check_sample_weight(inputs.sample_weight, batch.n_samples)
    if spec.domain is not None:
        spec.domain(batch, params)
    weights = reducing.weigh(
        batch.n_samples, batch.elements_per_sample, batch.element_weights, sample_weight
    )
    if with_gradient:
        scale = reducing.gradient_scale(weights, reduction)
        gradient = np.empty(batch.gradient_shape)
    else:
        scale, gradient = reducing.NO_SCALE, reducing.NO_GRADIENT
    losses = np.empty(batch.n_samples * batch.elements_per_sample)
    started = time.perf_counter()
    parallel.run(
        spec.kernel,
        batch.kernel_arrays,
        scale,
        losses,
        gradient.reshape(-1),
        spec.kernel_arguments(params),
        threads=threads,
        seconds=work.loss_seconds(spec, inputs, params),
        deadline=deadline,
    )
    if timings is not None:
        timings.append((spec.name, time.perf_counter() - started))
    _require_finite(losses, batch, "loss")
    if with_gradient:
        _require_finite(gradient, batch, "gradient")
    reduced = reducing.reduce(losses, weights, reduction)
    if not np.isfinite(reduced.weight_sum):
        raise NonFiniteResult(
            ["body", "sample_weight"],
            "the sum of the weights overflows float64; scale sample_weight down",
        )
    if not (np.isfinite(reduced.sum) and np.isfinite(reduced.cost)):
        raise NonFiniteResult(
            ["body", "predictions"],
            "the weighted sum of the losses overflows float64 (every sample's loss is finite); "
            "scale predictions, targets or sample_weight down, or split the batch",
        )
    extras = spec.extras(batch, losses, weights, reduced, params) if spec.extras else {}
    return LossResult(
        loss=spec.name,
        reduction=reduction,
        cost=reduced.cost,
        per_sample=reduced.per_sample,
        gradient=gradient if with_gradient else None,
        sum=reduced.sum,
        weight_sum=reduced.weight_sum,
        count=batch.n_samples,
        extras=extras,
        sample_weights=(
            weights.per_sample_total
            if weights.sample is None
            else weights.sample * weights.per_sample_total
        ),
    )


def _require_finite(values: np.ndarray, batch: Batch, what: str) -> None:
    first = first_non_finite(values)
    if first is None:
        return
    sample = first // (values.size // batch.n_samples)
    raise NonFiniteResult(
        ["body", "predictions", sample],
        f"the {what} of sample {sample} is not finite (an overflow of float64, or a pole such "
        "as log(0) or a division by 0); check the predictions and targets of that sample",
    )
