"""Predictions and targets of one shape, every entry an element (regression, binary)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.validation.contracts.base import (
    Batch,
    Inputs,
    element_mask,
    require_batch,
    require_same_shape,
)


class Elementwise:
    """Predictions and targets of the same shape ``(N, ...)``; every entry is an element."""

    shapes: Mapping[str, str] = {
        "predictions": "(N, ...)",
        "targets": "same shape as predictions",
        "sample_weight": "(N,), >= 0 (optional)",
        "mask": "same shape as predictions, values in [0, 1] (optional)",
    }
    elements = "every entry of predictions"
    integer_targets = False
    fixed_last_axis = None

    def mask_rank(self, predictions_rank: int, targets_rank: int) -> int:
        return predictions_rank

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
