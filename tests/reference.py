"""Naive, obviously-right references for every loss and for the reduction.

Nothing here imports from ``service``: every formula is re-typed from ../shared/LOSSES.md and
the reduction from the "Conventions for every loss" section of ../shared/API.md, as plain
Python loops over floats with the ``math`` module. The regression losses are here, the binary
and categorical ones in :mod:`tests.reference_classification`, the overlap, box and sequence
losses in :mod:`tests.reference_structured` (CTC in :mod:`tests.reference_ctc`). Sums use ``math.fsum`` (exactly
rounded), so the reference is at least as accurate as the service and its finite differences
are not polluted by summation error. Speed does not matter; the inputs in the tests are small.

Elements (API.md): every entry for the regression and binary losses; every position
``(n, d1, ...)`` of predictions ``(N, C, d1, ...)`` for the categorical ones, whose targets are
either dense (same shape) or integer labels ``(N, d1, ...)``; for the structured losses the
grid their record declares ((sample, class) pairs, boxes, tokens, sequences).

``params`` are plain dicts; a missing key takes the default stated in LOSSES.md, so the service's
defaults are checked too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.reference_classification import BINARY, DENSE, LABEL_WEIGHTS, LABELS
from tests.reference_structured import STRUCTURED

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


#: The expression the generic tests send to the custom loss (tests.samplers draws k > 0);
#: :func:`custom` evaluates it directly.
CUSTOM_EXPRESSION = "k * (p - y)**2 + softplus(y - p) * where(y > 0, 1, 0.5)"


def custom(p: float, y: float, params: Params) -> float:
    """CUSTOM_EXPRESSION typed as Python: k (p - y)^2 + log(1 + e^(y - p)) x (1 if y > 0 else
    0.5), with log(1 + e^d) as d + log1p(e^-d) beyond d = 30, where e^d alone would grow
    towards overflow."""
    assert params["expression"] == CUSTOM_EXPRESSION, params["expression"]
    k = params["constants"]["k"]
    d = y - p
    softplus = math.log1p(math.exp(d)) if d < 30.0 else d + math.log1p(math.exp(-d))
    return k * (p - y) ** 2 + softplus * (1.0 if y > 0 else 0.5)


REGRESSION: dict[str, ElementLoss] = {
    "mse": mse,
    "mae": mae,
    "huber": huber,
    "smooth_l1": smooth_l1,
    "log_cosh": log_cosh,
    "msle": msle,
    "mape": mape,
    "quantile": quantile,
    "poisson_nll": poisson_nll,
    "custom": custom,  # not a regression loss, but elementwise in (p, y) the same way
}
#: Every loss with a reference; the element-loss signature depends on the loss's layout.
REFERENCE_LOSSES: dict[str, Callable[..., Any]] = {
    **REGRESSION,
    **BINARY,
    **DENSE,
    **LABELS,
    **{name: record.losses for name, record in STRUCTURED.items()},
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


def has_class_axis(name: str) -> bool:
    """Categorical losses: predictions (N, C, d1, ...), an element per position (n, d1, ...)."""
    return name in DENSE or name in LABELS


def element_grid(
    name: str, shape: tuple[int, ...], params: Params | None = None
) -> tuple[int, ...]:
    """The shape of the element grid for predictions of ``shape`` (what ``mask`` must be); the
    overlap losses' grid depends on ``params["mode"]``."""
    if name in STRUCTURED:
        return STRUCTURED[name].grid(tuple(shape), params or {})
    if has_class_axis(name):
        return (shape[0], *shape[2:])
    return tuple(shape)


def class_vectors(array: np.ndarray) -> list[list[float]]:
    """(N, C, d1, ...) as one list of C floats per position (n, d1, ...), in C order."""
    samples, classes = array.shape[:2]
    view = np.asarray(array, dtype=np.float64).reshape(samples, classes, -1)
    return [
        [float(view[n, c, s]) for c in range(classes)]
        for n in range(samples)
        for s in range(view.shape[2])
    ]


def element_losses(
    name: str, predictions: np.ndarray, targets: np.ndarray, params: Params
) -> list[float]:
    """l_e for every element of the grid, in C order."""
    if name in STRUCTURED:
        return STRUCTURED[name].losses(predictions, targets, params)
    if name in REGRESSION:
        loss = REGRESSION[name]
        return [loss(p, y, params) for p, y in zip(flat(predictions), flat(targets), strict=True)]
    if name in BINARY:
        loss, columns = BINARY[name], predictions.shape[-1]
        pairs = enumerate(zip(flat(predictions), flat(targets), strict=True))
        return [loss(p, y, params, index % columns) for index, (p, y) in pairs]
    scores = class_vectors(predictions)
    if name in DENSE:
        return [
            DENSE[name](x, y, params) for x, y in zip(scores, class_vectors(targets), strict=True)
        ]
    return [LABELS[name](x, int(t), params) for x, t in zip(scores, flat(targets), strict=True)]


def element_weights(
    name: str, predictions: np.ndarray, targets: np.ndarray, params: Params, mask: np.ndarray | None
) -> list[float]:
    """The weight of each element inside its sample: mask x (for integer labels) the label's
    factor, i.e. 0 for ignore_index and class_weight[label] (API.md: w_e without
    sample_weight); for the structured losses mask x the factor their record declares."""
    size = math.prod(element_grid(name, predictions.shape, params))
    weights = flat(mask) if mask is not None else [1.0] * size
    if name in STRUCTURED:
        factors = STRUCTURED[name].weights(predictions, targets, params)
        if factors is not None:
            weights = [m * f for m, f in zip(weights, factors, strict=True)]
        return weights
    if name in LABELS:
        label_weight = LABEL_WEIGHTS[name]
        weights = [
            m * label_weight(int(t), params) for m, t in zip(weights, flat(targets), strict=True)
        ]
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
    if name in STRUCTURED:
        owners = STRUCTURED[name].owners(predictions, targets, params)
        flat_owners = owners.reshape(predictions.size, -1)
        return (flat_owners @ weights.reshape(-1)).reshape(predictions.shape)
    if has_class_axis(name):
        weights = np.expand_dims(weights, 1)
    return np.broadcast_to(weights, predictions.shape)


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
