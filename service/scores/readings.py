"""How a metric reads the payload: the shape rules, the value checks, and the kept entries.

Each ``read_*`` function validates what its metric needs and returns flat, weighted entries
(see the package docstring for the readings). Problems the metric has with the payload are
422s at ``["body", "metrics", i]`` whose message names the metric and the first offending
entry; problems of ``sample_weight`` or ``mask`` themselves point at those fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.kernels.stable import sigmoids
from service.reduction import weights_by_element
from service.scores.params import MetricRequest
from service.validation.contracts import (
    Inputs,
    check_sample_weight,
    element_mask,
    require_batch,
    shape_text,
)
from service.validation.domain import FROM_LOGITS_HINT, first_index
from service.validation.errors import DomainError, ShapeError, index_text

Layout = Literal["binary", "labels", "one_hot"]


@dataclass(frozen=True)
class Entries:
    """Kept entries: targets (``truth``), the predicted labels, scores (roc_auc) or values
    (regression) (``guess``), and weights; ``multiclass`` for label readings. Entry ``e`` of the
    grid belongs to sample ``e // per_sample``; ``kept`` says which grid entries are kept
    (None: all)."""

    truth: np.ndarray
    guess: np.ndarray
    weight: np.ndarray
    per_sample: int
    kept: np.ndarray | None
    multiclass: bool = False

    def samples(self) -> np.ndarray:
        """The sample of every kept entry."""
        grid = self.kept.size if self.kept is not None else self.truth.size
        owners = np.arange(grid, dtype=np.int64) // max(self.per_sample, 1)
        return owners if self.kept is None else owners[self.kept]


def read_labels(inputs: Inputs, request: MetricRequest) -> Entries:
    """accuracy, precision, recall, f1: binary / multi-label, or multiclass by argmax."""
    predictions, targets = _arrays(inputs)
    params = request.params
    layout = classification_layout(predictions, targets, params.one_hot, request)
    if layout == "binary":
        grid = predictions.shape
        weight, kept = entry_weights(inputs, grid, request, "every entry")
        truth = binary_targets(targets, request).astype(np.int64)
        scores = probabilities(predictions, params.from_logits, request)
        guess = (scores >= params.threshold).astype(np.int64)
    else:
        grid = (predictions.shape[0], *predictions.shape[2:])
        weight, kept = entry_weights(inputs, grid, request, "every position (n, d1, ...)")
        if layout == "labels":
            truth = integer_labels(targets, predictions.shape[1], request)
        else:
            truth = one_hot_labels(targets, request)
        guess = np.argmax(predictions, axis=1)
    truth, guess = _keep(truth, kept), _keep(guess, kept)
    return Entries(truth, guess, weight, _per_sample(grid), kept, layout != "binary")


def read_scores(inputs: Inputs, request: MetricRequest) -> Entries:
    """roc_auc: binary targets and the scores themselves (both classes with positive weight
    are the value's condition: :func:`service.scores.state.roc_auc`).

    Any real scores are ranked as they are: probabilities and logits rank alike (the sigmoid
    is monotone), so ``from_logits`` changes nothing and the range is not checked.
    """
    predictions, targets = _arrays(inputs)
    layout = classification_layout(predictions, targets, False, request)
    if layout != "binary":
        raise ShapeError(
            request.loc,
            f"roc_auc is binary: targets {shape_text(targets.shape)} against predictions "
            f"{shape_text(predictions.shape)} are multiclass class labels; roc_auc needs targets "
            "of the predictions' shape, every entry in {0, 1}, and the scores in predictions",
        )
    weight, kept = entry_weights(inputs, predictions.shape, request, "every entry")
    truth = _keep(binary_targets(targets, request), kept)
    return Entries(truth, _keep(predictions, kept), weight, _per_sample(predictions.shape), kept)


def read_values(inputs: Inputs, request: MetricRequest) -> Entries:
    """r2, rmse, mae: predictions and targets of one shape, entry by entry."""
    predictions, targets = _arrays(inputs)
    if targets.shape != predictions.shape:
        raise ShapeError(
            request.loc,
            f"{request.name} compares predictions and targets entry by entry: targets has shape "
            f"{shape_text(targets.shape)} but predictions has {shape_text(predictions.shape)}; "
            f"targets must be {shape_text(predictions.shape)}",
        )
    weight, kept = entry_weights(inputs, predictions.shape, request, "every entry")
    per_sample = _per_sample(predictions.shape)
    return Entries(_keep(targets, kept), _keep(predictions, kept), weight, per_sample, kept)


def classification_layout(
    predictions: np.ndarray, targets: np.ndarray, one_hot: bool, request: MetricRequest
) -> Layout:
    """``binary`` (same shape), ``labels`` (targets without axis 1) or ``one_hot`` (params)."""
    same_shape = targets.shape == predictions.shape
    label_grid = (predictions.shape[0], *predictions.shape[2:])
    is_label_grid = predictions.ndim >= 2 and targets.shape == label_grid
    if one_hot:
        if same_shape and predictions.ndim >= 2:
            return "one_hot"
        raise ShapeError(
            request.loc,
            f"{request.name}: one_hot needs predictions (N, C, ...) with the classes on axis 1 "
            f"and targets of the same shape; got predictions {shape_text(predictions.shape)} "
            f"and targets {shape_text(targets.shape)}"
            + ("; these targets are integer labels: drop one_hot" if is_label_grid else ""),
        )
    if same_shape:
        return "binary"
    if is_label_grid:
        return "labels"
    multiclass = (
        f"multiclass needs integer labels of shape {shape_text(label_grid)} (predictions "
        "without the class axis 1)"
        if predictions.ndim >= 2
        else "multiclass needs predictions (N, C, ...) with the classes on axis 1"
    )
    raise ShapeError(
        request.loc,
        f"{request.name}: predictions {shape_text(predictions.shape)} and targets "
        f"{shape_text(targets.shape)} fit no reading: binary / multi-label needs targets of "
        f"shape {shape_text(predictions.shape)}; {multiclass}",
    )


def entry_weights(
    inputs: Inputs, grid: tuple[int, ...], request: MetricRequest, entries: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """The weight of every kept entry, flat (``sample_weight[n] * mask``), and which are kept.

    ``kept`` is the flat boolean ``mask != 0`` (``None``: no mask, all kept). A mask that
    excludes everything, or kept weights that sum to 0, leave the value undefined
    (:mod:`service.scores.state`).
    """
    sample_weight = check_sample_weight(inputs.sample_weight, grid[0])
    mask, kept = inputs.mask, None
    if mask is not None:
        element_mask(mask, grid, f"{request.name} reads {entries} of a {shape_text(grid)} grid")
        kept = mask.reshape(-1) != 0
    n = grid[0]
    element = None if mask is None else mask.reshape(-1)
    weight = _keep(weights_by_element(n, _per_sample(grid), element, sample_weight), kept)
    return weight, kept


def _per_sample(grid: tuple[int, ...]) -> int:
    return int(np.prod(grid[1:], dtype=np.int64))


def binary_targets(targets: np.ndarray, request: MetricRequest) -> np.ndarray:
    """Targets of a binary reading: every entry in {0, 1}."""
    _refuse_first(
        request,
        targets,
        "targets",
        (targets != 0.0) & (targets != 1.0),
        "is not a binary label: targets of the predictions' shape are read as binary / "
        'multi-label, every entry in {0, 1}; send "one_hot": true for one-hot multiclass '
        "targets, or integer labels without the class axis 1",
    )
    return targets


def probabilities(predictions: np.ndarray, from_logits: bool, request: MetricRequest) -> np.ndarray:
    """Probabilities in [0, 1] as they are, or the sigmoid of logits."""
    if from_logits:
        return sigmoids(predictions)
    _refuse_first(
        request,
        predictions,
        "predictions",
        (predictions < 0.0) | (predictions > 1.0),
        "is outside [0, 1]" + FROM_LOGITS_HINT,
    )
    return predictions


def integer_labels(targets: np.ndarray, classes: int, request: MetricRequest) -> np.ndarray:
    """Integer class labels in [0, C)."""
    _refuse_first(
        request, targets, "targets", targets != np.floor(targets), "is not an integer class index"
    )
    hint = (
        "; predictions have a single column: for binary scores send targets of the predictions' "
        "shape"
        if classes == 1
        else ""
    )
    _refuse_first(
        request,
        targets,
        "targets",
        (targets < 0) | (targets >= classes),
        f"is not a class index: predictions have {classes} class(es) on axis 1, so labels are "
        f"in [0, {classes}){hint}",
    )
    return targets.astype(np.int64)


def one_hot_labels(targets: np.ndarray, request: MetricRequest) -> np.ndarray:
    """The class of each position of one-hot targets: {0, 1} with one 1 along axis 1."""
    _refuse_first(
        request,
        targets,
        "targets",
        (targets != 0.0) & (targets != 1.0),
        "is not 0 or 1: one_hot targets are one-hot along axis 1",
    )
    ones = targets.sum(axis=1)
    if (ones != 1.0).any():
        n, *rest = first_index(ones != 1.0)
        where = f"targets[{n}][:]" + "".join(f"[{i}]" for i in rest)
        raise DomainError(
            request.loc,
            f"{request.name}: {where} holds {ones[(n, *rest)]:g} ones along the class axis 1; "
            "one_hot targets hold exactly one 1 at every position",
        )
    return np.argmax(targets, axis=1)


def _arrays(inputs: Inputs) -> tuple[np.ndarray, np.ndarray]:
    require_batch(inputs.predictions, "predictions")
    require_batch(inputs.targets, "targets")
    return inputs.predictions, inputs.targets


def _keep(array: np.ndarray, kept: np.ndarray | None) -> np.ndarray:
    flat = np.ascontiguousarray(array).reshape(-1)
    return flat if kept is None else flat[kept]


def _refuse_first(
    request: MetricRequest, array: np.ndarray, field: str, bad: np.ndarray, expectation: str
) -> None:
    """A DomainError at the metric, naming the first True entry of ``bad``, if any."""
    if bad.any():
        index = first_index(bad)
        raise DomainError(
            request.loc,
            f"{request.name}: {index_text(field, index)} = {array[index]:g} {expectation}",
        )
