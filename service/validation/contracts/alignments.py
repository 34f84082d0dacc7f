"""CTC: predictions ``(N, T, C)``, padded targets ``(N, S)`` and per-sample lengths.

Lengths come from params (``target_lengths`` required, ``input_lengths`` default T). Labels
inside each target length must be integers in [0, C) other than ``blank``; padding is ignored.
A sample is feasible when ``input_length >= target_length + repeats`` (a blank must separate
equal neighbours); infeasible samples are a 422 naming them unless ``zero_infinity``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from service.validation.contracts.base import Batch, Inputs, element_mask, require_batch, shape_text
from service.validation.errors import DomainError, ShapeError, body_loc


def _lengths(values: list[int] | None, name: str, count: int, low: int, high: int) -> np.ndarray:
    loc = body_loc("params", name)
    if values is None:
        return np.full(count, high, dtype=np.int64)
    if len(values) != count:
        raise ShapeError(loc, f"{name} has {len(values)} entries but there are {count} samples")
    lengths = np.asarray(values, dtype=np.int64)
    outside = (lengths < low) | (lengths > high)
    if outside.any():
        i = int(np.argmax(outside))
        raise DomainError([*loc, i], f"{name}[{i}] = {lengths[i]} is outside [{low}, {high}]")
    return lengths


class Alignments:
    shapes: Mapping[str, str] = {
        "predictions": "(N, T, C): probabilities, or logits with from_logits",
        "targets": "(N, S) integer labels, padded; entries past target_lengths[n] are ignored",
        "sample_weight": "(N,), >= 0 (optional)",
        "mask": "(N,), values in [0, 1] (optional)",
    }
    elements = "every sequence"
    integer_targets = True
    fixed_last_axis = None

    def mask_rank(self, predictions_rank: int, targets_rank: int) -> int:
        return 1  # one element per sequence

    def prepare(self, inputs: Inputs, params: Any) -> Batch:
        predictions, targets = inputs.predictions, inputs.targets
        require_batch(predictions, "predictions")
        if predictions.ndim != 3:
            raise ShapeError(
                body_loc("predictions"),
                f"predictions has shape {shape_text(predictions.shape)}; ctc takes (N, T, C): "
                "samples, time steps, classes",
            )
        samples, steps, classes = predictions.shape
        if targets.ndim != 2 or targets.shape[0] != samples:
            raise ShapeError(
                body_loc("targets"),
                f"targets has shape {shape_text(targets.shape)} but predictions has "
                f"{shape_text(predictions.shape)}; targets must be ({samples}, S): padded labels",
            )
        if not 0 <= params.blank < classes:
            raise DomainError(
                body_loc("params", "blank"),
                f"blank = {params.blank} is not a class index in [0, {classes})",
            )
        target_lengths = _lengths(
            params.target_lengths, "target_lengths", samples, 0, targets.shape[1]
        )
        input_lengths = _lengths(params.input_lengths, "input_lengths", samples, 1, steps)
        labels = np.zeros(targets.shape, dtype=np.int64)
        infeasible: list[tuple[int, int]] = []  # (sample, steps its target needs)
        for n in range(samples):
            row = targets[n, : target_lengths[n]]
            bad = (row != np.floor(row)) | (row < 0) | (row >= classes) | (row == params.blank)
            if bad.any():
                s = int(np.argmax(bad))
                raise DomainError(
                    body_loc("targets", n, s),
                    f"targets[{n}][{s}] = {row[s]:g} is not a label: expected an integer in "
                    f"[0, {classes}) other than blank {params.blank} (within target_lengths[{n}]"
                    f" = {target_lengths[n]})",
                )
            labels[n, : target_lengths[n]] = row.astype(np.int64)
            repeats = int(np.count_nonzero(row[1:] == row[:-1])) if row.size > 1 else 0
            if input_lengths[n] < target_lengths[n] + repeats:
                infeasible.append((n, int(target_lengths[n]) + repeats))
        if infeasible and not params.zero_infinity:
            first, needed = infeasible[0]
            raise DomainError(
                body_loc("targets", first),
                f"sample(s) {', '.join(str(n) for n, _ in infeasible[:10])} cannot be aligned: "
                f"sample {first} has {input_lengths[first]} input steps but its target needs at "
                f"least {needed} (target_length {target_lengths[first]} + "
                f"{needed - target_lengths[first]} repeated neighbour(s), each needing a blank "
                "between); set zero_infinity to score such samples 0",
            )
        return Batch(
            predictions=predictions,
            targets=targets,
            kernel_arrays=(predictions, labels, input_lengths, target_lengths),
            n_samples=samples,
            elements_per_sample=1,
            element_weights=element_mask(inputs.mask, (samples,)),
            gradient_shape=predictions.shape,
        )
