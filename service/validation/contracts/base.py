"""The shape contract's shared parts: what a contract receives and returns, and the checks
every contract uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from service.validation.domain import require_range
from service.validation.errors import DomainError, ShapeError, body_loc


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
    """What a family's inputs look like. Besides checking a request (:meth:`prepare`), it
    states what the protocol metadata and the generic tests need: ``shapes`` and ``elements``
    in words, whether targets are integer labels, an axis whose length is fixed (a box's 4
    coordinates) and the rank of the element grid (which the mask takes)."""

    shapes: Mapping[str, str]
    elements: str

    @property
    def integer_targets(self) -> bool:
        """Targets are integer labels (class indices, label sequences)."""
        ...

    @property
    def fixed_last_axis(self) -> int | None:
        """The length of the predictions' last axis when the contract fixes it."""
        ...

    def mask_rank(self, predictions_rank: int, targets_rank: int) -> int:
        """The rank of the element grid for predictions and targets of these ranks."""
        ...

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


def element_mask(
    mask: np.ndarray | None, element_shape: tuple[int, ...], reader: str | None = None
) -> np.ndarray | None:
    """The optional top-level ``mask``: the shape of the element grid, values in [0, 1].

    ``reader`` says who reads the grid in the message (default: the loss's elements).
    """
    if mask is None:
        return None
    if mask.shape != element_shape:
        reader = reader or f"this loss's elements form {shape_text(element_shape)}"
        raise ShapeError(
            body_loc("mask"),
            f"mask has shape {shape_text(mask.shape)} but {reader}; "
            f"mask must be {shape_text(element_shape)}",
        )
    require_range(mask, "mask", 0.0, 1.0)
    return mask.reshape(-1)


def check_sample_weight(sample_weight: np.ndarray | None, n_samples: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    if sample_weight.shape != (n_samples,):
        raise ShapeError(
            body_loc("sample_weight"),
            f"sample_weight has shape {shape_text(sample_weight.shape)} but predictions has "
            f"{n_samples} sample(s); sample_weight must be ({n_samples},)",
        )
    negative = sample_weight < 0
    if negative.any():
        index = int(np.argmax(negative))
        raise DomainError(
            body_loc("sample_weight", index),
            f"sample_weight[{index}] = {sample_weight[index]:g} is negative; weights must be >= 0",
        )
    return sample_weight
