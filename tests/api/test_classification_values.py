"""The binary and categorical losses through POST /v1/losses/{name}, checked against API.md and
LOSSES.md: values and gradients computed by hand, relations between losses and inputs, and
layouts (multi-label, segmentation) with ignore_index and class weights. Extremes are in
test_classification_extremes.py, every 422 in test_classification_errors.py.

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
from service.losses.registry import LossSpec
from tests.api.examples import (
    SEGMENT,
)
from tests.api.helpers import (
    PROBABILISTIC,
    assert_result,
    defaults_body,
    post_loss,
    probabilities_of,
    spec_params,
)

LN2 = math.log(2.0)
CLIPPED_ONE = 1.0 - 1e-7  # 1 - eps in float64: where a probability of 1 is clipped to


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
