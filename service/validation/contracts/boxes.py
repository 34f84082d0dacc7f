"""Boxes: predictions and targets ``(N, ..., 4)``; every box is an element."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from service.validation.contracts.base import (
    Batch,
    Inputs,
    element_mask,
    require_batch,
    require_same_shape,
    shape_text,
)
from service.validation.errors import ShapeError, body_loc


class Boxes:
    shapes: Mapping[str, str] = {
        "predictions": "(N, ..., 4): boxes in params.box_format",
        "targets": "same shape as predictions",
        "sample_weight": "(N,), >= 0 (optional)",
        "mask": "predictions' shape without the last axis, values in [0, 1] (optional)",
    }
    elements = "every box"
    integer_targets = False
    fixed_last_axis = 4

    def mask_rank(self, predictions_rank: int, targets_rank: int) -> int:
        return predictions_rank - 1  # one element per box

    def prepare(self, inputs: Inputs, params: Any) -> Batch:
        predictions, targets = inputs.predictions, inputs.targets
        require_batch(predictions, "predictions")
        if predictions.ndim < 2 or predictions.shape[-1] != 4:
            raise ShapeError(
                body_loc("predictions"),
                f"predictions has shape {shape_text(predictions.shape)}; boxes are (N, ..., 4) "
                "with 4 coordinates on the last axis",
            )
        require_same_shape(targets, "targets", predictions, "predictions")
        grid = predictions.shape[:-1]
        return Batch(
            predictions=predictions,
            targets=targets,
            kernel_arrays=(predictions.reshape(-1, 4), targets.reshape(-1, 4)),
            n_samples=grid[0],
            elements_per_sample=int(np.prod(grid[1:], dtype=np.int64)),
            element_weights=element_mask(inputs.mask, grid),
            gradient_shape=predictions.shape,
        )
