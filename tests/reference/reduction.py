"""API.md's conventions, literally, over the element losses of :data:`REFERENCES`.

The reduction is typed again from the "Conventions for every loss" section of
../shared/API.md, as plain Python loops over floats: w_e = sample_weight[i] x v_e with v_e the
element's weight inside its sample (mask x the loss's own factor: class weight, ignore_index,
background), per_sample (weights v_e), sum, weight_sum and the cost. Sums use ``math.fsum``
(exactly rounded), so the reference is at least as accurate as the service and its finite
differences are not polluted by summation error. Nothing here imports from ``service``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.reference.losses import REFERENCES, flat

Params = Mapping[str, Any]


@dataclass(frozen=True)
class ReferenceResult:
    cost: float
    per_sample: list[float]
    sum: float
    weight_sum: float
    count: int


def has_class_axis(name: str) -> bool:
    """Categorical losses: predictions (N, C, d1, ...), an element per position (n, d1, ...)."""
    return REFERENCES[name].class_axis


def element_grid(
    name: str, shape: tuple[int, ...], params: Params | None = None
) -> tuple[int, ...]:
    """The shape of the element grid for predictions of ``shape`` (what ``mask`` must be); the
    overlap losses' grid depends on ``params["mode"]``."""
    return tuple(REFERENCES[name].grid(tuple(shape), params or {}))


def element_losses(
    name: str, predictions: np.ndarray, targets: np.ndarray, params: Params
) -> list[float]:
    """l_e for every element of the grid, in C order."""
    return REFERENCES[name](predictions, targets, params)


def element_weights(
    name: str, predictions: np.ndarray, targets: np.ndarray, params: Params, mask: np.ndarray | None
) -> list[float]:
    """The weight of each element inside its sample: mask x the loss's own factor, e.g. 0 for
    ignore_index and class_weight[label] for integer labels (API.md: w_e without
    sample_weight)."""
    size = math.prod(element_grid(name, predictions.shape, params))
    weights = flat(mask) if mask is not None else [1.0] * size
    factors = REFERENCES[name].weights(predictions, targets, params)
    if factors is not None:
        weights = [m * f for m, f in zip(weights, factors, strict=True)]
    return weights


def entry_weights(
    name: str,
    predictions: np.ndarray,
    targets: np.ndarray,
    params: Params,
    mask: np.ndarray | None,
    sample_weight: np.ndarray | None,
) -> np.ndarray:
    """Over the predictions' shape: the total weight w_e = sample_weight[i] x v_e of the elements
    each entry enters. Where it is 0 the entry's derivative is exactly 0 (a categorical
    position's weight covers its whole class vector; structured losses say which entries enter
    which element, e.g. CTC frames beyond input_lengths enter none)."""
    grid = element_grid(name, predictions.shape, params)
    weights = np.array(element_weights(name, predictions, targets, params, mask)).reshape(grid)
    if sample_weight is not None:
        weights = weights * np.asarray(sample_weight).reshape((-1,) + (1,) * (len(grid) - 1))
    owners = REFERENCES[name].owners(predictions, targets, params)
    flat_owners = owners.reshape(predictions.size, -1)
    return (flat_owners @ weights.reshape(-1)).reshape(predictions.shape)


def extras(
    name: str,
    losses: list[float],
    weights: list[float],
    sample_weight: np.ndarray | None,
    grid: tuple[int, ...],
    targets: np.ndarray,
    params: Params,
    mask: np.ndarray | None,
) -> dict[str, Any]:
    """The extras the loss reports (LOSSES.md): ``per_class`` of the overlap losses,
    ``perplexity`` and ``tokens`` of sequence cross-entropy; {} for the others. ``weights``
    are the inner weights (mask included)."""
    return REFERENCES[name].extras(losses, weights, sample_weight, grid, targets, params, mask)


def reduce(
    losses: Sequence[float],
    n_samples: int,
    sample_weight: np.ndarray | None,
    weights: Sequence[float] | None,
    reduction: str,
) -> ReferenceResult:
    """API.md, literally: w_e = sample_weight[i] * v_e with v_e the element's weight inside its
    sample (``weights``: mask, class weight, ignore; None = all 1), then per_sample (weights
    v_e), sum, weight_sum, cost."""
    per_sample_elements = len(losses) // n_samples
    inner = list(weights) if weights is not None else [1.0] * len(losses)
    samples = flat(sample_weight) if sample_weight is not None else [1.0] * n_samples
    per_sample = []
    weighted_losses = []
    total_weights = []
    for i in range(n_samples):
        start = i * per_sample_elements
        sample_losses = losses[start : start + per_sample_elements]
        sample_weights = inner[start : start + per_sample_elements]
        inner_total = math.fsum(sample_weights)
        inner_sum = math.fsum(
            v * loss for v, loss in zip(sample_weights, sample_losses, strict=True)
        )
        per_sample.append(inner_sum / inner_total if inner_total != 0 else 0.0)
        for v, loss in zip(sample_weights, sample_losses, strict=True):
            w = samples[i] * v
            total_weights.append(w)
            weighted_losses.append(w * loss)
    total = math.fsum(weighted_losses)
    weight_sum = math.fsum(total_weights)
    if reduction == "mean":
        cost = total / weight_sum if weight_sum != 0 else 0.0
    elif reduction == "sum":
        cost = total
    else:
        raise ValueError(f"unknown reduction {reduction!r}")
    return ReferenceResult(cost, per_sample, total, weight_sum, n_samples)


def reference_result(
    name: str,
    predictions: np.ndarray,
    targets: np.ndarray,
    params: Params,
    sample_weight: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    reduction: str = "mean",
) -> ReferenceResult:
    losses = element_losses(name, predictions, targets, params)
    weights = element_weights(name, predictions, targets, params, mask)
    return reduce(losses, predictions.shape[0], sample_weight, weights, reduction)


def reference_cost(
    name: str,
    predictions: np.ndarray,
    targets: np.ndarray,
    params: Params,
    sample_weight: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    reduction: str = "mean",
) -> float:
    """The cost alone: what the finite-difference gradient checks differentiate."""
    return reference_result(name, predictions, targets, params, sample_weight, mask, reduction).cost
