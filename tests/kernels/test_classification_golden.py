"""Binary and categorical losses: hand-checked values and identities from library documentation.

Provenance is written next to every number: "by hand" means from the formula in
../shared/LOSSES.md and the conventions in ../shared/API.md, with the logs and exponentials
evaluated to 30 digits (Python's ``decimal``) and rounded; library examples are named. Values
involving log or exp are compared to 1e-15 relative, exact binary fractions with ==.

Identities: label smoothing written out, focal with gamma 0 is cross-entropy, an ignored label
weighs like a zero mask, a class weight like a sample weight, and (N, C, H, W) is per-pixel
classification. The extremes of float64 are in test_classification_extremes.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from tests.support.engine import run_loss as run

RELATIVE = 1e-15
LOG_2 = 0.6931471805599453  # by hand: ln 2 = 0.693147180559945309417...


def approx(value, rel=RELATIVE):
    return pytest.approx(value, rel=rel, abs=0.0)


def assert_same(got, expected) -> None:
    """The same result, value for value (two routes to the same arithmetic)."""
    assert got.cost == approx(expected.cost, 1e-14)
    np.testing.assert_allclose(got.per_sample, expected.per_sample, rtol=1e-14, atol=0.0)
    np.testing.assert_allclose(got.gradient, expected.gradient, rtol=1e-13, atol=1e-16)
    assert got.weight_sum == approx(expected.weight_sum, 1e-15)


# --- binary --------------------------------------------------------------------------------


@pytest.mark.parametrize("y", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_bce_at_one_half_is_log_2(y, smoothing):
    # By hand: p = 1/2 -> -(y' log 1/2 + (1 - y') log 1/2) = log 2 for any y' (so any y and
    # any smoothing); dl/dp = -y'/p + (1 - y')/(1 - p) = 2 - 4 y'. Logit 0 is p = 1/2:
    # dl/dx = sigmoid(0) - y' = 1/2 - y'.
    target = y * (1.0 - smoothing) + smoothing / 2.0
    params = {"label_smoothing": smoothing}
    probabilities = run("binary_cross_entropy", [0.5], [y], params)
    assert probabilities.cost == approx(LOG_2)
    assert probabilities.gradient[0] == approx(2.0 - 4.0 * target, 1e-14)
    logits = run("binary_cross_entropy", [0.0], [y], params | {"from_logits": True})
    assert logits.cost == approx(LOG_2)
    assert logits.gradient[0] == approx(0.5 - target, 1e-14)


def test_bce_pos_weight():
    # PyTorch BCEWithLogitsLoss docs: l = -[pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))].
    # By hand at x = 0, y = 1: pw log 2, dl/dx = -pw sigmoid(0) = -pw / 2. One number (3) or one
    # per entry of the last axis ([1, 3]); y = 0 entries do not see pw.
    scalar = run("bce", [[0.0, 0.0]], [[1.0, 0.0]], {"from_logits": True, "pos_weight": 3.0})
    assert scalar.sum == approx(4.0 * LOG_2)
    np.testing.assert_allclose(scalar.gradient, [[-1.5, 0.5]], rtol=RELATIVE)
    per_column = run(
        "bce",
        [[0.0, 0.0], [0.0, 0.0]],
        np.ones((2, 2)),
        {"from_logits": True, "pos_weight": [1, 3]},
    )
    np.testing.assert_allclose(per_column.per_sample, [2.0 * LOG_2, 2.0 * LOG_2], rtol=RELATIVE)
    np.testing.assert_allclose(per_column.gradient, [[-0.5, -1.5], [-0.5, -1.5]], rtol=RELATIVE)


def test_bce_clips_probabilities_at_eps():
    # By hand (LOSSES.md, Keras's clipping): p = 0, y = 1 -> -log(1e-7) = 16.1180956509583198;
    # p = 1, y = 1 -> -log(1 - 1e-7) = 1.00000005e-7 (to 1e-8: 1 - 1e-7 is rounded to float64,
    # an error of 1e-16 / 1e-7 relative); slope at the clipped value -1 / 1e-7.
    result = run("bce", [0.0, 1.0], [1.0, 1.0])
    assert result.per_sample[0] == approx(16.11809565095832)
    assert result.per_sample[1] == approx(1.00000005e-7, 1e-8)
    assert result.gradient[0] == approx(-1e7)


def test_hinge_zero_one_targets_are_the_plus_minus_one_form():
    # LOSSES.md / Keras Hinge: {0, 1} targets are mapped to {-1, 1}. By hand with m = 1:
    # p = [0.3, -2, 2, 0.5], t = [1, -1, 1, -1] -> max(0, 1 - t p) = [0.7, 0, 0, 1.5];
    # slope -t where positive: [-1, 0, 0, 1].
    predictions = [0.3, -2.0, 2.0, 0.5]
    zero_one = run("hinge", predictions, [1.0, 0.0, 1.0, 0.0])
    plus_minus = run("hinge", predictions, [1.0, -1.0, 1.0, -1.0])
    np.testing.assert_allclose(zero_one.per_sample, [0.7, 0.0, 0.0, 1.5], rtol=1e-15)
    assert zero_one.gradient.tolist() == [-1.0, 0.0, 0.0, 1.0]
    np.testing.assert_array_equal(zero_one.per_sample, plus_minus.per_sample)
    np.testing.assert_array_equal(zero_one.gradient, plus_minus.gradient)
    # Margin 2: [1.7, 0, 0, 2.5]; margin 0: only the misclassified 0.5 -> [0, 0, 0, 0.5].
    np.testing.assert_allclose(
        run("hinge", predictions, [1, 0, 1, 0], {"margin": 2.0}).per_sample,
        [1.7, 0.0, 0.0, 2.5],
        rtol=1e-15,
    )
    assert run("hinge", predictions, [1, 0, 1, 0], {"margin": 0.0}).per_sample.tolist() == [
        0.0,
        0.0,
        0.0,
        0.5,
    ]


@pytest.mark.parametrize(
    ("margin", "expected", "slopes"),
    [
        # By hand: p = [0.5, -0.5, 3], t = [1, 1, -1]: h = m - t p = [0.5, 1.5, 4] for m = 1,
        # [1.5, 2.5, 5] for m = 2; l = h^2, slope -2 t h.
        (1.0, [0.25, 2.25, 16.0], [-1.0, -3.0, 8.0]),
        (2.0, [2.25, 6.25, 25.0], [-3.0, -5.0, 10.0]),
    ],
)
def test_squared_hinge_margins(margin, expected, slopes):
    result = run("squared_hinge", [0.5, -0.5, 3.0], [1.0, 1.0, -1.0], {"margin": margin})
    assert result.per_sample.tolist() == expected
    assert result.gradient.tolist() == slopes


def test_binary_focal_by_hand():
    # torchvision sigmoid_focal_loss / LOSSES.md, by hand: p = 0.9, y = 1, gamma = 2:
    # (1 - 0.9)^2 (-log 0.9) = 0.01 x 0.105360515657826301 = 1.05360515657826301e-3; with
    # alpha = 0.25 times 0.25. p = 0.9, y = 0, alpha = 0.25: a_t = 0.75, 1 - p_t = 0.9:
    # 0.75 x 0.81 x (-log 0.1) = 1.39882044399388275.
    assert run("binary_focal", [0.9], [1.0]).cost == approx(1.053605156578263e-3, 1e-14)
    alpha = run("binary_focal", [0.9, 0.9], [1.0, 0.0], {"alpha": 0.25})
    assert alpha.per_sample[0] == approx(0.25 * 1.053605156578263e-3, 1e-14)
    assert alpha.per_sample[1] == approx(1.3988204439938828, 1e-14)


# --- categorical ---------------------------------------------------------------------------


def test_cce_one_hot_is_minus_log_of_the_true_class():
    # By hand: one-hot target, p_true = 0.7 -> -log 0.7 = 0.356674943938732379; slope -1/0.7 on
    # the true class, 0 elsewhere (y_c = 0).
    result = run("cce", [[0.2, 0.7, 0.1]], [[0.0, 1.0, 0.0]])
    assert result.cost == approx(0.35667494393873238)
    np.testing.assert_allclose(result.gradient, [[0.0, -1.0 / 0.7, 0.0]], rtol=1e-15)


def test_sparse_cce_from_logits_by_hand():
    # By hand: logits [2, 0.5, -1], target 0: log(e^2 + e^0.5 + e^-1) - 2 = 0.241311296657157060;
    # slope softmax - one-hot, softmax = [0.785597034589275858, 0.175290392140036690,
    # 0.0391125732706874520]. With label smoothing 0.1: y' = [0.9 + 0.1/3, 0.1/3, 0.1/3],
    # -sum y' log q = 0.391311296657157060.
    result = run("sparse_cce", [[2.0, 0.5, -1.0]], [0.0], {"from_logits": True})
    assert result.cost == approx(0.2413112966571571)
    np.testing.assert_allclose(
        result.gradient,
        [[0.7855970345892759 - 1.0, 0.1752903921400367, 0.03911257327068745]],
        rtol=1e-14,
    )
    smoothed = run(
        "sparse_cce", [[2.0, 0.5, -1.0]], [0.0], {"from_logits": True, "label_smoothing": 0.1}
    )
    assert smoothed.cost == approx(0.3913112966571571, 1e-14)


def test_weighted_cross_entropy_mean_is_pytorchs():
    # PyTorch CrossEntropyLoss docs (reduction="mean" with weight): sum_n w_{t_n} l_n /
    # sum_n w_{t_n} over the non-ignored n. By hand: logits [[2, .5, -1], [.1, .2, 3], [1, 1, 1]],
    # targets [0, 2, -100], class_weight [1, 2, 0.5]: l_0 = 0.241311296657157060,
    # l_1 = log(e^.1 + e^.2 + e^3) - 3 = 0.109601464521465334, the third ignored;
    # mean = (1 l_0 + 0.5 l_1) / 1.5 = 0.197408019278593152; weight_sum 1.5.
    logits = [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.0, 1.0]]
    params = {"from_logits": True, "class_weight": [1.0, 2.0, 0.5]}
    result = run("cross_entropy", logits, [0.0, 2.0, -100.0], params, reduction="mean")
    assert result.cost == approx(0.19740801927859315, 1e-14)
    assert result.weight_sum == 1.5
    assert result.sum == approx(0.2413112966571571 + 0.5 * 0.10960146452146533, 1e-14)
    np.testing.assert_allclose(result.per_sample, [0.2413112966571571, 0.10960146452146533, 0.0])
    # The gradient of the mean: w_t (q - onehot) / 1.5 on each row; the ignored row is 0.
    q_1 = [0.04931132715827649, 0.05449744470704104, 0.8961912281346825]
    np.testing.assert_allclose(
        result.gradient,
        [
            [(0.7855970345892759 - 1.0) / 1.5, 0.1752903921400367 / 1.5, 0.0391125732706875 / 1.5],
            [0.5 * q_1[0] / 1.5, 0.5 * q_1[1] / 1.5, 0.5 * (q_1[2] - 1.0) / 1.5],
            [0.0, 0.0, 0.0],
        ],
        rtol=1e-13,
    )
    # LOSSES.md: an all-ignored batch is 0 here (NaN in PyTorch).
    ignored = run("cross_entropy", logits, [-100.0] * 3, params, reduction="mean")
    assert (ignored.cost, ignored.weight_sum) == (0.0, 0.0)
    assert np.all(ignored.gradient == 0.0)


def test_categorical_focal_by_hand():
    # Keras CategoricalFocalCrossentropy formula (LOSSES.md), by hand: p = [0.7, 0.2, 0.1],
    # one-hot 0, gamma = 2: 0.3^2 (-log 0.7) = 0.0321007449544859141; alpha 0.25: a quarter.
    result = run("categorical_focal", [[0.7, 0.2, 0.1]], [[1.0, 0.0, 0.0]])
    assert result.cost == approx(0.032100744954485914, 1e-14)
    quarter = run("categorical_focal", [[0.7, 0.2, 0.1]], [[1.0, 0.0, 0.0]], {"alpha": 0.25})
    assert quarter.cost == approx(0.25 * 0.032100744954485914, 1e-14)


def test_categorical_hinge_registry_example():
    # Keras CategoricalHinge, by hand: p = [0.7, 0.2, 1.1], y = e_0: pos 0.7, neg 1.1 -> 1.4;
    # p = [0.1, 0.3, 0.6], y = e_2: pos 0.6, neg 0.3 -> 0.7. Mean 1.05. Slopes (mean over 2):
    # -y + [c = argmax of the negatives] / 2 = [[-1, 0, 1], [0, 1, -1]] / 2.
    result = run(
        "categorical_hinge",
        [[0.7, 0.2, 1.1], [0.1, 0.3, 0.6]],
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
        reduction="mean",
    )
    np.testing.assert_allclose(result.per_sample, [1.4, 0.7], rtol=1e-15)
    assert result.cost == approx(1.05, 1e-15)
    assert result.gradient.tolist() == [[-0.5, 0.0, 0.5], [0.0, 0.5, -0.5]]
    # Every negative score below 0: the max is the target's own (1 - 1) p = 0 (Keras):
    # max(0, 0 - 2 + 1) = 0; p_true = 0.5 -> 0 - 0.5 + 1 = 0.5, slope -1 on the true class.
    negatives = run("categorical_hinge", [[2.0, -1.0], [0.5, -3.0]], [[1, 0], [1, 0]])
    assert negatives.per_sample.tolist() == [0.0, 0.5]
    assert negatives.gradient.tolist() == [[0.0, 0.0], [-1.0, 0.0]]


@pytest.mark.parametrize(
    ("params", "cost", "gradient"),
    [
        # PyTorch MultiMarginLoss docs example: x = [[0.1, 0.2, 0.4, 0.8]], y = [3] -> 0.3250.
        # By hand: h = 1 - 0.8 + [0.1, 0.2, 0.4] = [0.3, 0.4, 0.6], sum 1.3, / C = 0.325; each
        # active term adds 1/4 to x_j and -1/4 to x_t.
        ({}, 0.325, [0.25, 0.25, 0.25, -0.75]),
        # p = 2: (0.09 + 0.16 + 0.36) / 4 = 0.1525; slopes 2 h / 4 = [0.15, 0.2, 0.3], -0.65.
        ({"p": 2}, 0.1525, [0.15, 0.2, 0.3, -0.65]),
        # margin 0.5: h = [-0.2, -0.1, 0.1]: only the last is active: 0.1 / 4 = 0.025.
        ({"margin": 0.5}, 0.025, [0.0, 0.0, 0.25, -0.25]),
    ],
)
def test_multi_margin_pytorch_example(params, cost, gradient):
    result = run("multi_margin", [[0.1, 0.2, 0.4, 0.8]], [3.0], params, reduction="mean")
    assert result.cost == approx(cost, 1e-14)
    np.testing.assert_allclose(result.gradient, [gradient], rtol=1e-14, atol=1e-17)


def test_kl_divergence_by_hand():
    # By hand: y = [1/2, 1/2], q = [1/4, 3/4]: 1/2 log 2 + 1/2 log(2/3) = 1/2 log(4/3)
    # = 0.143841036225890464; slopes -y/q = [-2, -2/3]. y = [1, 0] against q = [1/2, 1/2]:
    # 0 log 0 = 0 -> log 2.
    result = run("kl_divergence", [[0.25, 0.75], [0.5, 0.5]], [[0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(result.per_sample, [0.14384103622589046, LOG_2], rtol=1e-15)
    np.testing.assert_allclose(result.gradient[0], [-2.0, -2.0 / 3.0], rtol=1e-15)
    assert result.gradient[1].tolist() == [-2.0, -0.0]


def test_kl_divergence_is_zero_at_q_equal_y():
    # KL(y || y) = 0 (LOSSES.md; Keras / PyTorch docs): probabilities inside [eps, 1 - eps] are
    # not clipped, so every term is y (log y - log y) = 0 exactly. From logits: q = softmax(x)
    # with y = softmax(x) computed here: 0 and slope q sum(y) - y = 0, both to rounding.
    rng = np.random.default_rng(11)
    targets = np.moveaxis(rng.dirichlet(np.ones(4), (3, 2)), -1, 1)
    result = run("kl_divergence", targets, targets, reduction="mean")
    assert result.cost == 0.0
    assert np.all(result.per_sample == 0.0)
    logits = rng.normal(0.0, 2.0, (3, 4, 2))
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    from_logits = run("kl_divergence", logits, softmax, {"from_logits": True})
    assert abs(from_logits.cost) <= 1e-14
    assert np.abs(from_logits.gradient).max() <= 1e-15


# --- identities ----------------------------------------------------------------------------


def random_logits_or_probabilities(rng, shape, kind):
    if kind == "logits":
        return rng.normal(0.0, 2.0, shape)
    return rng.uniform(0.0, 1.0, shape)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """(N, d...) labels -> (N, C, d...) one-hot."""
    return np.moveaxis(np.eye(classes)[labels.astype(int)], -1, 1)


@pytest.mark.parametrize("kind", ["probabilities", "logits"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_label_smoothing_identities(kind, smoothing, reduction):
    # LOSSES.md: categorical y' = y (1 - s) + s / C. Sparse with s == cce on one-hot targets with
    # s == cce on the smoothed targets with s = 0; binary y' = y (1 - s) + s / 2 likewise.
    rng = np.random.default_rng(int(smoothing * 100) + len(kind))
    predictions = random_logits_or_probabilities(rng, (4, 3, 2), kind)
    labels = rng.integers(0, 3, (4, 2)).astype(float)
    weights = rng.uniform(0.5, 2.0, 4)
    base = {"from_logits": kind == "logits"}
    smoothed = base | {"label_smoothing": smoothing}
    sparse = run("sparse_cce", predictions, labels, smoothed, reduction, weights)
    dense = run("cce", predictions, one_hot(labels, 3), smoothed, reduction, weights)
    explicit = one_hot(labels, 3) * (1.0 - smoothing) + smoothing / 3.0
    by_hand = run("cce", predictions, explicit, base, reduction, weights)
    assert_same(sparse, dense)
    assert_same(sparse, by_hand)
    binary_predictions = random_logits_or_probabilities(rng, (4, 3), kind)
    binary_targets = rng.uniform(0.0, 1.0, (4, 3))
    bce = run("bce", binary_predictions, binary_targets, smoothed, reduction, weights)
    smoothed_targets = binary_targets * (1.0 - smoothing) + smoothing / 2.0
    assert_same(bce, run("bce", binary_predictions, smoothed_targets, base, reduction, weights))


@pytest.mark.parametrize("kind", ["probabilities", "logits"])
@pytest.mark.parametrize("alpha", [None, 0.3])
def test_focal_with_gamma_0_is_cross_entropy(kind, alpha):
    # torchvision / Keras: with gamma = 0 the modulating factor (1 - p_t)^0 is 1, so the focal
    # loss is the cross-entropy, times a_t = alpha y + (1 - alpha)(1 - y) (binary) or alpha
    # (categorical) when alpha is given; alpha null is no factor (LOSSES.md). Binary entries as
    # samples of one element, so per_sample holds the element losses.
    rng = np.random.default_rng(5 if alpha is None else 6)
    from_logits = {"from_logits": kind == "logits"}
    focal_params = from_logits | {"gamma": 0.0, "alpha": alpha}
    predictions = random_logits_or_probabilities(rng, (20,), kind)
    targets = rng.uniform(0.0, 1.0, (20,))
    focal = run("binary_focal", predictions, targets, focal_params)
    bce = run("bce", predictions, targets, from_logits)
    if alpha is None:
        assert_same(focal, bce)
    else:
        balance = alpha * targets + (1.0 - alpha) * (1.0 - targets)
        np.testing.assert_allclose(focal.per_sample, balance * bce.per_sample, rtol=1e-14)
        np.testing.assert_allclose(focal.gradient, balance * bce.gradient, rtol=1e-13)
    predictions = random_logits_or_probabilities(rng, (5, 4, 3), kind)
    targets = rng.dirichlet(np.ones(4), (5, 3)).transpose(0, 2, 1)
    focal = run("categorical_focal", predictions, targets, focal_params)
    cce = run("cce", predictions, targets, from_logits)
    if alpha is None:
        assert_same(focal, cce)
    else:
        assert focal.cost == approx(alpha * cce.cost, 1e-14)
        np.testing.assert_allclose(focal.gradient, alpha * cce.gradient, rtol=1e-13)


@pytest.mark.parametrize("kind", ["probabilities", "logits"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ignored_labels_weigh_like_a_zero_mask(kind, reduction):
    # API.md: m_e is 0 for masked or ignore_index elements. Relabelling the ignored positions
    # with any class and masking them instead gives the same result.
    rng = np.random.default_rng(21)
    predictions = random_logits_or_probabilities(rng, (3, 4, 2, 2), kind)
    labels = rng.integers(0, 4, (3, 2, 2)).astype(float)
    ignored = rng.random((3, 2, 2)) < 0.3
    mask = rng.uniform(0.2, 1.0, (3, 2, 2))
    params = {"from_logits": kind == "logits", "ignore_index": 7, "class_weight": [1, 2, 0.5, 3]}
    with_ignore = run(
        "sparse_cce", predictions, np.where(ignored, 7.0, labels), params, reduction, mask=mask
    )
    masked = run(
        "sparse_cce", predictions, labels, params, reduction, mask=np.where(ignored, 0.0, mask)
    )
    assert_same(with_ignore, masked)
    assert np.all(with_ignore.gradient[np.broadcast_to(ignored[:, None], (3, 4, 2, 2))] == 0.0)


@pytest.mark.parametrize("kind", ["probabilities", "logits"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_class_weight_is_a_sample_weight_of_the_label(kind, reduction):
    # API.md: w_e = sample_weight[i] class_weight[c_e] m_e. With one element per sample ((N, C)),
    # class_weight[t_n] acts exactly like sample_weight[n], per_sample excepted (it leaves out
    # the sample weight but keeps the class weight, a factor inside the sample).
    rng = np.random.default_rng(22)
    predictions = random_logits_or_probabilities(rng, (6, 3), kind)
    labels = np.array([0.0, 1.0, 2.0, 2.0, 0.0, 1.0])
    class_weight = [0.5, 2.0, 0.0]
    from_logits = {"from_logits": kind == "logits"}
    weighted = run(
        "sparse_cce", predictions, labels, from_logits | {"class_weight": class_weight}, reduction
    )
    sample = np.array(class_weight)[labels.astype(int)]
    as_samples = run("sparse_cce", predictions, labels, from_logits, reduction, sample)
    assert weighted.cost == approx(as_samples.cost, 1e-14)
    assert weighted.weight_sum == as_samples.weight_sum == 5.0
    np.testing.assert_allclose(weighted.gradient, as_samples.gradient, rtol=1e-14)
    # Scaling every class weight by 2^10 leaves the mean unchanged (exact powers of two).
    scaled = run(
        "sparse_cce",
        predictions,
        labels,
        from_logits | {"class_weight": [c * 1024.0 for c in class_weight]},
        "mean",
    )
    mean = run(
        "sparse_cce", predictions, labels, from_logits | {"class_weight": class_weight}, "mean"
    )
    assert scaled.cost == approx(mean.cost, 1e-15)


@pytest.mark.parametrize("name", ["sparse_cce", "cce", "categorical_focal", "kl_divergence"])
@pytest.mark.parametrize("kind", ["probabilities", "logits"])
def test_segmentation_layout_is_per_pixel_classification(name, kind):
    # LOSSES.md / API.md: (N, C, H, W) has an element per pixel (n, h, w), the class axis being
    # 1 (PyTorch layout). The same pixels as N H W rows of (rows, C) give the same mean and
    # sum, and the same gradient rearranged.
    rng = np.random.default_rng(23)
    predictions = random_logits_or_probabilities(rng, (2, 3, 2, 4), kind)
    labels = rng.integers(0, 3, (2, 2, 4)).astype(float)
    targets = labels if name == "sparse_cce" else one_hot(labels, 3) * 0.8 + 0.2 / 3
    params = {"from_logits": kind == "logits"}
    image = run(name, predictions, targets, params, "mean")
    rows = np.moveaxis(predictions, 1, -1).reshape(-1, 3)
    row_targets = (
        labels.reshape(-1) if name == "sparse_cce" else np.moveaxis(targets, 1, -1).reshape(-1, 3)
    )
    flat = run(name, rows, row_targets, params, "mean")
    assert image.cost == approx(flat.cost, 1e-14)
    assert image.weight_sum == flat.weight_sum == 16.0
    back = np.moveaxis(flat.gradient.reshape(2, 2, 4, 3), -1, 1)
    np.testing.assert_allclose(image.gradient, back, rtol=1e-14)
