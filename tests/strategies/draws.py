"""Random values inside each loss's domain (LOSSES.md): the parts
:mod:`tests.strategies.samplers` assembles.

Signatures, all drawing from a numpy Generator ``rng``:

- params ``(rng, kind, shape)``, with ``shape`` the predictions' shape (class_weight needs C,
  a per-entry pos_weight the last axis); ``from_logits`` is set by the caller from ``kind``;
- targets ``(rng, shape, params, smooth)``;
- predictions ``(rng, shape, targets, params, smooth)``;
- rough ``(predictions, targets, params)``: a boolean array of the predictions' shape, True
  where an entry is within :data:`KINK_MARGIN` of a kink and must be drawn again for a smooth
  (finite-difference) case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Params = dict[str, Any]
# Finite-difference steps are <= 1e-6 * max(1, |p|) <= 1e-5 for the values drawn here, so a
# margin of 1e-3 keeps both evaluation points on the same side of a kink.
KINK_MARGIN = 1e-3


def smooth_everywhere(predictions, targets, params):
    """No kinks."""
    return np.zeros(predictions.shape, dtype=bool)


def maybe_default(rng: np.random.Generator, key: str, value: Any) -> Params:
    """``{key: value}``, or ``{}`` three times in ten so the service's defaults are exercised."""
    return {} if rng.random() < 0.3 else {key: value}


def maybe(rng: np.random.Generator, probability: float, key: str, value: Any) -> Params:
    return {key: value} if rng.random() < probability else {}


def no_params(rng, kind, shape):
    return {}


# --- regression ----------------------------------------------------------------------------


def normal_targets(rng, shape, params, smooth):
    return rng.normal(0.0, 3.0, shape)


def near_targets(rng, shape, targets, params, smooth):
    """Predictions at a distance of every order from 0.01 to ~10 (and ~1000 once in a while)."""
    scale = rng.choice([0.1, 1.0, 3.0, 1000.0], p=[0.3, 0.3, 0.3, 0.1])
    return targets + rng.normal(0.0, scale, targets.shape)


def distance_kinks(kinks: Callable[[Params], list[float]]):
    """``rough`` for a loss of d = p - y whose kinks are at the given values of |d|."""

    def rough(predictions, targets, params):
        distance = np.abs(predictions - targets)
        near = np.zeros(predictions.shape, dtype=bool)
        for kink in kinks(params):
            near |= np.abs(distance - kink) < KINK_MARGIN
        return near

    return rough


def huber_params(rng, kind, shape):
    return maybe_default(rng, "delta", float(rng.uniform(0.1, 3.0)))


def huber_predictions(rng, shape, targets, params, smooth):
    # Distances spread around delta, so both branches are common.
    delta = params.get("delta", 1.0)
    return targets + rng.normal(0.0, 1.5 * delta, targets.shape)


def smooth_l1_params(rng, kind, shape):
    beta = 0.0 if rng.random() < 0.2 else float(rng.uniform(0.1, 3.0))
    return maybe_default(rng, "beta", beta)


def smooth_l1_predictions(rng, shape, targets, params, smooth):
    beta = params.get("beta", 1.0)
    return targets + rng.normal(0.0, 1.5 * max(beta, 0.5), targets.shape)


def smooth_l1_kinks(params):
    beta = params.get("beta", 1.0)
    return [0.0] if beta == 0.0 else [beta]


def msle_values(rng, shape, *rest):
    # The domain is (-1, inf); (-0.9, 5) keeps 1 + y >= 0.1 so the slopes stay moderate.
    return rng.uniform(-0.9, 5.0, shape)


def mape_params(rng, kind, shape):
    eps = 1e-7 if rng.random() < 0.5 else float(10.0 ** rng.uniform(-9, -2))
    return maybe_default(rng, "eps", eps)


def mape_targets(rng, shape, params, smooth):
    magnitude = rng.uniform(0.5, 5.0, shape)
    targets = magnitude * rng.choice([-1.0, 1.0], shape)
    if not smooth:
        # Zeros and values below eps exercise the max(|y|, eps) floor.
        special = rng.random(shape)
        targets[special < 0.1] = 0.0
        tiny = (special >= 0.1) & (special < 0.15)
        targets[tiny] = rng.uniform(-1e-9, 1e-9, int(tiny.sum()))
    return targets


def mape_predictions(rng, shape, targets, params, smooth):
    return targets + rng.normal(0.0, 1.0, targets.shape)


def quantile_params(rng, kind, shape):
    return maybe_default(rng, "quantile", float(rng.uniform(0.01, 0.99)))


def poisson_params(rng, kind, shape):
    params: Params = {}
    if rng.random() < 0.7:
        params["log_input"] = bool(rng.random() < 0.5)
    return params | maybe(rng, 0.5, "eps", float(10.0 ** rng.uniform(-10, -3)))


def poisson_targets(rng, shape, params, smooth):
    # Counts.
    return rng.integers(0, 9, shape).astype(np.float64)


def poisson_predictions(rng, shape, targets, params, smooth):
    if params.get("log_input", True):
        return rng.uniform(-3.0, 2.5, shape)  # log-rates
    return rng.uniform(0.05, 8.0, shape)  # rates


AT_ZERO = distance_kinks(lambda params: [0.0])

# --- shared by the classification losses ---------------------------------------------------


def eps_params(rng) -> Params:
    return maybe(rng, 0.4, "eps", float(10.0 ** rng.uniform(-9, -3)))


def focal_params(rng, kind, shape):
    gamma = rng.choice([0.0, 0.5, 1.0, 2.0, float(rng.uniform(0.0, 4.0))])
    alpha = None if rng.random() < 0.3 else float(rng.uniform(0.0, 1.0))
    return (
        maybe_default(rng, "gamma", float(gamma))
        | maybe_default(rng, "alpha", alpha)
        | eps_params(rng)
    )


def smoothing_params(rng) -> Params:
    return maybe(rng, 0.5, "label_smoothing", float(rng.choice([0.0, rng.uniform(0.0, 0.4)])))


def cross_entropy_params(rng, kind, shape):
    return smoothing_params(rng) | eps_params(rng)


def kl_params(rng, kind, shape):
    return eps_params(rng)


def probability_predictions(rng, shape, smooth) -> np.ndarray:
    """Uniform in [0, 1], with exact 0s and 1s and values within 1e-9 of them; smooth: inside
    [0.02, 0.98], where the clipping to [eps, 1 - eps] (eps <= 1e-3 here) is not active."""
    if smooth:
        return rng.uniform(0.02, 0.98, shape)
    values = rng.uniform(0.0, 1.0, shape)
    special = rng.random(shape)
    values[special < 0.05] = 0.0
    values[special > 0.95] = 1.0
    edge = (special >= 0.05) & (special < 0.1)
    values[edge] = rng.choice([1e-9, 1.0 - 1e-9], int(edge.sum()))
    return values


def logit_predictions(rng, shape, smooth) -> np.ndarray:
    """Normal logits; some of +-30 unless smooth."""
    values = rng.normal(0.0, 2.0 if smooth else 3.0, shape)
    if not smooth:
        large = rng.random(shape) < 0.05
        values[large] = rng.choice([-30.0, 30.0], int(large.sum()))
    return values


def probabilities_or_logits(rng, shape, targets, params, smooth):
    if params.get("from_logits", False):
        return logit_predictions(rng, shape, smooth)
    return probability_predictions(rng, shape, smooth)


# --- binary and multi-label ----------------------------------------------------------------


def bce_params(rng, kind, shape):
    params = smoothing_params(rng) | eps_params(rng)
    # pos_weight (logits only): one number, or one per entry of the last axis. The per-entry
    # form is drawn for rank >= 2 only, where the tests' reshuffling of samples keeps the last
    # axis intact.
    if kind == "logits" and rng.random() < 0.6:
        if len(shape) >= 2 and rng.random() < 0.5:
            params["pos_weight"] = rng.uniform(0.0, 4.0, shape[-1]).tolist()
        else:
            params["pos_weight"] = float(rng.uniform(0.0, 4.0))
    return params


def soft_or_hard_labels(rng, shape, params, smooth):
    """Targets in [0, 1]: six in ten exactly 0 or 1, the others soft."""
    targets = rng.uniform(0.0, 1.0, shape)
    hard = rng.random(shape) < 0.6
    targets[hard] = rng.integers(0, 2, int(hard.sum()))
    return targets


def hinge_params(rng, kind, shape):
    margin = float(rng.choice([0.0, rng.uniform(0.1, 2.0)], p=[0.2, 0.8]))
    return maybe_default(rng, "margin", margin)


def sign_labels(rng, shape, params, smooth):
    """{0, 1} or {-1, 1}, one convention per case (mixing them is a 422)."""
    labels = rng.integers(0, 2, shape).astype(np.float64)
    return labels if rng.random() < 0.5 else 2.0 * labels - 1.0


def score_predictions(rng, shape, targets, params, smooth):
    return rng.normal(0.0, 1.5, shape)


def hinge_rough(predictions, targets, params):
    signs = np.where(targets == 0.0, -1.0, targets)
    return np.abs(params.get("margin", 1.0) - signs * predictions) < KINK_MARGIN


# --- categorical ---------------------------------------------------------------------------


def one_hot(rng, shape) -> np.ndarray:
    labels = rng.integers(0, shape[1], (shape[0], *shape[2:]))
    return np.arange(shape[1]).reshape(1, -1, *([1] * (len(shape) - 2))) == labels[:, None]


def class_targets(rng, shape, params, smooth):
    """One-hot (half the cases), distributions over axis 1, or soft values that need not sum
    to 1 (LOSSES.md: one-hot or soft, in [0, 1])."""
    choice = rng.random()
    if choice < 0.5:
        return one_hot(rng, shape).astype(np.float64)
    if choice < 0.8:
        return np.moveaxis(rng.dirichlet(np.ones(shape[1]), (shape[0], *shape[2:])), -1, 1)
    return rng.uniform(0.0, 1.0, shape)


def distribution_targets(rng, shape, params, smooth):
    """Probability vectors over axis 1, with some exact zeros (0 log 0 = 0); sometimes
    unnormalised."""
    targets = class_targets(rng, shape, params, smooth)
    targets[rng.random(shape) < 0.2] = 0.0
    return targets


def hinge_targets(rng, shape, params, smooth):
    """One-hot (LOSSES.md); in non-smooth cases one in five is soft, which the formula takes."""
    if not smooth and rng.random() < 0.2:
        return rng.uniform(0.0, 1.0, shape)
    return one_hot(rng, shape).astype(np.float64)


def categorical_hinge_rough(predictions, targets, params):
    """Positions whose hinge is near 0, or whose largest (1 - y_c) p_c is near a tie."""
    candidates = np.sort((1.0 - targets) * predictions, axis=1)
    h = candidates[:, -1] - np.sum(targets * predictions, axis=1) + 1.0
    near = (np.abs(h) < KINK_MARGIN) | (candidates[:, -1] - candidates[:, -2] < KINK_MARGIN)
    return np.broadcast_to(np.expand_dims(near, 1), predictions.shape)


def label_targets(rng, shape, params, smooth, ignored: float = 0.0):
    """Integer labels (N, d1, ...) in [0, C), as floats; a fraction ``ignored`` set to
    ignore_index (default -100)."""
    grid = (shape[0], *shape[2:])
    labels = rng.integers(0, shape[1], grid).astype(np.float64)
    labels[rng.random(grid) < ignored] = params.get("ignore_index", -100)
    return labels


def sparse_targets(rng, shape, params, smooth):
    """Labels with about 15% ignore_index."""
    return label_targets(rng, shape, params, smooth, ignored=0.15)


def sparse_params(rng, kind, shape):
    classes = shape[1]
    params = smoothing_params(rng) | eps_params(rng)
    # ignore_index: the default -100, another negative, beyond the classes, or a class itself.
    ignore = rng.choice([-1, classes + 3, int(rng.integers(0, classes))])
    params |= maybe(rng, 0.5, "ignore_index", int(ignore))
    if rng.random() < 0.6:
        weights = rng.uniform(0.0, 3.0, classes)
        weights[rng.random(classes) < 0.15] = 0.0
        params["class_weight"] = weights.tolist()
    return params


def multi_margin_params(rng, kind, shape):
    margin = float(rng.choice([0.0, rng.uniform(0.2, 2.0)], p=[0.2, 0.8]))
    return maybe_default(rng, "margin", margin) | maybe_default(rng, "p", int(rng.integers(1, 3)))


def multi_margin_rough(predictions, targets, params):
    """Samples with a term m - x_t + x_j (j != t) near 0."""
    rows = np.arange(predictions.shape[0])
    labels = targets.astype(np.int64)
    h = params.get("margin", 1.0) - predictions[rows, labels][:, None] + predictions
    h[rows, labels] = np.inf
    near = np.any(np.abs(h) < KINK_MARGIN, axis=1)
    return np.broadcast_to(near[:, None], predictions.shape)
