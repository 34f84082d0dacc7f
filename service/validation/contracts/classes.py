"""A class axis: dense class targets, or integer labels with ignore_index and class weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from service.reduction import inner_weights
from service.validation.contracts.base import (
    Batch,
    Inputs,
    element_mask,
    require_batch,
    require_same_shape,
    shape_text,
)
from service.validation.domain import fail_at
from service.validation.errors import ShapeError, body_loc


def require_class_axis(predictions: np.ndarray, spatial: bool = True) -> None:
    """Predictions ``(N, C, d1, ...)`` (or exactly ``(N, C)`` when not ``spatial``)."""
    require_batch(predictions, "predictions")
    if predictions.ndim < 2:
        layout = "(N, C, d1, ...)" if spatial else "(N, C)"
        raise ShapeError(
            body_loc("predictions"),
            f"predictions has shape {shape_text(predictions.shape)}; this loss needs a class "
            f"axis: {layout} with the classes on axis 1",
        )
    if not spatial and predictions.ndim != 2:
        raise ShapeError(
            body_loc("predictions"),
            f"predictions has shape {shape_text(predictions.shape)}; this loss takes (N, C) only",
        )


def _class_view(predictions: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """``predictions`` as ``[N, C, S]`` and the element grid ``(N, d1, ...)``."""
    samples, classes = predictions.shape[:2]
    view = predictions.reshape(samples, classes, -1)
    return view, (samples, *predictions.shape[2:])


class ClassAxis:
    """Predictions ``(N, C, d1, ...)`` with dense targets of the same shape (one-hot or soft).

    An element is a position ``(n, d1, ...)``: the class axis is reduced by the loss.
    """

    shapes: Mapping[str, str] = {
        "predictions": "(N, C, d1, ...): class axis 1 (PyTorch layout)",
        "targets": "same shape as predictions: one-hot or soft, values in [0, 1]",
        "sample_weight": "(N,), >= 0 (optional)",
        "mask": "(N, d1, ...), values in [0, 1] (optional)",
    }
    elements = "every position (n, d1, ...); the class axis is reduced"
    integer_targets = False
    fixed_last_axis = None

    def mask_rank(self, predictions_rank: int, targets_rank: int) -> int:
        return predictions_rank - 1  # the class axis is reduced

    def prepare(self, inputs: Inputs, params: Any) -> Batch:
        predictions, targets = inputs.predictions, inputs.targets
        require_class_axis(predictions)
        require_same_shape(targets, "targets", predictions, "predictions")
        view, grid = _class_view(predictions)
        return Batch(
            predictions=predictions,
            targets=targets,
            kernel_arrays=(view, targets.reshape(view.shape)),
            n_samples=grid[0],
            elements_per_sample=view.shape[2],
            element_weights=element_mask(inputs.mask, grid),
            gradient_shape=predictions.shape,
        )


LAYOUTS = {
    # layout: (predictions, integer targets = the element grid, what an element is)
    "positions": ("(N, C, d1, ...): class axis 1", "(N, d1, ...)", "every position (n, d1, ...)"),
    "samples": ("(N, C)", "(N,)", "every sample"),
    "sequence": ("(N, T, C): class axis last", "(N, T)", "every token (n, t)"),
}


class ClassLabels:
    """Integer class targets against a class axis, in one of three layouts.

    - ``positions``: predictions ``(N, C, d1, ...)``, targets ``(N, d1, ...)``;
    - ``samples``: predictions ``(N, C)`` only, targets ``(N,)``;
    - ``sequence``: predictions ``(N, T, C)`` (classes last), targets ``(N, T)``.

    Labels must be integers in ``[0, C)``, or equal ``params.ignore_index`` where the loss has
    one; ignored elements and ``params.class_weight[label]`` enter the element weights, so
    the reduction treats them like any other weight. The kernel always receives
    ``predictions[M, C, S]`` and ``labels[M, S]``: for sequences ``M = N * T`` and ``S = 1``,
    a C-contiguous view of the class-last array, so one kernel serves every layout.
    """

    integer_targets = True
    fixed_last_axis = None

    def mask_rank(self, predictions_rank: int, targets_rank: int) -> int:
        return targets_rank  # one element per label

    def __init__(self, layout: str = "positions") -> None:
        self.layout = layout
        predictions, grid, elements = LAYOUTS[layout]
        with_ignore = layout != "samples"
        self.shapes: Mapping[str, str] = {
            "predictions": predictions,
            "targets": f"{grid} integers in [0, C)" + (" or ignore_index" if with_ignore else ""),
            "sample_weight": "(N,), >= 0 (optional)",
            "mask": f"{grid}, values in [0, 1] (optional)",
        }
        self.elements = elements + ("; the class axis is reduced" if with_ignore else "")

    def _views(self, predictions: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
        """The kernel's ``[M, C, S]`` view and the element grid."""
        if self.layout == "sequence":
            if predictions.ndim != 3:
                raise ShapeError(
                    body_loc("predictions"),
                    f"predictions has shape {shape_text(predictions.shape)}; this loss takes "
                    "(N, T, C): samples, time steps, classes",
                )
            samples, steps, classes = predictions.shape
            return predictions.reshape(samples * steps, classes, 1), (samples, steps)
        require_class_axis(predictions, spatial=self.layout == "positions")
        return _class_view(predictions)

    def prepare(self, inputs: Inputs, params: Any) -> Batch:
        predictions, targets = inputs.predictions, inputs.targets
        require_batch(predictions, "predictions")
        view, grid = self._views(predictions)
        classes = view.shape[1]
        if targets.shape != grid:
            where = "the class axis" + (" (last)" if self.layout == "sequence" else " 1")
            raise ShapeError(
                body_loc("targets"),
                f"targets has shape {shape_text(targets.shape)} but predictions has "
                f"{shape_text(predictions.shape)}; integer class targets must be "
                f"{shape_text(grid)} (predictions without {where})",
            )
        ignore_index = getattr(params, "ignore_index", None)
        fail_at(targets, "targets", targets != np.floor(targets), "is not an integer class index")
        ignored = targets == ignore_index if ignore_index is not None else None
        valid = (targets >= 0) & (targets < classes)
        outside = ~valid if ignored is None else ~(valid | ignored)
        allowed = f"[0, {classes})" + (
            f" or ignore_index {ignore_index}" if ignored is not None else ""
        )
        fail_at(targets, "targets", outside, f"is not a class index: expected {allowed}")
        labels = targets.astype(np.int64).reshape(view.shape[0], view.shape[2])
        weights = element_mask(inputs.mask, grid)
        class_weight = getattr(params, "class_weight", None)
        if class_weight is not None:
            if len(class_weight) != classes:
                raise ShapeError(
                    body_loc("params", "class_weight"),
                    f"class_weight has {len(class_weight)} entries but predictions has "
                    f"{classes} classes; class_weight must have {classes}",
                )
            per_label = np.asarray(class_weight, dtype=np.float64)[np.clip(labels, 0, classes - 1)]
            weights = inner_weights(weights, per_label.reshape(-1))
        if ignored is not None and ignored.any():
            weights = inner_weights(weights, (~ignored).astype(np.float64).reshape(-1))
        return Batch(
            predictions=predictions,
            targets=targets,
            kernel_arrays=(view, labels),
            n_samples=grid[0],
            elements_per_sample=labels.size // grid[0],
            element_weights=weights,
            gradient_shape=predictions.shape,
        )
