"""Overlap losses (dice, jaccard, tversky): hand-checked values, identities, empty classes,
per_class extras and extreme logits.

Provenance is written next to every number: "by hand" means from the formulas in
../shared/LOSSES.md ("Overlap") and the conventions in ../shared/API.md, with the fractions
worked out on paper. The box losses are in test_box_golden.py, the sequence losses in
test_sequence_golden.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from tests import reference
from tests.reference.gradients import finite_difference_gradient
from tests.strategies.samplers import Case
from tests.support.engine import compute_case
from tests.support.engine import run_loss as run

OVERLAP = ("dice", "jaccard", "tversky")


def approx(value, rel=1e-14, abs=0.0):
    return pytest.approx(value, rel=rel, abs=abs)


# --- overlap: by hand ----------------------------------------------------------------------

# One sample, 2x2 "image": q = [[0.9, 0.2], [0.6, 0.1]], y = [[1, 0], [1, 0]]. By hand:
# I = 0.9 + 0.6 = 1.5, P = 1.8, G = 2, FP = 0.2 + 0.1 = 0.3, FN = 0.1 + 0.4 = 0.5, s = 1.
Q_2X2 = [[[0.9, 0.2], [0.6, 0.1]]]
Y_2X2 = [[[1.0, 0.0], [1.0, 0.0]]]
HAND_2X2 = [
    # dice 1 - (2I + s) / (P + G + s) = 1 - 4 / 4.8 = 1/6; dl/dq = -(2y D - (2I + s)) / D^2,
    # D = 4.8: -5.6 / 23.04 where y = 1, 4 / 23.04 where y = 0.
    ("dice", {}, 1 / 6, [[-5.6 / 23.04, 4 / 23.04], [-5.6 / 23.04, 4 / 23.04]]),
    # jaccard 1 - (I + s) / (P + G - I + s) = 1 - 2.5 / 3.3 = 8/33; dl/dq = -(y U - (I + s)
    # (1 - y)) / U^2, U = 3.3: -3.3 / 10.89 where y = 1, 2.5 / 10.89 where y = 0.
    ("jaccard", {}, 8 / 33, [[-3.3 / 10.89, 2.5 / 10.89], [-3.3 / 10.89, 2.5 / 10.89]]),
    # tversky (alpha = beta = 1/2) 1 - (I + s) / (I + FP/2 + FN/2 + s) = 1 - 2.5 / 2.9 = 4/29;
    # dD/dq = y + alpha (1 - y) - beta y = 1/2 either way, dl/dq = -(y D - (I + s) / 2) / D^2:
    # -(2.9 - 1.25) / 8.41 where y = 1, 1.25 / 8.41 where y = 0.
    ("tversky", {}, 4 / 29, [[-1.65 / 8.41, 1.25 / 8.41], [-1.65 / 8.41, 1.25 / 8.41]]),
    # tversky gamma 2: (4/29)^2, slope 2 (4/29) times the gamma-1 slope.
    (
        "tversky",
        {"gamma": 2.0},
        (4 / 29) ** 2,
        [[-2 * 4 / 29 * 1.65 / 8.41, 2 * 4 / 29 * 1.25 / 8.41]] * 2,
    ),
]


@pytest.mark.parametrize(("name", "params", "loss", "slopes"), HAND_2X2)
@pytest.mark.parametrize("layout", ["(N, H, W)", "(N, 1, H, W)"])
def test_2x2_binary_example_by_hand(name, params, loss, slopes, layout):
    predictions, targets = np.array(Q_2X2), np.array(Y_2X2)
    if layout == "(N, 1, H, W)":
        predictions, targets = predictions[:, None], targets[:, None]
    result = run(name, predictions, targets, params)
    assert result.cost == approx(loss)
    assert result.weight_sum == 1.0
    np.testing.assert_allclose(result.gradient.reshape(2, 2), slopes, rtol=1e-13, atol=0.0)
    np.testing.assert_allclose(result.extras["per_class"], [loss], rtol=1e-14)


def test_logit_zero_is_one_half():
    # By hand: logits 0 -> q = 1/2 everywhere; y = [[1, 0], [1, 0]]: I = 1, P = 2, G = 2,
    # dice = 1 - 3/5 = 2/5; dl/dq = -(2y 5 - 3) / 25 = -7/25 (y = 1), 3/25 (y = 0); times
    # sigmoid'(0) = 1/4 for the logits.
    result = run("dice", np.zeros((1, 2, 2)), Y_2X2, {"from_logits": True})
    assert result.cost == approx(0.4)
    np.testing.assert_allclose(result.gradient[0], [[-0.07, 0.03], [-0.07, 0.03]], rtol=1e-14)


def test_one_position_per_sample_in_multiclass_mode():
    # (N, C) predictions with labels (N,): one position. By hand, q = (0.2, 0.5, 0.3), label 1,
    # s = 1: the target class 1 - (2 q + 1) / (q + 2) = 1 - 2/2.5 = 0.2; the others
    # 1 - 1 / (q + 1): 1 - 1/1.2 = 1/6, 1 - 1/1.3 = 3/13. Sample weight 2, mask (1, 0, 1).
    result = run(
        "dice",
        [[0.2, 0.5, 0.3]],
        [1],
        {"mode": "multiclass"},
        reduction="mean",
        sample_weight=[2.0],
        mask=[[1.0, 0.0, 1.0]],
    )
    assert result.per_sample[0] == approx((1 / 6 + 3 / 13) / 2)
    assert result.weight_sum == 4.0
    np.testing.assert_allclose(result.extras["per_class"], [1 / 6, 0.0, 3 / 13], rtol=1e-14)


@pytest.mark.parametrize(
    ("name", "params"),
    [("dice", {}), ("jaccard", {}), ("tversky", {"alpha": 0.3, "beta": 0.7})],
)
def test_empty_class_is_finite_and_never_zero_over_zero(name, params):
    """A class absent from target and prediction (every q = y = 0): I = P = G = 0. By hand:
    with s = 1 the ratio is 1/1, loss 0, and the slope on each entry is 1 for dice and jaccard
    (-(0 - 1 x dP/dq) / 1), alpha for tversky (dD/dq = alpha where y = 0), 0 with squared_pred
    (dP/dq = 2q = 0); with s = 0 the denominator is max(0, eps) = eps, the ratio 0 / eps, loss
    1 and slope 0 (the max holds eps, dI/dq = y = 0). Class 0 beside it is ordinary."""
    predictions = np.array([[[0.7, 0.1, 0.4], [0.0, 0.0, 0.0]]])
    targets = np.array([[[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
    base = params | {"mode": "multilabel"}
    slope = params.get("alpha", 1.0)
    cases = [({"smooth": 1.0}, 0.0, slope), ({"smooth": 0.0}, 1.0, 0.0)]
    if name != "tversky":
        cases.append(({"smooth": 1.0, "squared_pred": True}, 0.0, 0.0))
    for extra, loss, empty_slope in cases:
        result = run(name, predictions, targets, base | extra)
        per_class = np.asarray(result.extras["per_class"])
        assert per_class[1] == loss
        assert np.all(np.isfinite(result.gradient))
        assert result.gradient[0, 1].tolist() == approx([empty_slope] * 3)
        assert per_class[0] > 0.0 and np.all(result.gradient[0, 0] != 0.0)


def test_tversky_slope_at_a_perfect_prediction():
    """T = (I + s) / D = 1 exactly where q = y is hard (FP = FN = 0): the loss is 0, but with
    gamma = 1 it is 1 - T, a smooth function of q whose slope is not 0. By hand, q = y =
    (1, 0, 1, 0), s = 1, alpha = 0.3, beta = 0.7: I = 2, D = 3; dT/dq = (y D - (I + s) dD/dq)
    / D^2 with dD/dq = y + alpha (1 - y) - beta y: (3 - 3 x 0.3) / 9 = 2.1/9 where y = 1,
    -0.9/9 where y = 0, so dl/dq = (-2.1/9, 0.1, -2.1/9, 0.1). With gamma = 2 the slope is
    2 (1 - T) dl/dq = 0. And tversky(alpha = beta = 1) is jaccard (s = 0) here too, slopes
    included: jaccard's slope at its own perfect prediction is not 0."""
    perfect = [[1.0, 0.0, 1.0, 0.0]]
    params = {"alpha": 0.3, "beta": 0.7}
    result = run("tversky", perfect, perfect, params)
    assert result.cost == 0.0
    np.testing.assert_allclose(result.gradient, [[-2.1 / 9, 0.1, -2.1 / 9, 0.1]], rtol=1e-14)
    assert run("tversky", perfect, perfect, params | {"gamma": 2.0}).gradient.tolist() == [
        [0.0] * 4
    ]
    jaccard = run("jaccard", perfect, perfect, {"smooth": 0.0})
    as_jaccard = run("tversky", perfect, perfect, {"smooth": 0.0, "alpha": 1.0, "beta": 1.0})
    assert np.all(jaccard.gradient != 0.0)
    np.testing.assert_allclose(as_jaccard.gradient, jaccard.gradient, rtol=1e-14)


@pytest.mark.parametrize("smooth", [0.0, 0.5])
def test_tversky_with_equal_weights_is_dice_or_jaccard(smooth):
    """By hand: I + FP/2 + FN/2 = (P + G) / 2 and I + FP + FN = P + G - I (FP = P - I,
    FN = G - I). With s = 0: tversky(1/2, 1/2) = 1 - I / ((P + G) / 2) = dice and
    tversky(1, 1) = jaccard; with s > 0 only the latter holds."""
    rng = np.random.default_rng(5)
    predictions = rng.uniform(0.0, 1.0, (3, 4, 5))
    targets = (rng.random((3, 4, 5)) < 0.4).astype(float)
    params = {"mode": "multilabel", "smooth": smooth}
    jaccard = run("jaccard", predictions, targets, params)
    as_jaccard = run("tversky", predictions, targets, params | {"alpha": 1.0, "beta": 1.0})
    np.testing.assert_allclose(as_jaccard.per_sample, jaccard.per_sample, rtol=1e-13)
    np.testing.assert_allclose(as_jaccard.gradient, jaccard.gradient, rtol=1e-12, atol=1e-15)
    dice = run("dice", predictions, targets, params)
    as_dice = run("tversky", predictions, targets, params)
    if smooth == 0.0:
        np.testing.assert_allclose(as_dice.per_sample, dice.per_sample, rtol=1e-13)
    else:
        assert np.all(np.abs(as_dice.per_sample - dice.per_sample) > 1e-6)


@pytest.mark.parametrize("name", OVERLAP)
@pytest.mark.parametrize("from_logits", [False, True])
def test_integer_class_map_is_its_one_hot(name, from_logits):
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 3, (4, 2, 3)).astype(float)
    one_hot = np.moveaxis(np.eye(3)[labels.astype(int)], -1, 1)
    scores = rng.normal(0.0, 1.0, (4, 3, 2, 3))
    predictions = scores if from_logits else np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    params = {"mode": "multiclass", "from_logits": from_logits, "class_weight": [0.5, 1.0, 2.0]}
    dense = run(name, predictions, one_hot, params, reduction="mean")
    sparse = run(name, predictions, labels, params, reduction="mean")
    assert sparse.cost == approx(dense.cost)
    np.testing.assert_allclose(sparse.gradient, dense.gradient, rtol=1e-14, atol=1e-17)
    np.testing.assert_allclose(sparse.extras["per_class"], dense.extras["per_class"], rtol=1e-14)


def test_include_background_false_drops_class_0_only_in_the_weights():
    """Class 0 weighs 0: the cost is the weighted mean over classes 1.., per_class[0] is 0
    (its weights sum to 0), the other classes' per_class are unchanged, and with probabilities
    (no softmax coupling) class 0's entries get no gradient."""
    rng = np.random.default_rng(3)
    predictions = rng.dirichlet(np.ones(3), (2, 4)).transpose(0, 2, 1)
    labels = rng.integers(0, 3, (2, 4)).astype(float)
    params = {"mode": "multiclass"}
    both = run("dice", predictions, labels, params, reduction="mean")
    without = run("dice", predictions, labels, params | {"include_background": False}, "mean")
    losses = reference.element_losses("dice", predictions, labels, params)
    assert without.weight_sum == 4.0
    assert without.cost == approx(math.fsum(losses[1:3] + losses[4:6]) / 4)
    assert np.asarray(without.extras["per_class"])[0] == 0.0
    np.testing.assert_array_equal(without.extras["per_class"][1:], both.extras["per_class"][1:])
    assert np.all(without.gradient[:, 0] == 0.0) and np.all(without.gradient[:, 1:] != 0.0)


def test_per_class_is_the_weighted_mean_over_samples():
    """By hand from the element losses l_(n, c): per_class[c] = sum_n w l / sum_n w with
    w = sample_weight x class_weight x mask; sample 2 weighs 0, class 2 is masked out in every
    weighted sample (per_class 0) and class 1 has class weight 0 (also 0)."""
    rng = np.random.default_rng(8)
    predictions = rng.uniform(0.0, 1.0, (3, 4, 6))
    targets = (rng.random((3, 4, 6)) < 0.5).astype(float)
    mask = np.array([[1.0, 1.0, 0.0, 0.5], [0.25, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    params = {"mode": "multilabel", "class_weight": [2.0, 0.0, 1.0, 3.0]}
    result = run("jaccard", predictions, targets, params, sample_weight=[1.0, 3.0, 0.0], mask=mask)
    losses = np.reshape(reference.element_losses("jaccard", predictions, targets, params), (3, 4))
    expected = [
        (1.0 * 2 * losses[0, 0] + 3.0 * 2 * 0.25 * losses[1, 0]) / (2 + 1.5),
        0.0,
        0.0,
        (1.0 * 3 * 0.5 * losses[0, 3] + 3.0 * 3 * losses[1, 3]) / (1.5 + 9),
    ]
    np.testing.assert_allclose(result.extras["per_class"], expected, rtol=1e-14, atol=0.0)


EXTREME = np.array([1e4, -1e4, 0.0, 1e4, 5e3, -1e4, 7.0, -2.5e3, 1e4, -1e4, 0.0, 3.0])


@pytest.mark.parametrize("name", OVERLAP)
@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_logits_of_1e4_are_finite_and_match_the_reference(name, mode):
    """Saturated sigmoid / softmax: q is exactly 0 or 1, the loss finite and equal to the
    reference, the gradient finite and equal to central differences of the reference (step
    1e-4: the losses are O(1), so the rounding error is ~1e-12)."""
    predictions = EXTREME.reshape(2, 3, 2)
    if mode == "multiclass":
        targets = np.array([[0.0, 2.0], [1.0, 1.0]])
    else:
        targets = np.array([[[1, 0], [0, 1], [1, 1]], [[0, 0], [1, 0], [0.5, 1]]], dtype=float)
    params = {"mode": mode, "from_logits": True, "smooth": 0.5}
    case = Case(name, predictions, targets, params, sample_weight=np.array([1.0, 2.0]))
    result = compute_case(case)
    expected = reference.reference_result(name, predictions, targets, params, case.sample_weight)
    assert result.cost == approx(expected.cost, 1e-12, 1e-15)
    np.testing.assert_allclose(result.per_sample, expected.per_sample, rtol=1e-12, atol=1e-15)
    assert np.all(np.isfinite(result.gradient))
    differences = finite_difference_gradient(case, "mean", step=1e-4, relative=False)
    np.testing.assert_allclose(result.gradient, differences, rtol=1e-6, atol=1e-9)
