"""Scoring metrics in the tests: one metric's value, inputs from nested lists, drawn sample
weights and masks, and the same metric computed by scikit-learn (test-only) on the kept
entries (weights ``sample_weight[n] * mask``, ``zero_division=0.0``, the value of
scikit-learn's default ``"warn"`` without the warning).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

from service.scores import compute_metrics, parse_metrics
from service.validation.contracts import Inputs

CLASSIFICATION = ("accuracy", "precision", "recall", "f1")
AVERAGES = ("macro", "micro", "weighted")
WEIGHTINGS = ("none", "sample_weight", "mask", "both")
SKLEARN = {
    "accuracy": skm.accuracy_score,
    "precision": skm.precision_score,
    "recall": skm.recall_score,
    "f1": skm.f1_score,
    "roc_auc": skm.roc_auc_score,
    "r2": skm.r2_score,
    "rmse": skm.root_mean_squared_error,
    "mae": skm.mean_absolute_error,
}


def value(metric: str | dict[str, Any], inputs: Inputs) -> float:
    """The value of one metric (a name or ``{"name", "params"}``)."""
    (request,) = parse_metrics([metric])
    return compute_metrics([request], inputs)[request.name]


def make_inputs(predictions: Any, targets: Any, sample_weight: Any = None, mask: Any = None):
    as_array = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    return Inputs(as_array(predictions), as_array(targets), as_array(sample_weight), as_array(mask))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def draw_weights(rng: np.random.Generator, weighting: str, grid: tuple[int, ...]):
    """``sample_weight`` (N,) with one zero, and/or a mask over ``grid`` in {0, 0.5, 1}."""
    sample_weight = mask = None
    if weighting in ("sample_weight", "both"):
        sample_weight = rng.uniform(0.1, 3.0, grid[0])
        sample_weight[1] = 0.0
    if weighting in ("mask", "both"):
        mask = rng.choice([0.0, 0.5, 1.0], size=grid, p=[0.3, 0.2, 0.5])
    return sample_weight, mask


def kept_weights(sample_weight, mask, grid: tuple[int, ...]):
    """What scikit-learn gets: the weights of the kept entries and which entries are kept."""
    weight = np.ones(grid)
    if sample_weight is not None:
        weight = weight * sample_weight.reshape(-1, *[1] * (len(grid) - 1))
    kept = np.ones(weight.size, dtype=bool) if mask is None else mask.reshape(-1) != 0
    if mask is not None:
        weight = weight * mask
    unweighted = sample_weight is None and mask is None
    return (None if unweighted else weight.reshape(-1)[kept]), kept


def sklearn_value(name: str, truth, guess, weight, **kwargs) -> float:
    if name in ("precision", "recall", "f1"):
        kwargs["zero_division"] = 0.0
    return float(SKLEARN[name](truth, guess, sample_weight=weight, **kwargs))
