"""Overlap losses: one element per (sample, class); the spatial axes are summed.

The layout depends on ``params.mode``:

- ``binary``: predictions ``(N, d1, ...)`` or ``(N, 1, d1, ...)``, targets the same shape;
- ``multilabel``: ``(N, C, d1, ...)`` and targets of the same shape;
- ``multiclass``: ``(N, C, d1, ...)`` with one-hot targets of the same shape, or an integer
  class map ``(N, d1, ...)`` (turned into one-hot here).

The kernel receives ``predictions[N, C, S]`` and dense ``targets[N, C, S]``. Element weights
are ``mask[n, c]`` x ``class_weight[c]`` x (0 for class 0 when ``include_background`` is false
in multiclass mode).
"""

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
from service.validation.contracts.classes import require_class_axis
from service.validation.domain import fail_at
from service.validation.errors import ShapeError, body_loc


class Overlap:
    shapes: Mapping[str, str] = {
        "predictions": "binary: (N, d1, ...) or (N, 1, d1, ...); multilabel and multiclass: "
        "(N, C, d1, ...)",
        "targets": "same shape as predictions (values in [0, 1]); multiclass also accepts an "
        "integer class map (N, d1, ...)",
        "sample_weight": "(N,), >= 0 (optional)",
        "mask": "(N, C) over the (sample, class) elements, values in [0, 1] (optional); "
        "C = 1 in binary mode",
    }
    elements = "every (sample, class) pair; the spatial axes are summed"
    integer_targets = False
    fixed_last_axis = None

    def mask_rank(self, predictions_rank: int, targets_rank: int) -> int:
        return 2  # one element per (sample, class)

    def prepare(self, inputs: Inputs, params: Any) -> Batch:
        predictions, targets = inputs.predictions, inputs.targets
        require_batch(predictions, "predictions")
        samples = predictions.shape[0]
        if params.mode == "binary":
            require_same_shape(targets, "targets", predictions, "predictions")
            view = predictions.reshape(samples, 1, -1)
            dense = targets.reshape(view.shape)
        else:
            require_class_axis(predictions)
            view = predictions.reshape(samples, predictions.shape[1], -1)
            dense = self._dense_targets(predictions, targets, params.mode, view.shape)
        classes = view.shape[1]
        grid = (samples, classes)
        weights = element_mask(inputs.mask, grid)
        per_class = np.ones(classes)
        if params.class_weight is not None:
            if len(params.class_weight) != classes:
                raise ShapeError(
                    body_loc("params", "class_weight"),
                    f"class_weight has {len(params.class_weight)} entries but the predictions "
                    f"have {classes} class(es) in {params.mode} mode; it must have {classes}",
                )
            per_class = np.asarray(params.class_weight, dtype=np.float64)
        if params.mode == "multiclass" and not params.include_background:
            per_class = per_class.copy()
            per_class[0] = 0.0
        if params.class_weight is not None or per_class[0] == 0.0:
            weights = inner_weights(weights, np.tile(per_class, samples))
        return Batch(
            predictions=predictions,
            targets=targets,  # as sent: domain messages name the client's indices
            kernel_arrays=(view, dense),
            n_samples=samples,
            elements_per_sample=classes,
            element_weights=weights,
            gradient_shape=predictions.shape,
        )

    @staticmethod
    def _dense_targets(
        predictions: np.ndarray, targets: np.ndarray, mode: str, view_shape: tuple[int, ...]
    ) -> np.ndarray:
        if targets.shape == predictions.shape:
            return targets.reshape(view_shape)
        class_map = (predictions.shape[0], *predictions.shape[2:])
        if mode != "multiclass" or targets.shape != class_map:
            accepted = f"{shape_text(predictions.shape)}"
            if mode == "multiclass":
                accepted += f" (one-hot) or {shape_text(class_map)} (integer class map)"
            raise ShapeError(
                body_loc("targets"),
                f"targets has shape {shape_text(targets.shape)} but predictions has "
                f"{shape_text(predictions.shape)}; in {mode} mode targets must be {accepted}",
            )
        classes = predictions.shape[1]
        fail_at(targets, "targets", targets != np.floor(targets), "is not an integer class index")
        fail_at(
            targets,
            "targets",
            (targets < 0) | (targets >= classes),
            f"is not a class index: expected [0, {classes})",
        )
        labels = targets.astype(np.int64).reshape(view_shape[0], 1, -1)
        return (labels == np.arange(classes)[None, :, None]).astype(np.float64)
