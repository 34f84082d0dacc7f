"""Stage 2, the shape contract: which arrays a loss takes, and what its elements are.

A contract turns validated float64 arrays (:class:`Inputs`) into a :class:`Batch`: the arrays
handed to the kernel and the *element grid* (N samples x K elements each) that the reduction
works on. Each family of losses declares one contract; messages name both shapes and say
what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from service.domain import fail_at, require_range
from service.errors import ShapeError, body_loc


@dataclass(frozen=True)
class Inputs:
    """The request's arrays, already float64, finite and rectangular (stage 1 done)."""

    predictions: np.ndarray
    targets: np.ndarray
    sample_weight: np.ndarray | None = None
    mask: np.ndarray | None = None


@dataclass(frozen=True)
class Batch:
    """What a kernel and the reduction need.

    ``element_weights`` are the weights *inside* a sample (mask x class weight x ignore), flat
    over the element grid ``(n_samples, elements_per_sample)``; ``None`` means all ones.
    """

    predictions: np.ndarray
    targets: np.ndarray
    kernel_arrays: tuple[np.ndarray, ...]
    n_samples: int
    elements_per_sample: int
    element_weights: np.ndarray | None
    gradient_shape: tuple[int, ...]


class Contract(Protocol):
    shapes: Mapping[str, str]
    elements: str

    def prepare(self, inputs: Inputs, params: Any) -> Batch: ...


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def require_batch(array: np.ndarray, field: str) -> None:
    """An array of shape (N, ...) with N >= 1 and no empty axis."""
    if array.ndim == 0:
        raise ShapeError(
            body_loc(field), f"{field} must be an array of shape (N, ...), got a scalar"
        )
    if array.shape[0] == 0:
        raise ShapeError(body_loc(field), f"{field} is empty: at least one sample is required")
    if array.size == 0:
        raise ShapeError(
            body_loc(field),
            f"{field} has shape {shape_text(array.shape)}: every axis must have at least one entry",
        )


def require_same_shape(
    array: np.ndarray, field: str, reference: np.ndarray, ref_field: str
) -> None:
    if array.shape != reference.shape:
        raise ShapeError(
            body_loc(field),
            f"{field} has shape {shape_text(array.shape)} but {ref_field} has "
            f"{shape_text(reference.shape)}; {field} must be {shape_text(reference.shape)}",
        )


def element_mask(mask: np.ndarray | None, element_shape: tuple[int, ...]) -> np.ndarray | None:
    """The optional top-level ``mask``: the shape of the element grid, values in [0, 1]."""
    if mask is None:
        return None
    if mask.shape != element_shape:
        raise ShapeError(
            body_loc("mask"),
            f"mask has shape {shape_text(mask.shape)} but this loss's elements form "
            f"{shape_text(element_shape)}; mask must be {shape_text(element_shape)}",
        )
    require_range(mask, "mask", 0.0, 1.0)
    return mask.reshape(-1)


class Elementwise:
    """Predictions and targets of the same shape ``(N, ...)``; every entry is an element."""

    shapes: Mapping[str, str] = {
        "predictions": "(N, ...)",
        "targets": "same shape as predictions",
        "sample_weight": "(N,), >= 0 (optional)",
        "mask": "same shape as predictions, values in [0, 1] (optional)",
    }
    elements = "every entry of predictions"

    def prepare(self, inputs: Inputs, params: Any) -> Batch:
        predictions, targets = inputs.predictions, inputs.targets
        require_batch(predictions, "predictions")
        require_same_shape(targets, "targets", predictions, "predictions")
        n_samples = predictions.shape[0]
        return Batch(
            predictions=predictions,
            targets=targets,
            kernel_arrays=(predictions.reshape(-1), targets.reshape(-1)),
            n_samples=n_samples,
            elements_per_sample=predictions.size // n_samples,
            element_weights=element_mask(inputs.mask, predictions.shape),
            gradient_shape=predictions.shape,
        )


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


class ClassLabels:
    """Predictions ``(N, C, d1, ...)`` with integer targets ``(N, d1, ...)``.

    Labels must be integers in ``[0, C)``, or equal ``params.ignore_index`` where the loss has
    one; ignored positions and ``params.class_weight[label]`` enter the element weights, so
    the reduction treats them like any other weight. ``spatial=False`` admits ``(N, C)`` only.
    """

    def __init__(self, spatial: bool = True) -> None:
        self.spatial = spatial
        grid = "(N, d1, ...)" if spatial else "(N,)"
        self.shapes: Mapping[str, str] = {
            "predictions": "(N, C, d1, ...): class axis 1" if spatial else "(N, C)",
            "targets": f"{grid} integers in [0, C)" + (" or ignore_index" if spatial else ""),
            "sample_weight": "(N,), >= 0 (optional)",
            "mask": f"{grid}, values in [0, 1] (optional)",
        }
        self.elements = (
            "every position (n, d1, ...); the class axis is reduced" if spatial else "every sample"
        )

    def prepare(self, inputs: Inputs, params: Any) -> Batch:
        predictions, targets = inputs.predictions, inputs.targets
        require_class_axis(predictions, self.spatial)
        view, grid = _class_view(predictions)
        classes = view.shape[1]
        if targets.shape != grid:
            raise ShapeError(
                body_loc("targets"),
                f"targets has shape {shape_text(targets.shape)} but predictions has "
                f"{shape_text(predictions.shape)}; integer class targets must be "
                f"{shape_text(grid)} (predictions without the class axis 1)",
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
        labels = targets.astype(np.int64).reshape(grid[0], -1)
        weights = element_mask(inputs.mask, grid)
        class_weight = getattr(params, "class_weight", None)
        if class_weight is not None:
            if len(class_weight) != classes:
                raise ShapeError(
                    body_loc("params", "class_weight"),
                    f"class_weight has {len(class_weight)} entries but predictions has "
                    f"{classes} classes (axis 1); class_weight must have {classes}",
                )
            per_label = np.asarray(class_weight, dtype=np.float64)[np.clip(labels, 0, classes - 1)]
            weights = per_label.reshape(-1) if weights is None else weights * per_label.reshape(-1)
        if ignored is not None and ignored.any():
            kept = (~ignored).astype(np.float64).reshape(-1)
            weights = kept if weights is None else weights * kept
        return Batch(
            predictions=predictions,
            targets=targets,
            kernel_arrays=(view, labels),
            n_samples=grid[0],
            elements_per_sample=view.shape[2],
            element_weights=weights,
            gradient_shape=predictions.shape,
        )
