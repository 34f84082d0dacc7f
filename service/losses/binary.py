"""The binary / multi-label family: every entry is an independent yes/no prediction.

Predictions and targets share one shape ``(N, ...)`` (multi-label: ``(N, L)``). Formulas
follow PyTorch (``BCELoss`` / ``BCEWithLogitsLoss``), torchvision (``sigmoid_focal_loss``) and
Keras (``Hinge``, ``SquaredHinge``); probability clipping by ``eps`` is Keras's convention.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from service.kernels import binary as kernels
from service.losses.domains import probabilities_and_soft_targets
from service.losses.fields import (
    Alpha,
    Eps,
    FromLogits,
    Gamma,
    LabelSmoothing,
    Margin,
    NonNegative,
)
from service.losses.registry import Formula, LossSpec, Params, register
from service.validation.contracts import Batch, Elementwise, shape_text
from service.validation.domain import require_sign_labels
from service.validation.errors import ShapeError, StructureError, body_loc

ELEMENTWISE = Elementwise()
PROBABILITY_EXAMPLE = {
    "predictions": [[0.9, 0.2, 0.6], [0.3, 0.8, 0.1]],
    "targets": [[1, 0, 1], [0, 1, 0]],
}


class BinaryCrossEntropyParams(Params):
    from_logits: FromLogits = False
    label_smoothing: LabelSmoothing = 0.0
    eps: Eps = 1e-7
    pos_weight: NonNegative | list[NonNegative] | None = Field(
        None,
        description="Weight of the positive term (logits only, as BCEWithLogitsLoss): one "
        "number, or one per entry of the last axis; >= 0.",
    )


class BinaryFocalParams(Params):
    gamma: Gamma = 2.0
    alpha: Alpha = None
    from_logits: FromLogits = False
    eps: Eps = 1e-7


class HingeParams(Params):
    margin: Margin = 1.0


def _pos_weight_array(params: BinaryCrossEntropyParams) -> np.ndarray:
    if params.pos_weight is None:
        return np.ones(1)
    return np.atleast_1d(np.asarray(params.pos_weight, dtype=np.float64))


def bce_domain(batch: Batch, params: BinaryCrossEntropyParams) -> None:
    probabilities_and_soft_targets(batch, params)
    if params.pos_weight is None:
        return
    loc = body_loc("params", "pos_weight")
    if not params.from_logits:
        raise StructureError(
            loc,
            'pos_weight applies to logits only (as in BCEWithLogitsLoss); set "from_logits": true',
        )
    weights = _pos_weight_array(params)
    last = batch.predictions.shape[-1]
    if isinstance(params.pos_weight, list) and weights.size != last:
        raise ShapeError(
            loc,
            f"pos_weight has {weights.size} entries but predictions has shape "
            f"{shape_text(batch.predictions.shape)}; give one number or {last} (its last axis)",
        )


def hinge_domain(batch: Batch, _params: HingeParams) -> None:
    require_sign_labels(batch.targets)


def _binary(**fields) -> LossSpec:
    fields.setdefault("example", PROBABILITY_EXAMPLE)
    fields.setdefault("properties", frozenset({"nonnegative"}))
    return register(LossSpec(family="binary", contract=ELEMENTWISE, **fields))


BINARY_CROSS_ENTROPY = _binary(
    name="binary_cross_entropy",
    entry_seconds=80e-9,
    aliases=("bce", "log_loss"),
    summary="Binary cross-entropy on probabilities or logits (multi-label: one per entry).",
    formula=Formula(
        loss="y' = y (1 - s) + s / 2; probabilities: l = -[y' log pc + (1 - y') log(1 - pc)], "
        "pc = clip(p, eps, 1 - eps); logits: l = w y' softplus(-x) + (1 - y') softplus(x)",
        gradient="probabilities: dl/dp = -y' / pc + (1 - y') / (1 - pc); "
        "logits: dl/dx = -w y' sigmoid(-x) + (1 - y') sigmoid(x)",
    ),
    params=BinaryCrossEntropyParams,
    kernel=kernels.binary_cross_entropy,
    kernel_args=lambda params: {
        "smoothing": params.label_smoothing,
        "pos_weight": _pos_weight_array(params),
    },
    domain=bce_domain,
    references=(
        "torch.nn.BCELoss",
        "torch.nn.BCEWithLogitsLoss",
        "keras.losses.BinaryCrossentropy",
    ),
    notes="Probabilities are clipped to [eps, 1 - eps] (Keras); PyTorch's BCELoss clamps each "
    "log at -100 and scikit-learn's log_loss clips at machine epsilon, so values differ for "
    "probabilities within eps of 0 or 1. pos_weight w applies to logits only, as in "
    "BCEWithLogitsLoss. Targets may be soft, in [0, 1].",
)

BINARY_FOCAL = _binary(
    name="binary_focal",
    entry_seconds=90e-9,
    summary="Focal loss: cross-entropy down-weighted on well-classified entries.",
    formula=Formula(
        loss="p_t = p y + (1 - p)(1 - y); l = a_t (1 - p_t)^gamma bce(p, y), "
        "a_t = alpha y + (1 - alpha)(1 - y) (1 when alpha is null)",
        gradient="dl/dp = a_t [gamma (1 - p_t)^(gamma-1) (1 - 2y) bce + (1 - p_t)^gamma dbce/dp]; "
        "with logits, times dp/dx = sigmoid(x) sigmoid(-x) in stable form",
    ),
    params=BinaryFocalParams,
    kernel=kernels.binary_focal,
    kernel_args=lambda params: {
        "use_alpha": params.alpha is not None,
        "alpha": params.alpha if params.alpha is not None else 0.0,
    },
    domain=probabilities_and_soft_targets,
    references=("torchvision.ops.sigmoid_focal_loss", "Lin et al., Focal Loss (2017)"),
    notes="torchvision's sigmoid_focal_loss uses alpha = 0.25 by default; here alpha is null "
    "(no balancing) unless given. Keras's BinaryFocalCrossentropy matches with "
    "apply_class_balancing when alpha is set.",
)

HINGE = _binary(
    name="hinge",
    entry_seconds=10e-9,
    summary="Hinge loss on raw scores; targets {0, 1} or {-1, 1}.",
    formula=Formula(
        loss="t = 1 if y > 0 else -1; l = max(0, m - t p)",
        gradient="dl/dp = -t where m - t p > 0, else 0 (0 at the kink)",
    ),
    params=HingeParams,
    kernel=kernels.hinge,
    example={"predictions": [[0.8, -0.4], [-1.5, 0.3]], "targets": [[1, 0], [0, 1]]},
    domain=hinge_domain,
    references=("keras.losses.Hinge",),
    notes="Targets in {0, 1} are mapped to {-1, 1}, as Keras does.",
)

SQUARED_HINGE = _binary(
    name="squared_hinge",
    entry_seconds=12e-9,
    summary="Squared hinge loss on raw scores; targets {0, 1} or {-1, 1}.",
    formula=Formula(
        loss="t = 1 if y > 0 else -1; l = max(0, m - t p)^2",
        gradient="dl/dp = -2 t max(0, m - t p)",
    ),
    params=HingeParams,
    kernel=kernels.squared_hinge,
    example={"predictions": [[0.8, -0.4], [-1.5, 0.3]], "targets": [[1, -1], [-1, 1]]},
    domain=hinge_domain,
    references=("keras.losses.SquaredHinge",),
    notes="Targets in {0, 1} are mapped to {-1, 1}, as Keras does.",
)
