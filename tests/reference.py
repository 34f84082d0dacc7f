"""Naive, obviously-right references for the regression losses and the reduction.

Nothing here imports from ``service``: every formula is re-typed from ../shared/LOSSES.md and
the reduction from the "Conventions for every loss" section of ../shared/API.md, as plain
Python loops over floats with the ``math`` module. Sums use ``math.fsum`` (exactly rounded), so
the reference is at least as accurate as the service and its finite differences are not
polluted by summation error. Speed does not matter; the inputs in the tests are small.

``params`` are plain dicts; a missing key takes the default stated in LOSSES.md, so the service's
defaults are checked too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Params = Mapping[str, Any]
ElementLoss = Callable[[float, float, Params], float]

LOG_2 = math.log(2.0)
# cosh overflows float64 beyond |d| ~ 710. From |d| = 300 on, log cosh d = |d| - log 2 +
# log1p(exp(-2|d|)) and exp(-600) < 1e-260 is far below half an ulp of |d| - log 2, so
# |d| - log 2 is the exactly rounded value there; below 300, log(cosh d) is the definition.
LOG_COSH_LINEAR_FROM = 300.0


def mse(p: float, y: float, params: Params) -> float:
    """(p - y)^2."""
    d = p - y
    return d * d


def mae(p: float, y: float, params: Params) -> float:
    """|p - y|."""
    return abs(p - y)


def huber(p: float, y: float, params: Params) -> float:
    """d^2 / 2 if |d| <= delta, else delta (|d| - delta / 2); delta defaults to 1."""
    delta = params.get("delta", 1.0)
    d = p - y
    if abs(d) <= delta:
        return 0.5 * d * d
    return delta * (abs(d) - 0.5 * delta)


def smooth_l1(p: float, y: float, params: Params) -> float:
    """d^2 / (2 beta) if |d| < beta, else |d| - beta / 2; beta = 0 is |d|; beta defaults to 1."""
    beta = params.get("beta", 1.0)
    d = p - y
    if beta == 0.0:
        return abs(d)
    if abs(d) < beta:
        return 0.5 * d * d / beta
    return abs(d) - 0.5 * beta


def log_cosh(p: float, y: float, params: Params) -> float:
    """log(cosh(p - y)); |d| - log 2 where cosh would overflow (see LOG_COSH_LINEAR_FROM)."""
    d = p - y
    if abs(d) < LOG_COSH_LINEAR_FROM:
        return math.log(math.cosh(d))
    return abs(d) - LOG_2


def msle(p: float, y: float, params: Params) -> float:
    """(log(1 + p) - log(1 + y))^2, for p, y > -1."""
    r = math.log1p(p) - math.log1p(y)
    return r * r


def mape(p: float, y: float, params: Params) -> float:
    """100 |y - p| / max(|y|, eps); eps defaults to 1e-7."""
    eps = params.get("eps", 1e-7)
    return 100.0 * abs(y - p) / max(abs(y), eps)


def quantile(p: float, y: float, params: Params) -> float:
    """Pinball loss max(q r, (q - 1) r) with r = y - p; q defaults to 0.5."""
    q = params.get("quantile", 0.5)
    r = y - p
    return max(q * r, (q - 1.0) * r)


def poisson_nll(p: float, y: float, params: Params) -> float:
    """log_input (default): exp(p) - y p; else p - y log(p + eps), eps defaults to 1e-8."""
    if params.get("log_input", True):
        return math.exp(p) - y * p
    return p - y * math.log(p + params.get("eps", 1e-8))


REFERENCE_LOSSES: dict[str, ElementLoss] = {
    "mse": mse,
    "mae": mae,
    "huber": huber,
    "smooth_l1": smooth_l1,
    "log_cosh": log_cosh,
    "msle": msle,
    "mape": mape,
    "quantile": quantile,
    "poisson_nll": poisson_nll,
}


@dataclass(frozen=True)
class ReferenceResult:
    cost: float
    per_sample: list[float]
    sum: float
    weight_sum: float
    count: int


def flat(array: np.ndarray) -> list[float]:
    """The entries of an array in C order, as Python floats."""
    return [float(value) for value in np.asarray(array, dtype=np.float64).reshape(-1)]


def element_losses(name: str, predictions: np.ndarray, targets: np.ndarray, params: Params):
    """l_e for every entry, in C order (every entry of predictions is an element)."""
    loss = REFERENCE_LOSSES[name]
    return [loss(p, y, params) for p, y in zip(flat(predictions), flat(targets), strict=True)]


def reduce(
    losses: Sequence[float],
    n_samples: int,
    sample_weight: np.ndarray | None,
    mask: np.ndarray | None,
    reduction: str,
) -> ReferenceResult:
    """API.md, literally: w_e = sample_weight[i] * mask_e, then per_sample, sum, weight_sum, cost."""
    per_sample_elements = len(losses) // n_samples
    masks = flat(mask) if mask is not None else [1.0] * len(losses)
    weights = flat(sample_weight) if sample_weight is not None else [1.0] * n_samples
    per_sample = []
    weighted_losses = []
    element_weights = []
    for i in range(n_samples):
        start = i * per_sample_elements
        sample_losses = losses[start : start + per_sample_elements]
        sample_masks = masks[start : start + per_sample_elements]
        mask_total = math.fsum(sample_masks)
        masked_total = math.fsum(
            m * loss for m, loss in zip(sample_masks, sample_losses, strict=True)
        )
        per_sample.append(masked_total / mask_total if mask_total != 0 else 0.0)
        for m, loss in zip(sample_masks, sample_losses, strict=True):
            w = weights[i] * m
            element_weights.append(w)
            weighted_losses.append(w * loss)
    total = math.fsum(weighted_losses)
    weight_sum = math.fsum(element_weights)
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
    return reduce(losses, predictions.shape[0], sample_weight, mask, reduction)


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
