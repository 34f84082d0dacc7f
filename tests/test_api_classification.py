"""The binary and categorical losses through POST /v1/losses/{name}, checked against API.md
and LOSSES.md: values and gradients computed by hand, layouts (multi-label, segmentation),
ignore_index and class weights, numerical extremes, and every 422 their inputs can cause.

"By hand" means from LOSSES.md's formula with API.md's conventions (element weight
w_e = sample_weight[i] * class_weight[t_e] * mask_e, 0 where ignored; cost = sum / weight_sum;
gradient = w_e / W * dl_e/dp), on numbers chosen so that the arithmetic is exact or a log.
The tables are kept one case per few lines (``fmt: off``): they are data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY, LossSpec
from tests.test_api import assert_result, defaults_body, element_grid, post_loss, probabilities_of
from tests.test_errors import assert_problem, post

LN2 = math.log(2.0)
CLIPPED_ONE = 1.0 - 1e-7  # 1 - eps in float64: where a probability of 1 is clipped to
CLASSIFICATION = [
    name for name, spec in REGISTRY.items() if spec.family in ("binary", "categorical")
]
#: Losses with from_logits: predictions are probabilities unless it is true.
PROBABILISTIC = [
    name for name in CLASSIFICATION if "from_logits" in REGISTRY[name].params.model_fields
]


def spec_params(names: list[str]) -> list[Any]:
    return [pytest.param(REGISTRY[name], id=name) for name in names]


def finite_numbers(result: dict[str, Any]) -> None:
    """Every number of a 200 is finite (a null, which is how orjson writes NaN, fails too)."""
    for key in ("cost", "per_sample", "gradient", "sum", "weight_sum"):
        assert np.isfinite(np.asarray(result[key], dtype=float)).all(), (key, result[key])


# --- hand-computed results -------------------------------------------------------------------

# Logit rows with simple softmaxes: [0, ln 2, 0] -> [1/4, 1/2, 1/4];
# [ln 3, 0, 0] -> [3/5, 1/5, 1/5].
QUARTERS = [0.0, LN2, 0.0]
FIFTHS = [math.log(3.0), 0.0, 0.0]
CCE_EXAMPLE = {"predictions": [[0.7, 0.2, 0.1]], "targets": [[1, 0, 0]]}
MULTI_MARGIN_EXAMPLE = {"predictions": [[0.1, 0.2, 0.4, 0.8]], "targets": [3]}
# With t = 2y - 1: h = 1 - t p = [[0.2, 0.6], [-0.5, 0.7]] -> hinge losses [[0.2, 0.6], [0, 0.7]].
HINGE_EXAMPLE = {"predictions": [[0.8, -0.4], [-1.5, 0.3]], "targets": [[1, 0], [0, 1]]}
# Element losses -ln q_t = [ln 2, ln(5/3), ignored]; weights class_weight[t] = [0.5, 2, 0]. The
# mean is PyTorch's cross_entropy(weight=class_weight, ignore_index=-100): sum(w_t l) / sum(w_t).
SPARSE_WEIGHTED = {
    "predictions": [QUARTERS, FIFTHS, [1.0, 2.0, 3.0]],
    "targets": [1, 0, -100],
    "params": {"from_logits": True, "class_weight": [2.0, 0.5, 1.0]},
}
SPARSE_WEIGHTED_COST = (0.5 * LN2 + 2.0 * math.log(5 / 3)) / 2.5
SEGMENT = {
    "predictions": [[[0.1, 0.2], [0.2, 0.2], [0.7, 0.6]]],
    "targets": [[[0, 0], [0, 1], [1, 0]]],
}

# fmt: off
HAND_COMPUTED = [
    pytest.param(
        "binary_cross_entropy", {"predictions": [[0.5, 0.5]], "targets": [[1, 0]]},
        # -ln 0.5 = ln 2 for both; dl/dp = -1/p = -2 and 1/(1 - p) = 2, over W = 2.
        {"per_sample": [LN2], "cost": LN2, "sum": 2 * LN2, "weight_sum": 2, "gradient": [[-1, 1]]},
        id="bce-half-is-log-2"),
    pytest.param(
        "bce", {"predictions": [[0, 0]], "targets": [[1, 0]],
                "params": {"from_logits": True, "pos_weight": 3}},
        # softplus(0) = ln 2: [3 ln 2, ln 2]; -w y sigmoid(-x) + (1 - y) sigmoid(x), over W = 2.
        {"loss": "binary_cross_entropy", "cost": 2 * LN2, "gradient": [[-0.75, 0.25]]},
        id="bce-logits-pos-weight-scalar"),
    pytest.param(
        "binary_cross_entropy", {"predictions": [[0, 0], [0, 0]], "targets": [[1, 1], [1, 0]],
                                 "params": {"from_logits": True, "pos_weight": [2, 3]}},
        # One pos_weight per last-axis entry: [[2, 3], [2, 1 (a negative)]] ln 2, over W = 4.
        {"per_sample": [2.5 * LN2, 1.5 * LN2], "cost": 2 * LN2, "sum": 8 * LN2,
         "gradient": [[-0.25, -0.375], [-0.25, 0.125]]},
        id="bce-logits-pos-weight-per-label"),
    pytest.param(
        "binary_cross_entropy",
        {"predictions": [0.8], "targets": [1], "params": {"label_smoothing": 0.2}},
        # y' = 1 * 0.8 + 0.2 / 2 = 0.9: -(0.9 ln 0.8 + 0.1 ln 0.2); -0.9/0.8 + 0.1/0.2.
        {"cost": -(0.9 * math.log(0.8) + 0.1 * math.log(0.2)), "gradient": [-0.625]},
        id="bce-label-smoothing"),
    pytest.param(
        "binary_cross_entropy", {"predictions": [0, 1], "targets": [1, 1], "params": {"eps": 0.1}},
        # Clipped to [0.1, 0.9]: [-ln 0.1, -ln 0.9]; -1/pc at the clipped value, over W = 2.
        {"per_sample": [math.log(10), -math.log(0.9)], "gradient": [-5, -0.5 / 0.9]},
        id="bce-eps"),
    pytest.param(
        "log_loss", {"predictions": [[0, 1]], "targets": [[1, 0]]},
        # Exact 0 and 1 on the wrong side, default eps 1e-7: -ln 1e-7 and -ln(1 - (1 - 1e-7)).
        {"loss": "binary_cross_entropy", "sum": -math.log(1e-7) - math.log(1 - CLIPPED_ONE),
         "gradient": [[-0.5e7, 0.5 / (1 - CLIPPED_ONE)]]},
        id="bce-exact-0-and-1-clipped"),
    pytest.param(
        "binary_focal",
        {"predictions": [[0.5, 0.5]], "targets": [[1, 0]], "params": {"alpha": 0.25}},
        # 1 - p_t = 1/2, gamma 2: a_t ln 2 / 4, a_t = [0.25, 0.75]. d/dp (1-p)^2 (-ln p) =
        # 2(1-p) ln p - (1-p)^2/p = -ln 2 - 1/2 at p = 1/2; the y = 0 entry mirrors it.
        {"per_sample": [LN2 / 8], "sum": LN2 / 4,
         "gradient": [[0.25 * (-LN2 - 0.5) / 2, 0.75 * (LN2 + 0.5) / 2]]},
        id="focal-alpha"),
    pytest.param(
        "binary_focal", {"predictions": [0], "targets": [1], "params": {"from_logits": True}},
        # sigmoid(0) = 1/2: ln 2 / 4; dl/dx = dl/dp * sigmoid(0) sigmoid(-0) = (-ln 2 - 1/2) / 4.
        {"cost": LN2 / 4, "gradient": [(-LN2 - 0.5) / 4]},
        id="focal-logits"),
    pytest.param(
        "hinge", HINGE_EXAMPLE,
        # Losses [[0.2, 0.6], [0, 0.7]], W = 4; dl/dp = -t where active.
        {"per_sample": [0.4, 0.35], "cost": 0.375, "gradient": [[-0.25, 0.25], [0, -0.25]]},
        id="hinge"),
    pytest.param(
        "hinge", {"predictions": [1, -0.5, 1], "targets": [1, 0, 1], "params": {"margin": 2}},
        # margin 2: h = 2 - t p = [1, 1.5, 1]; gradient -t / 3.
        {"per_sample": [1, 1.5, 1], "gradient": [-1 / 3, 1 / 3, -1 / 3]},
        id="hinge-margin-2"),
    pytest.param(
        "hinge", {"predictions": [1, -0.5], "targets": [1, 0]},
        # h = [0, 0.5]: at the kink h = 0 the loss and its derivative are 0 (API.md).
        {"per_sample": [0, 0.5], "gradient": [0, 0.5]},
        id="hinge-kink"),
    pytest.param(
        "squared_hinge", HINGE_EXAMPLE,
        # h^2 = [[0.04, 0.36], [0, 0.49]]; dl/dp = -2 t h, over W = 4.
        {"per_sample": [0.2, 0.245], "cost": 0.2225, "gradient": [[-0.1, 0.3], [0, -0.35]]},
        id="squared-hinge"),
    pytest.param(
        "cce", CCE_EXAMPLE,
        # -ln 0.7; dl/dp = -y/p: -1/0.7 on the true class, 0 elsewhere.
        {"loss": "categorical_cross_entropy", "cost": -math.log(0.7), "weight_sum": 1,
         "gradient": [[-1 / 0.7, 0, 0]]},
        id="cce-one-hot"),
    pytest.param(
        "categorical_cross_entropy", {**CCE_EXAMPLE, "params": {"label_smoothing": 0.3}},
        # y' = 0.7 y + 0.3/3 = [0.8, 0.1, 0.1]: -sum y' ln p; -y'/p.
        {"cost": -(0.8 * math.log(0.7) + 0.1 * math.log(0.2) + 0.1 * math.log(0.1)),
         "gradient": [[-0.8 / 0.7, -0.5, -1]]},
        id="cce-label-smoothing"),
    pytest.param(
        "categorical_cross_entropy",
        {"predictions": [QUARTERS], "targets": [[0.5, 0.5, 0]], "params": {"from_logits": True}},
        # Soft target: -(0.5 ln 1/4 + 0.5 ln 1/2) = 1.5 ln 2; q sum(y) - y = [-1/4, 0, 1/4].
        {"cost": 1.5 * LN2, "gradient": [[-0.25, 0, 0.25]]},
        id="cce-logits-soft-target"),
    pytest.param(
        "categorical_cross_entropy", {**SEGMENT, "mask": [[1, 0]]},
        # (N, C, d1) = (1, 3, 2): each position is an element; the masked one weighs 0.
        {"per_sample": [-math.log(0.7)], "weight_sum": 1,
         "gradient": [[[0, 0], [0, 0], [-1 / 0.7, 0]]]},
        id="cce-spatial-mask"),
    pytest.param(
        "sparse_categorical_cross_entropy", SPARSE_WEIGHTED,
        # per_sample leaves the weights out (one element each; the ignored sample gives 0);
        # gradient w/W (q - onehot): 0.2 [1/4, -1/2, 1/4], 0.8 [-2/5, 1/5, 1/5], 0.
        {"cost": SPARSE_WEIGHTED_COST, "per_sample": [LN2, math.log(5 / 3), 0],
         "sum": 2.5 * SPARSE_WEIGHTED_COST, "weight_sum": 2.5,
         "gradient": [[0.05, -0.1, 0.05], [-0.32, 0.16, 0.16], [0, 0, 0]]},
        id="sparse-class-weight-and-ignored"),
    pytest.param(
        "sparse_cce", {**SPARSE_WEIGHTED, "sample_weight": [1, 3, 5]},
        # Class weight times sample weight: w = [0.5, 6, 0].
        {"loss": "sparse_categorical_cross_entropy",
         "cost": (0.5 * LN2 + 6 * math.log(5 / 3)) / 6.5, "weight_sum": 6.5},
        id="sparse-class-weight-and-sample-weight"),
    pytest.param(
        "sparse_categorical_cross_entropy",
        {"predictions": [[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]], "targets": [0, 2],
         "params": {"label_smoothing": 0.3, "class_weight": [2, 1, 4]}},
        # y' = 0.7 onehot + 0.1: l = [0.8 + 0.2 * 2, 0.1 * 2 + 0.1 + 0.8 * 2] ln 2 =
        # [1.2, 1.9] ln 2; the target's weight multiplies the whole element (LOSSES.md;
        # PyTorch weighs each smoothing term by its own class): (2 * 1.2 + 4 * 1.9) ln 2 / 6.
        {"per_sample": [1.2 * LN2, 1.9 * LN2], "cost": 10 / 6 * LN2},
        id="sparse-label-smoothing-with-class-weight"),
    pytest.param(
        "cross_entropy", {**CCE_EXAMPLE, "targets": [2], "params": {"ignore_index": 2}},
        # ignore_index inside [0, C): the only element weighs 0.
        {"loss": "sparse_categorical_cross_entropy", "cost": 0, "weight_sum": 0,
         "gradient": [[0, 0, 0]]},
        id="sparse-ignore-index-in-range"),
    pytest.param(
        "sparse_categorical_cross_entropy", {**SEGMENT, "targets": [[2, 255]],
                                             "params": {"ignore_index": 255}},
        # Positions: label 2 (p = 0.7) and an ignored one.
        {"per_sample": [-math.log(0.7)], "weight_sum": 1,
         "gradient": [[[0, 0], [0, 0], [-1 / 0.7, 0]]]},
        id="sparse-spatial-ignore-index-255"),
    pytest.param(
        "sparse_categorical_cross_entropy", {**CCE_EXAMPLE, "targets": [-100]},
        # Every element ignored: 0, where PyTorch gives NaN (LOSSES.md).
        {"cost": 0, "sum": 0, "weight_sum": 0, "per_sample": [0], "gradient": [[0, 0, 0]]},
        id="sparse-all-ignored"),
    pytest.param(
        "categorical_focal", {**CCE_EXAMPLE, "params": {"alpha": 0.25}},
        # -alpha (1 - p)^2 ln p; d/dp = alpha [2 (1 - p) ln p - (1 - p)^2 / p] at p = 0.7.
        {"cost": -0.25 * 0.09 * math.log(0.7),
         "gradient": [[0.25 * (0.6 * math.log(0.7) - 0.09 / 0.7), 0, 0]]},
        id="categorical-focal-alpha"),
    pytest.param(
        "categorical_hinge", {"predictions": [[0.7, 0.2, 1.1], [0.1, 0.3, 0.6], [3, 0.2, 1.1]],
                              "targets": [[1, 0, 0], [0, 0, 1], [1, 0, 0]]},
        # Keras: max(0, max_neg - pos + 1) = [1.1 - 0.7 + 1, 0.3 - 0.6 + 1, 0 (inactive)];
        # where active +1 on the largest negative score, -1 on the target, over W = 3.
        {"per_sample": [1.4, 0.7, 0], "cost": 0.7,
         "gradient": [[-1 / 3, 0, 1 / 3], [0, 1 / 3, -1 / 3], [0, 0, 0]]},
        id="categorical-hinge"),
    pytest.param(
        "multi_margin", MULTI_MARGIN_EXAMPLE,
        # PyTorch MultiMarginLoss docs: 0.25 ((1 - 0.7) + (1 - 0.6) + (1 - 0.4)) = 0.325. Each
        # active term adds 1/C to its class and takes 1/C from the target.
        {"cost": 0.325, "per_sample": [0.325], "weight_sum": 1,
         "gradient": [[0.25, 0.25, 0.25, -0.75]]},
        id="multi-margin-pytorch-docs"),
    pytest.param(
        "multi_margin", {**MULTI_MARGIN_EXAMPLE, "params": {"p": 2}},
        # (0.3^2 + 0.4^2 + 0.6^2) / 4; each active term adds 2 h / C.
        {"cost": 0.1525, "gradient": [[0.15, 0.2, 0.3, -0.65]]},
        id="multi-margin-p-2"),
    pytest.param(
        "multi_margin", {**MULTI_MARGIN_EXAMPLE, "params": {"margin": 0.5}},
        # h = 0.5 - 0.8 + x_j = [-0.2, -0.1, 0.1]: only class 2 is active.
        {"cost": 0.025, "gradient": [[0, 0, 0.25, -0.25]]},
        id="multi-margin-margin"),
    pytest.param(
        "kl_divergence", {"predictions": [[0.25, 0.5, 0.25]], "targets": [[0.5, 0.5, 0]]},
        # 0.5 ln(0.5/0.25) + 0.5 ln 1 + 0 log 0 = ln 2 / 2; -y/q = [-2, -1, 0].
        {"cost": LN2 / 2, "gradient": [[-2, -1, 0]]},
        id="kl-probabilities"),
    pytest.param(
        "kl_divergence",
        {"predictions": [QUARTERS], "targets": [[0.5, 0.5, 0]], "params": {"from_logits": True}},
        # The same q from logits: q sum(y) - y = [-1/4, 0, 1/4].
        {"cost": LN2 / 2, "gradient": [[-0.25, 0, 0.25]]},
        id="kl-logits"),
]
# fmt: on


@pytest.mark.parametrize(("name", "body", "expected"), HAND_COMPUTED)
def test_hand_computed_results(
    client: TestClient, name: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    result = post_loss(client, name, body)
    assert_result(result, {"count": len(body["predictions"]), **expected})
    assert np.shape(result["gradient"]) == np.shape(body["predictions"])


# --- relations between losses, inputs and conventions ----------------------------------------


@pytest.mark.parametrize("name", ["hinge", "squared_hinge"])
def test_hinge_targets_zero_one_and_plus_minus_one_give_identical_responses(
    client: TestClient, name: str
) -> None:
    body = {**HINGE_EXAMPLE, "sample_weight": [1, 2], "mask": [[1, 0.5], [1, 1]]}
    plus_minus = (2 * np.asarray(body["targets"]) - 1).tolist()
    assert post_loss(client, name, body) == post_loss(client, name, {**body, "targets": plus_minus})


SOFT_BINARY = {"predictions": [[0.9, 0.2]], "targets": [[1, 0.3]]}
SOFT_DENSE = {"predictions": [[0.6, 0.3, 0.1]], "targets": [[0.2, 0.8, 0]]}


@pytest.mark.parametrize(
    ("focal", "plain", "body"),
    [
        ("binary_focal", "binary_cross_entropy", SOFT_BINARY),
        ("categorical_focal", "categorical_cross_entropy", SOFT_DENSE),
    ],
)
@pytest.mark.parametrize("from_logits", [False, True])
def test_focal_with_gamma_zero_is_the_cross_entropy(
    client: TestClient, focal: str, plain: str, body: dict[str, Any], from_logits: bool
) -> None:
    """LOSSES.md: (1 - p_t)^0 = 1 and alpha null: the focal loss is the cross-entropy."""
    reference = post_loss(client, plain, {**body, "params": {"from_logits": from_logits}})
    params = {"from_logits": from_logits, "gamma": 0}
    gamma_zero = post_loss(client, focal, {**body, "params": params})
    for key in ("cost", "per_sample", "gradient", "sum"):
        np.testing.assert_allclose(gamma_zero[key], reference[key], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("spec", spec_params(PROBABILISTIC))
def test_logits_and_their_probabilities_give_the_same_loss_and_the_chained_gradient(
    client: TestClient, spec: LossSpec
) -> None:
    """from_logits applies the sigmoid (binary) or the softmax over axis 1 (categorical): the
    cost on logits equals the cost on their probabilities, and the logit gradient is the
    probability gradient times the link's Jacobian (sigmoid: p(1 - p); softmax:
    g_x = q (g_q - sum_k q_k g_q,k))."""
    body = defaults_body(spec)
    # Moderate logits: no probability comes within eps of 0 or 1, so nothing is clipped.
    logits = np.asarray(body["predictions"], dtype=float) * 3 - 1
    probabilities = probabilities_of(spec, logits)
    logit_body = {**body, "predictions": logits.tolist(), "params": {"from_logits": True}}
    on_logits = post_loss(client, spec.name, logit_body)
    on_probabilities = post_loss(client, spec.name, {**body, "predictions": probabilities.tolist()})
    for key in ("cost", "per_sample", "sum", "weight_sum"):
        np.testing.assert_allclose(on_logits[key], on_probabilities[key], rtol=1e-12)
    g_q = np.asarray(on_probabilities["gradient"])
    if spec.family == "binary":
        chained = g_q * probabilities * (1 - probabilities)
    else:
        chained = probabilities * (g_q - (probabilities * g_q).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(on_logits["gradient"], chained, rtol=1e-10, atol=1e-15)


# --- segmentation: (N, C, H, W) with integer targets (N, H, W) ---------------------------------


def test_segmentation_cross_entropy_with_mask_ignore_index_and_class_weight(
    client: TestClient,
) -> None:
    """Per-pixel cross-entropy computed naively (log-softmax over axis 1) with
    w = sample_weight * class_weight[t] * mask * (t != ignore_index) (API.md): PyTorch's
    weighted cross-entropy mean where mask and sample weights are 1."""
    rng = np.random.default_rng(20240601)
    logits = rng.normal(scale=3.0, size=(2, 3, 4, 4))
    labels = rng.integers(0, 3, size=(2, 4, 4))
    labels[0, 0, :2] = labels[1, 3, 3] = 255
    mask = rng.choice([0.0, 0.5, 1.0], size=(2, 4, 4))
    class_weight, sample_weight = np.array([0.2, 1.0, 3.0]), np.array([1.0, 2.0])
    body = {
        "predictions": logits.tolist(),
        "targets": labels.tolist(),
        "mask": mask.tolist(),
        "sample_weight": sample_weight.tolist(),
        "params": {"from_logits": True, "ignore_index": 255, "class_weight": class_weight.tolist()},
    }
    result = post_loss(client, "cross_entropy", body)

    log_q = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    kept = labels != 255
    safe = np.where(kept, labels, 0)
    onehot = np.moveaxis(np.eye(3)[safe], -1, 1)  # (2, 3, 4, 4)
    losses = -(onehot * log_q).sum(axis=1)
    inner = class_weight[safe] * mask * kept  # element weights without the sample's own
    weights = inner * sample_weight[:, None, None]
    total = weights.sum()
    assert result["count"] == 2
    assert result["weight_sum"] == pytest.approx(total, rel=1e-12)
    assert result["sum"] == pytest.approx((weights * losses).sum(), rel=1e-12)
    assert result["cost"] == pytest.approx((weights * losses).sum() / total, rel=1e-12)
    per_sample = (inner * losses).sum(axis=(1, 2)) / inner.sum(axis=(1, 2))
    assert result["per_sample"] == pytest.approx(per_sample.tolist(), rel=1e-12)
    assert np.shape(result["gradient"]) == (2, 3, 4, 4)
    expected_gradient = (weights / total)[:, None] * (np.exp(log_q) - onehot)
    np.testing.assert_allclose(result["gradient"], expected_gradient, rtol=1e-10, atol=1e-15)
    assert not np.any(np.asarray(result["gradient"])[0, :, 0, :2])  # ignored pixels


# --- numerical extremes ----------------------------------------------------------------------

WRONG = {"predictions": [[1e4, -1e4]], "targets": [[0, 1]]}
RIGHT = {"predictions": [[1e4, -1e4]], "targets": [[1, 0]]}
THREE = {"predictions": [[1e4, -1e4, 0]], "targets": [[0, 1, 0]]}
# fmt: off
EXTREME_LOGITS = [
    # log sigmoid(-1e4) = -1e4 exactly in float64; sigmoid(1e4) = 1: gradient (sigmoid - y) / 2.
    pytest.param("binary_cross_entropy", WRONG, {}, 1e4, [[0.5, -0.5]], id="bce-wrong"),
    pytest.param("binary_cross_entropy", RIGHT, {}, 0, [[0, 0]], id="bce-right"),
    # (1 - p_t)^gamma = 1 on the wrong side and its derivative underflows to 0: as bce.
    pytest.param("binary_focal", WRONG, {}, 1e4, [[0.5, -0.5]], id="focal-wrong"),
    pytest.param("binary_focal", WRONG, {"gamma": 0.5}, 1e4, [[0.5, -0.5]], id="focal-gamma-half"),
    pytest.param("binary_focal", RIGHT, {"gamma": 0.5}, 0, [[0, 0]], id="focal-right"),
    # log-softmax: log q = [0, -2e4, -1e4]; q - y = [1, -1, 0].
    pytest.param("categorical_cross_entropy", THREE, {}, 2e4, [[1, -1, 0]], id="cce"),
    pytest.param("categorical_focal", THREE, {"gamma": 0.5}, 2e4, [[1, -1, 0]], id="cat-focal"),
    # y' = [1, 28, 1] / 30: 28/30 * 2e4 + 1/30 * 1e4 = 19000; q - y'.
    pytest.param("sparse_categorical_cross_entropy", {**THREE, "targets": [1]},
                 {"label_smoothing": 0.1}, 19000, [[29 / 30, -28 / 30, -1 / 30]], id="sparse"),
    # 0.5 (ln 0.5 - 0) + 0.5 (ln 0.5 + 2e4) = 1e4 - ln 2; q - y.
    pytest.param("kl_divergence", {**THREE, "targets": [[0.5, 0.5, 0]]}, {}, 1e4 - LN2,
                 [[0.5, -0.5, 0]], id="kl"),
]
# fmt: on


@pytest.mark.parametrize(("name", "body", "params", "cost", "gradient"), EXTREME_LOGITS)
def test_extreme_logits_give_exact_finite_values(
    client: TestClient,
    name: str,
    body: dict[str, Any],
    params: dict[str, Any],
    cost: float,
    gradient: list[list[float]],
) -> None:
    result = post_loss(client, name, {**body, "params": {"from_logits": True, **params}})
    assert_result(result, {"cost": cost, "gradient": gradient})


def variants(names: list[str]) -> list[Any]:
    """Each loss, and again with gamma 0.5 and 0 where it has a gamma (powers of 1 - p_t whose
    derivatives blow up at 0)."""
    return [
        pytest.param(REGISTRY[name], extra, id="-".join([name, *map(str, extra.items())]))
        for name in names
        for extra in (
            [{}, {"gamma": 0.5}, {"gamma": 0}]
            if "gamma" in REGISTRY[name].params.model_fields
            else [{}]
        )
    ]


@pytest.mark.parametrize(("spec", "extra"), variants(CLASSIFICATION))
def test_logits_or_scores_of_plus_minus_1e4_give_finite_results(
    client: TestClient, spec: LossSpec, extra: dict[str, Any]
) -> None:
    body = dict(spec.example)
    shape = np.shape(body["predictions"])
    signs = np.where(np.indices(shape).sum(axis=0) % 2 == 0, 1.0, -1.0)
    params = {**body.get("params", {}), **extra}
    if spec.name in PROBABILISTIC:
        params["from_logits"] = True
    for scores in (1e4 * signs, -1e4 * signs):
        extreme = {**body, "predictions": scores.tolist(), "params": params}
        finite_numbers(post_loss(client, spec.name, extreme))


@pytest.mark.parametrize(("spec", "extra"), variants(PROBABILISTIC))
def test_probabilities_exactly_0_and_1_give_finite_results(
    client: TestClient, spec: LossSpec, extra: dict[str, Any]
) -> None:
    """Both sides: the example's probabilities rounded to 0 or 1 (mostly right) and flipped
    (confidently wrong); clipping to [eps, 1 - eps] keeps every log finite."""
    body = defaults_body(spec)
    rounded = np.round(np.asarray(body["predictions"], dtype=float))
    for predictions in (rounded, 1 - rounded):
        saturated = {**body, "predictions": predictions.tolist(), "params": extra}
        finite_numbers(post_loss(client, spec.name, saturated))


@pytest.mark.parametrize("eps", [1e-17, 5e-324])
@pytest.mark.parametrize(("spec", "extra"), variants(PROBABILISTIC))
def test_probabilities_0_and_1_with_an_eps_below_float64_resolution_never_get_a_5xx(
    client: TestClient, spec: LossSpec, extra: dict[str, Any], eps: float
) -> None:
    """eps is accepted in (0, 0.5), but below ~1.1e-16 1 - eps rounds to 1, so a clipped
    probability can still be exactly 1. A 200 with finite numbers or a 422, never a 500
    (API.md: "No input makes the service answer 500")."""
    body = defaults_body(spec)
    rounded = np.round(np.asarray(body["predictions"], dtype=float))
    for predictions in (rounded, 1 - rounded):
        params = {**extra, "eps": eps}
        response = post(
            client, spec.name, {**body, "predictions": predictions.tolist(), "params": params}
        )
        if response.status_code == 200:
            finite_numbers(response.json())
        else:
            assert_problem(response, 422)


# --- 422s ------------------------------------------------------------------------------------

BINARY = {"predictions": [[0.9, 0.2], [0.3, 0.8]], "targets": [[1, 0], [0, 1]]}
DENSE = {"predictions": [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], "targets": [[1, 0, 0], [0, 0, 1]]}
LABELS = {"predictions": DENSE["predictions"], "targets": [0, 2]}
#: A valid request for each loss (checked below), which each 422 case changes in one place.
VALID = {
    **dict.fromkeys(["binary_cross_entropy", "binary_focal", "hinge", "squared_hinge"], BINARY),
    **dict.fromkeys(
        ["categorical_cross_entropy", "categorical_focal", "categorical_hinge", "kl_divergence"],
        DENSE,
    ),
    **dict.fromkeys(["sparse_categorical_cross_entropy", "multi_margin"], LABELS),
}
SOFT_TARGETS = [
    "binary_cross_entropy",
    "binary_focal",
    "categorical_cross_entropy",
    "categorical_focal",
    "kl_divergence",
]
HINGES = ["hinge", "squared_hinge"]
EPS_LOSSES = [name for name in CLASSIFICATION if "eps" in REGISTRY[name].params.model_fields]


def with_entry(array: list[Any], index: tuple[int, int], value: Any) -> list[Any]:
    changed = [list(row) for row in array]
    changed[index[0]][index[1]] = value
    return changed


def case(name: str, changes: dict[str, Any], loc: list[Any], fragments: list[str], id: str) -> Any:
    """A 422 case: VALID[name] with ``changes``; the first error's loc, and fragments its
    message must contain."""
    return pytest.param(name, {**VALID[name], **changes}, ["body", *loc], fragments, id=id)


def bad_param(names: list[str], key: str, values: list[Any], **params: Any) -> list[Any]:
    """A case per loss and value: loc params.<key>, the message names the key and the value."""
    return [
        case(name, {"params": {**params, key: value}}, ["params", key], [key, repr(value)],
             id=f"{name}-{key}-{value!r}")
        for name in names
        for value in values
    ]  # fmt: skip


SEGMENT_TARGETS_WRONG = {"predictions": SEGMENT["predictions"], "targets": [[0, 1, 1]]}
# fmt: off
INVALID = [
    *(case(name, {"targets": with_entry(VALID[name]["targets"], (1, 0), value)},
           ["targets", 1, 0], [f"targets[1][0] = {value}", "[0, 1]"],
           id=f"{name}-soft-target-{value}")
      for name in SOFT_TARGETS for value in (1.5, -0.5)),
    *(case(name, {"targets": with_entry(BINARY["targets"], (1, 1), value)}, ["targets", 1, 1],
           [f"targets[1][1] = {value}", "{0, 1}", "{-1, 1}"], id=f"{name}-target-{value}")
      for name in HINGES for value in (2, 0.5)),
    *(case(name, {"targets": [[1, 0], [-1, 1]]}, ["targets"],
           ["targets[0][1] = 0", "targets[1][0] = -1", "{0, 1}", "{-1, 1}"],
           id=f"{name}-mixed-conventions")
      for name in HINGES),
    *(case(name, {"targets": [0, value]}, ["targets", 1], [f"targets[1] = {value:g}", *expected],
           id=f"{name}-label-{value}")
      for name, value, expected in [
          ("sparse_categorical_cross_entropy", 1.5, ["integer"]),
          ("sparse_categorical_cross_entropy", 3, ["[0, 3)", "ignore_index -100"]),
          ("sparse_categorical_cross_entropy", -1, ["[0, 3)"]),
          ("multi_margin", 0.5, ["integer"]),
          ("multi_margin", 3, ["[0, 3)"]),
      ]),
    case("sparse_categorical_cross_entropy", {"params": {"class_weight": [1, 2]}},
         ["params", "class_weight"], ["class_weight", "2", "3"], id="class-weight-too-short"),
    case("sparse_categorical_cross_entropy", {"params": {"class_weight": [1, -2, 1]}},
         ["params", "class_weight", 1], ["class_weight", "-2"], id="class-weight-negative"),
    case("binary_cross_entropy", {"params": {"from_logits": True, "pos_weight": [1, 2, 3]}},
         ["params", "pos_weight"], ["pos_weight", "3", "(2, 2)"], id="pos-weight-wrong-length"),
    case("binary_cross_entropy", {"params": {"from_logits": True, "pos_weight": -1}},
         ["params", "pos_weight"], ["pos_weight", "-1"], id="pos-weight-negative"),
    case("binary_cross_entropy", {"params": {"from_logits": True, "pos_weight": [1, -1]}},
         ["params", "pos_weight", 1], ["pos_weight", "-1"], id="pos-weight-entry-negative"),
    case("binary_cross_entropy", {"params": {"pos_weight": 2}},
         ["params", "pos_weight"], ["pos_weight", "from_logits"], id="pos-weight-without-logits"),
    *bad_param(["binary_cross_entropy", "categorical_cross_entropy"], "label_smoothing", [-0.1, 1]),
    *bad_param(["sparse_categorical_cross_entropy"], "label_smoothing", [1.5]),
    *bad_param(["binary_focal", "categorical_focal"], "gamma", [-0.5]),
    *bad_param(["binary_focal", "categorical_focal"], "alpha", [-0.1, 1.5, "0.5", True]),
    *bad_param(["multi_margin"], "p", [0, 3, 1.5, "2", True]),
    *bad_param(EPS_LOSSES, "eps", [0, 0.5]),
    *bad_param(["sparse_categorical_cross_entropy"], "ignore_index", [1.5, "1", True]),
    # Shapes: both shapes named, and the shape that was expected.
    case("sparse_categorical_cross_entropy", {"targets": DENSE["targets"]}, ["targets"],
         ["(2, 3)", "integer", "must be (2,)"], id="sparse-given-one-hot-targets"),
    case("sparse_categorical_cross_entropy", SEGMENT_TARGETS_WRONG, ["targets"],
         ["(1, 3)", "(1, 3, 2)", "must be (1, 2)"], id="sparse-segmentation-targets"),
    case("categorical_cross_entropy", {"targets": LABELS["targets"]}, ["targets"],
         ["(2,)", "(2, 3)"], id="cce-given-integer-targets"),
    case("categorical_cross_entropy", {"predictions": [0.7, 0.2, 0.1], "targets": [1, 0, 0]},
         ["predictions"], ["(3,)", "(N, C, d1, ...)"], id="cce-without-class-axis"),
    case("binary_cross_entropy", {"targets": [[1, 0, 1], [0, 1, 0]]}, ["targets"],
         ["(2, 3)", "(2, 2)"], id="bce-shape-mismatch"),
    case("multi_margin", {"predictions": [[[0.1, 0.2, 0.4, 0.8]]], "targets": [[3]]},
         ["predictions"], ["(1, 1, 4)", "(N, C)"], id="multi-margin-3d"),
    case("multi_margin", {"predictions": [0.1, 0.2, 0.4, 0.8], "targets": [3]},
         ["predictions"], ["(4,)", "(N, C)"], id="multi-margin-1d"),
]
# fmt: on


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_the_bodies_the_422_cases_start_from_are_valid(client: TestClient, name: str) -> None:
    finite_numbers(post_loss(client, name, VALID[name]))


@pytest.mark.parametrize(("name", "body", "loc", "fragments"), INVALID)
def test_invalid_classification_request_is_422_naming_the_problem(
    client: TestClient, name: str, body: dict[str, Any], loc: list[Any], fragments: list[str]
) -> None:
    problem = assert_problem(post(client, name, body), 422)
    first = problem["errors"][0]
    assert first["loc"] == loc, first
    for fragment in fragments:
        assert fragment in first["msg"], f"{fragment!r} not in {first['msg']!r}"
    assert "constrained-float" not in str(problem), "a validator's internal name leaked"


@pytest.mark.parametrize("value", [1.5, -0.25])
@pytest.mark.parametrize("spec", spec_params(PROBABILISTIC))
def test_probabilities_outside_0_1_are_422_suggesting_from_logits(
    client: TestClient, spec: LossSpec, value: float
) -> None:
    body = VALID[spec.name]
    bad = {**body, "predictions": with_entry(body["predictions"], (1, 1), value)}
    first = assert_problem(post(client, spec.name, bad), 422)["errors"][0]
    assert first["loc"] == ["body", "predictions", 1, 1]
    for fragment in (f"predictions[1][1] = {value}", "[0, 1]", '"from_logits": true'):
        assert fragment in first["msg"]
    # The same values are fine as logits.
    finite_numbers(post_loss(client, spec.name, {**bad, "params": {"from_logits": True}}))


@pytest.mark.parametrize("spec", spec_params(CLASSIFICATION))
def test_mask_takes_the_element_grid(client: TestClient, spec: LossSpec) -> None:
    """A mask of zeros on the element grid gives weight_sum 0 and cost 0; a mask of the
    predictions' shape (where that differs) is a 422 naming both shapes."""
    body = VALID[spec.name]
    grid = element_grid(spec, body["predictions"])
    result = post_loss(client, spec.name, {**body, "mask": np.zeros(grid).tolist()})
    assert_result(result, {"weight_sum": 0.0, "cost": 0.0, "sum": 0.0})
    shape = np.shape(body["predictions"])
    if shape != grid:
        response = post(client, spec.name, {**body, "mask": np.ones(shape).tolist()})
        first = assert_problem(response, 422)["errors"][0]
        assert first["loc"] == ["body", "mask"]
        assert str(shape) in first["msg"]
        assert str(grid) in first["msg"]
