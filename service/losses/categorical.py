"""The categorical family: a distribution over C classes on axis 1, per position.

Predictions are ``(N, C, d1, ...)`` (PyTorch layout), so per-pixel segmentation ``(N, C, H, W)``
works as well as plain classification ``(N, C)``. An element is a position ``(n, d1, ...)``.
Formulas follow PyTorch (``CrossEntropyLoss``, ``MultiMarginLoss``, ``KLDivLoss``) and Keras
(``CategoricalFocalCrossentropy``, ``CategoricalHinge``).
"""

from __future__ import annotations

from pydantic import Field, StrictInt

from service.kernels import categorical as kernels
from service.losses.domains import probabilities_and_soft_targets, probability_predictions
from service.losses.fields import (
    Alpha,
    ClassWeight,
    Eps,
    FromLogits,
    Gamma,
    LabelSmoothing,
    Margin,
    NoParams,
)
from service.losses.registry import Formula, LossSpec, Params, register
from service.validation.contracts import Batch, ClassAxis, ClassLabels
from service.validation.domain import require_range

DENSE = ClassAxis()
LABELS = ClassLabels()
ONE_HOT_EXAMPLE = {
    "predictions": [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]],
    "targets": [[1, 0, 0], [0, 0, 1]],
}


class CategoricalCrossEntropyParams(Params):
    from_logits: FromLogits = False
    label_smoothing: LabelSmoothing = 0.0
    eps: Eps = 1e-7


class SparseCategoricalCrossEntropyParams(CategoricalCrossEntropyParams):
    ignore_index: StrictInt = Field(-100, description="Targets equal to this weigh 0.")
    class_weight: ClassWeight = None


class CategoricalFocalParams(Params):
    gamma: Gamma = 2.0
    alpha: Alpha = None
    from_logits: FromLogits = False
    eps: Eps = 1e-7


class MultiMarginParams(Params):
    margin: Margin = 1.0
    p: StrictInt = Field(
        1,
        ge=1,
        le=2,
        json_schema_extra={"enum": [1, 2]},
        description="Exponent P of each hinge term: 1 or 2 (an integer; true is refused).",
    )


class ProbabilityParams(Params):
    from_logits: FromLogits = False
    eps: Eps = 1e-7


def hinge_target_domain(batch: Batch, _params: NoParams) -> None:
    require_range(batch.targets, "targets", 0.0, 1.0)


def _categorical(**fields) -> LossSpec:
    fields.setdefault("contract", DENSE)
    fields.setdefault("example", ONE_HOT_EXAMPLE)
    fields.setdefault("properties", frozenset({"nonnegative"}))
    return register(LossSpec(family="categorical", **fields))


CROSS_ENTROPY_LOSS = (
    "y' = y (1 - s) + s / C; l = -sum_c y'_c log q_c, q = softmax(x) over axis 1 "
    "(log-sum-exp) or clip(p, eps, 1 - eps)"
)

CATEGORICAL_CROSS_ENTROPY = _categorical(
    name="categorical_cross_entropy",
    entry_seconds=30e-9,
    aliases=("cce",),
    summary="Cross-entropy against one-hot or soft targets of the predictions' shape.",
    formula=Formula(
        loss=CROSS_ENTROPY_LOSS,
        gradient="logits: dl/dx_c = q_c sum_k y'_k - y'_c; probabilities: dl/dp_c = -y'_c / q_c",
    ),
    params=CategoricalCrossEntropyParams,
    kernel=kernels.categorical_cross_entropy,
    kernel_args=lambda params: {"smoothing": params.label_smoothing},
    domain=probabilities_and_soft_targets,
    references=(
        "torch.nn.CrossEntropyLoss (probability targets)",
        "keras.losses.CategoricalCrossentropy",
    ),
    notes="Probabilities are clipped, not renormalised (Keras divides them by their sum "
    "first). Soft targets need not sum to 1; with logits the gradient uses their sum.",
)

SPARSE_CATEGORICAL_CROSS_ENTROPY = _categorical(
    name="sparse_categorical_cross_entropy",
    entry_seconds=30e-9,
    aliases=("sparse_cce", "cross_entropy"),
    summary="Cross-entropy against integer class labels, with ignore_index and class weights.",
    formula=Formula(
        loss="y' = (1 - s) onehot(t) + s / C; l = -sum_c y'_c log q_c; "
        "element weight x class_weight[t], 0 where t = ignore_index",
        gradient="logits: dl/dx_c = q_c - y'_c; probabilities: dl/dp_c = -y'_c / q_c",
    ),
    params=SparseCategoricalCrossEntropyParams,
    contract=LABELS,
    kernel=kernels.sparse_categorical_cross_entropy,
    kernel_args=lambda params: {"smoothing": params.label_smoothing},
    example={
        "predictions": [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]],
        "targets": [0, 2],
        "params": {"from_logits": True},
    },
    domain=probability_predictions,
    references=(
        "torch.nn.CrossEntropyLoss (class indices)",
        "keras.losses.SparseCategoricalCrossentropy",
    ),
    notes="With class_weight, reduction 'mean' is sum(w l) / sum(w): PyTorch's weighted mean; "
    "an all-ignored batch gives 0 here where PyTorch gives NaN. Label smoothing is applied "
    "to the one-hot target, then the target class's weight multiplies the whole element "
    "(PyTorch weights each class's smoothing term by that class's weight instead).",
)

CATEGORICAL_FOCAL = _categorical(
    name="categorical_focal",
    entry_seconds=35e-9,
    summary="Focal cross-entropy over classes: easy positions weigh less.",
    formula=Formula(
        loss="l = -sum_c alpha y_c (1 - q_c)^gamma log q_c (alpha = 1 when null)",
        gradient="g_c = y_c [(1 - q_c)^gamma - gamma (1 - q_c)^(gamma-1) q_c log q_c]; "
        "logits: dl/dx_j = -alpha (g_j - q_j sum_c g_c); probabilities: dl/dp_c = -alpha g_c / q_c",
    ),
    params=CategoricalFocalParams,
    kernel=kernels.categorical_focal,
    kernel_args=lambda params: {"alpha": params.alpha if params.alpha is not None else 1.0},
    domain=probabilities_and_soft_targets,
    references=("keras.losses.CategoricalFocalCrossentropy", "Lin et al., Focal Loss (2017)"),
    notes="Keras's default alpha is 0.25; here null means no alpha factor (1).",
)

CATEGORICAL_HINGE = _categorical(
    name="categorical_hinge",
    entry_seconds=10e-9,
    summary="Keras's categorical hinge on raw scores against one-hot targets.",
    formula=Formula(
        loss="pos = sum_c y_c p_c; neg = max_c (1 - y_c) p_c; l = max(0, neg - pos + 1)",
        gradient="where l > 0: dl/dp_c = (1 - y_c)[c = argmax] - y_c; else 0",
    ),
    params=NoParams,
    kernel=kernels.categorical_hinge,
    example={"predictions": [[0.7, 0.2, 1.1], [0.1, 0.3, 0.6]], "targets": [[1, 0, 0], [0, 0, 1]]},
    domain=hinge_target_domain,
    references=("keras.losses.CategoricalHinge",),
    notes="Predictions are raw scores (no from_logits). Targets are meant one-hot; values in "
    "[0, 1] are accepted and enter the formula as they are, as in Keras. At a tie for the "
    "largest negative score the first class takes the subgradient.",
)

MULTI_MARGIN = _categorical(
    name="multi_margin",
    entry_seconds=60e-9,
    summary="PyTorch's multi-class margin loss on (N, C) scores and integer labels.",
    formula=Formula(
        loss="l = sum_{j != t} max(0, m - x_t + x_j)^P / C",
        gradient="each active term h_j > 0 adds P h_j^(P-1) / C to dl/dx_j and subtracts it "
        "from dl/dx_t",
    ),
    params=MultiMarginParams,
    contract=ClassLabels("samples"),
    kernel=kernels.multi_margin,
    kernel_args=lambda params: {"power": params.p},
    example={"predictions": [[0.1, 0.2, 0.4, 0.8]], "targets": [3]},
    references=("torch.nn.MultiMarginLoss",),
    notes="PyTorch's per-class `weight` argument is not offered. Predictions must be (N, C).",
)

KL_DIVERGENCE = _categorical(
    name="kl_divergence",
    entry_seconds=90e-9,
    summary="Kullback-Leibler divergence KL(y || q) per position.",
    formula=Formula(
        loss="l = sum_c y_c (log y_c - log q_c), 0 log 0 = 0; q = softmax(x) or clip(p, eps, 1 - eps)",
        gradient="logits: dl/dx_c = q_c sum_k y_k - y_c; probabilities: dl/dp_c = -y_c / q_c",
    ),
    params=ProbabilityParams,
    kernel=kernels.kl_divergence,
    example={
        "predictions": [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]],
        "targets": [[0.5, 0.4, 0.1], [0.0, 0.6, 0.4]],
    },
    domain=probabilities_and_soft_targets,
    references=("torch.nn.KLDivLoss", "keras.losses.KLDivergence"),
    notes="PyTorch's KLDivLoss takes log-probabilities as input; here predictions are "
    "probabilities (or logits with from_logits). Targets are not clipped (Keras clips them to "
    "[eps, 1]); 0 log 0 = 0. With probabilities that do not sum to 1, values can be negative.",
    properties=frozenset(),
)
