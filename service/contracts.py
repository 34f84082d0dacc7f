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

from service.errors import DomainError, ShapeError, body_loc, index_text


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


def require_range(
    array: np.ndarray, field: str, low: float, high: float, *, hint: str = ""
) -> None:
    """Every value in the closed interval [low, high]; names the first value outside it."""
    outside = (array < low) | (array > high)
    if outside.any():
        index = np.unravel_index(int(np.argmax(outside)), array.shape)
        raise DomainError(
            body_loc(field, *map(int, index)),
            f"{index_text(field, index)} = {array[index]:g} is outside [{low:g}, {high:g}]{hint}",
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
