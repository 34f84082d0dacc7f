"""The overlap family: Dice, Jaccard (IoU) and Tversky, one element per (sample, class).

Formulas follow LOSSES.md (MONAI's DiceLoss / TverskyLoss conventions, segmentation_models
and Salehi et al. 2017 for Tversky, Abraham & Khan 2019 for its focal form).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, Strict, StrictBool

from service.kernels import overlap as kernels
from service.losses.fields import ClassWeight, DenominatorEps, FromLogits
from service.losses.registry import Formula, LossSpec, Params, register
from service.reduction import Reduced, Weights, column_means
from service.validation.contracts import Batch, Overlap
from service.validation.domain import require_probabilities, require_range

OVERLAP = Overlap()
Smooth = Annotated[float, Strict(), Field(ge=0, description="Smoothing s added to both sides.")]
Mode = Literal["binary", "multilabel", "multiclass"]
EXAMPLE = {
    "predictions": [[[0.9, 0.2], [0.8, 0.1]], [[0.3, 0.7], [0.1, 0.6]]],
    "targets": [[[1, 0], [1, 0]], [[0, 1], [0, 1]]],
    "params": {"mode": "binary"},
}


class OverlapParams(Params):
    mode: Mode = Field(
        "binary", description="binary, multilabel (sigmoid) or multiclass (softmax)."
    )
    from_logits: FromLogits = False
    smooth: Smooth = 1.0
    squared_pred: StrictBool = Field(False, description="P = sum q^2 instead of sum q.")
    class_weight: ClassWeight = None
    include_background: StrictBool = Field(
        True, description="false: class 0 weighs 0 (multiclass mode)."
    )
    eps: DenominatorEps = 1e-7


class TverskyParams(Params):
    mode: Mode = Field(
        "binary", description="binary, multilabel (sigmoid) or multiclass (softmax)."
    )
    from_logits: FromLogits = False
    smooth: Smooth = 1.0
    class_weight: ClassWeight = None
    include_background: StrictBool = Field(
        True, description="false: class 0 weighs 0 (multiclass mode)."
    )
    alpha: Annotated[float, Strict(), Field(ge=0, description="Weight of false positives.")] = 0.5
    beta: Annotated[float, Strict(), Field(ge=0, description="Weight of false negatives.")] = 0.5
    gamma: Annotated[float, Strict(), Field(gt=0, description="Focal exponent; 1 = Tversky.")] = 1.0
    eps: DenominatorEps = 1e-7


def activation(params: Any) -> int:
    if not params.from_logits:
        return kernels.NONE
    return kernels.SOFTMAX if params.mode == "multiclass" else kernels.SIGMOID


def overlap_domain(batch: Batch, params: Any) -> None:
    """Checked on the arrays as sent, so messages name the client's own indices."""
    require_probabilities(batch.predictions, params.from_logits)
    if batch.targets.shape == batch.predictions.shape:  # dense targets (not a class map)
        require_range(batch.targets, "targets", 0.0, 1.0)


def per_class(
    batch: Batch, losses: np.ndarray, weights: Weights, reduced: Reduced, params: Any
) -> dict:
    """extras.per_class[c]: the weighted mean over samples of class c's element losses."""
    return {"per_class": column_means(losses, weights)}


def _overlap(**fields) -> LossSpec:
    fields.setdefault("params", OverlapParams)
    fields.setdefault("example", EXAMPLE)
    return register(
        LossSpec(
            family="overlap",
            contract=OVERLAP,
            domain=overlap_domain,
            extras=per_class,
            properties=frozenset({"nonnegative"}),
            **fields,
        )
    )


SUMS = (
    "per (n, c) over the positions: I = sum q y, P = sum q (sum q^2 with squared_pred), G = sum y"
)

DICE = _overlap(
    name="dice",
    entry_seconds=100e-9,
    summary="Dice loss per (sample, class): 1 - soft Dice coefficient.",
    formula=Formula(
        loss=f"{SUMS}; l = 1 - (2I + s) / max(P + G + s, eps)",
        gradient="D = P + G + s; dl/dq = -2y/D + (2I + s)/D^2 dP/dq (dP/dq = 1 or 2q), then "
        "through sigmoid / softmax",
    ),
    kernel=kernels.dice,
    kernel_args=lambda p: {"activation": activation(p), "squared": p.squared_pred},
    references=("monai.losses.DiceLoss", "Milletari et al., V-Net (2016)"),
    notes="An empty class (absent in target and prediction) gives 1 - s / max(s, eps): 0 with "
    "the default smooth 1, and 1 with smooth 0 (never 0/0).",
)

JACCARD = _overlap(
    name="jaccard",
    entry_seconds=100e-9,
    aliases=("iou",),
    summary="Jaccard (IoU) loss per (sample, class): 1 - soft intersection over union.",
    formula=Formula(
        loss=f"{SUMS}; l = 1 - (I + s) / max(P + G - I + s, eps)",
        gradient="J = P + G - I + s; dl/dq = -(J + I + s)/J^2 y + (I + s)/J^2 dP/dq",
    ),
    kernel=kernels.jaccard,
    kernel_args=lambda p: {"activation": activation(p), "squared": p.squared_pred},
    example={
        "predictions": [[[2.0, -1.0, 0.5], [0.1, 1.5, -0.3], [-1.0, 0.2, 1.8]]],
        "targets": [[0, 1, 2]],
        "params": {"mode": "multiclass", "from_logits": True},
    },
    references=("monai.losses.DiceLoss(jaccard=True)", "segmentation_models JaccardLoss"),
)

TVERSKY = _overlap(
    name="tversky",
    entry_seconds=100e-9,
    summary="Tversky loss, (1 - TI)^gamma: weighs false positives (alpha) and negatives (beta).",
    formula=Formula(
        loss="I = sum q y, FP = sum q (1 - y), FN = sum (1 - q) y; "
        "l = (1 - (I + s) / max(I + alpha FP + beta FN + s, eps))^gamma",
        gradient="T = (I + s)/D; dl/dq = -gamma (1 - T)^(gamma-1) [(D - (I + s)(1 - alpha - beta)) y "
        "- alpha (I + s)] / D^2",
    ),
    params=TverskyParams,
    kernel=kernels.tversky,
    kernel_args=lambda p: {"activation": activation(p)},
    example={**EXAMPLE, "params": {"mode": "binary", "alpha": 0.3, "beta": 0.7}},
    references=("monai.losses.TverskyLoss", "Salehi et al. (2017)", "Abraham & Khan (2019)"),
    notes="gamma != 1 is the focal Tversky loss. squared_pred is not offered (P does not appear "
    "in the Tversky index). At T = 1 (a perfect prediction) the slope of (1 - T)^gamma is "
    "-1 for gamma = 1, 0 for gamma > 1, and taken as 0 for gamma < 1 (unbounded there).",
)
