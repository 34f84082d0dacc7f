"""Sequence losses: CTC against a brute-force sum over alignments, hand-checked values, masks
with ignore_index, perplexity and tokens, and extreme logits.

CTC's brute force shares nothing with the forward recursion of the reference or the service:
it enumerates every path of length T' over the C symbols, collapses it (merge repeats, then
drop blanks; Graves et al. 2006, section 3.1) and adds the probabilities of the paths that
collapse to the target. Differentiating that sum term by term gives the exact gradient:
dP / dy_t(k) = sum over those paths with path[t] = k of (product of the path) / y_t(k).
Tiny sizes only (C^T' paths). "By hand" values are from ../shared/LOSSES.md ("Sequences").
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from service.validation.errors import ServiceError
from tests import reference
from tests.reference.gradients import finite_difference_gradient
from tests.strategies.samplers import Case
from tests.support.engine import compute_case
from tests.support.engine import run_loss as run

EPS = 1e-7
LN_2 = 0.6931471805599453  # ln 2 = 0.693147180559945309417...


def approx(value, rel=1e-14, abs=0.0):
    return pytest.approx(value, rel=rel, abs=abs)


# --- CTC by brute force --------------------------------------------------------------------


def collapse(path: tuple[int, ...], blank: int) -> list[int]:
    merged = [symbol for i, symbol in enumerate(path) if i == 0 or symbol != path[i - 1]]
    return [symbol for symbol in merged if symbol != blank]


def brute_force(y: np.ndarray, labels: list[int], blank: int) -> tuple[float, np.ndarray]:
    """P = p(labels | y) over the frames of ``y`` (T', C), and dP / dy."""
    frames, classes = y.shape
    total, slope = [], np.zeros(y.shape)
    for path in itertools.product(range(classes), repeat=frames):
        if collapse(path, blank) != labels:
            continue
        probability = math.prod(y[t, k] for t, k in enumerate(path))
        total.append(probability)
        for t, k in enumerate(path):
            slope[t, k] += math.prod(y[s, j] for s, j in enumerate(path) if s != t)
    return math.fsum(total), slope


def softmax_rows(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# (T, C, blank, labels, input_length): repeats, blank not 0, input_lengths < T, empty targets.
BRUTE_CASES = [
    (3, 3, 0, [1, 2], 3),
    (4, 2, 0, [1, 1], 4),  # a repeat: needs a blank between the two 1s
    (3, 2, 0, [1, 1], 3),  # the tightest: T' = L + repeats, one path (1, 0, 1)
    (4, 3, 2, [0, 1], 4),  # blank = 2, label 0 is a symbol
    (5, 3, 1, [2, 2, 0], 5),
    (5, 3, 0, [2], 3),  # frames 3 and 4 beyond input_lengths
    (4, 3, 0, [], 4),  # the empty target: only blanks
    (5, 4, 3, [1, 2, 1], 4),
]


@pytest.mark.parametrize(("frames", "classes", "blank", "labels", "length"), BRUTE_CASES)
@pytest.mark.parametrize("from_logits", [False, True])
def test_ctc_equals_the_sum_over_all_alignments(
    frames, classes, blank, labels, length, from_logits
):
    rng = np.random.default_rng(frames * 100 + classes * 10 + len(labels))
    logits = rng.normal(0.0, 1.0, (1, frames, classes))
    y = softmax_rows(logits[0])
    predictions = logits if from_logits else y[None]
    width = max(1, len(labels)) + 1
    targets = np.full((1, width), float(classes - 1))  # padding: any class index
    targets[0, : len(labels)] = labels
    params = {"target_lengths": [len(labels)], "blank": blank, "from_logits": from_logits}
    if length < frames:
        params["input_lengths"] = [length]
    result = run("ctc", predictions, targets, params)
    probability, slope = brute_force(y[:length], labels, blank)
    assert result.cost == approx(-math.log(probability), 1e-12)
    by_y = np.zeros((frames, classes))
    by_y[:length] = -slope / probability  # d(-log P) / dy
    if from_logits:  # through the softmax of each frame: dy_k / dx_j = y_k (delta_kj - y_j)
        expected = y * (by_y - np.sum(by_y * y, axis=-1, keepdims=True))
    else:
        expected = by_y
    np.testing.assert_allclose(result.gradient[0], expected, rtol=1e-10, atol=1e-14)
    assert np.all(result.gradient[0, length:] == 0.0)


def test_ctc_batch_with_weights_and_mask_by_brute_force():
    """Two sequences of different lengths in one batch, sample weights (2, 1), mask (1, 0.5),
    length_normalized: cost = sum w l / sum w with l_n = -log P_n / max(L_n, 1)."""
    rng = np.random.default_rng(4)
    y = softmax_rows(rng.normal(0.0, 1.0, (2, 4, 3)))
    targets = np.array([[1.0, 2.0], [2.0, 0.0]])
    params = {"target_lengths": [2, 1], "input_lengths": [4, 3], "length_normalized": True}
    result = run("ctc", y, targets, params, "mean", sample_weight=[2.0, 1.0], mask=[1.0, 0.5])
    first = -math.log(brute_force(y[0], [1, 2], 0)[0]) / 2
    second = -math.log(brute_force(y[1, :3], [2], 0)[0]) / 1
    assert result.per_sample.tolist() == approx([first, second], 1e-12)
    assert result.weight_sum == 2.5
    assert result.cost == approx((2 * first + 0.5 * second) / 2.5, 1e-12)


def test_ctc_one_frame_one_label_by_hand():
    # T = 1, target (1): the only path is (1), so l = -log p(1). p = (0.2, 0.5, 0.3): ln 2,
    # slope -1 / 0.5 = -2 on p(1) and 0 elsewhere. Logits 0: p = 1/3, l = ln 3, slope
    # y - onehot = (1/3, -2/3, 1/3).
    result = run("ctc", [[[0.2, 0.5, 0.3]]], [[1]], {"target_lengths": [1]})
    assert result.cost == approx(LN_2)
    assert result.gradient.tolist() == [[[0.0, -2.0, 0.0]]]
    logits = run("ctc", [[[0.0, 0.0, 0.0]]], [[1]], {"target_lengths": [1], "from_logits": True})
    assert logits.cost == approx(math.log(3))
    np.testing.assert_allclose(logits.gradient[0, 0], [1 / 3, -2 / 3, 1 / 3], rtol=1e-15)


def test_ctc_two_frames_by_hand():
    # y_1 = (0.4, 0.6), y_2 = (0.7, 0.3), target (1), blank 0. Paths (1, 1), (0, 1), (1, 0):
    # P = 0.6 x 0.3 + 0.4 x 0.3 + 0.6 x 0.7 = 0.72. dP/dy_1 = (0.3, 0.3 + 0.7),
    # dP/dy_2 = (0.6, 0.6 + 0.4); the gradient is -dP/dy / P.
    result = run("ctc", [[[0.4, 0.6], [0.7, 0.3]]], [[1]], {"target_lengths": [1]})
    assert result.cost == approx(-math.log(0.72))
    np.testing.assert_allclose(
        result.gradient[0], [[-0.3 / 0.72, -1.0 / 0.72], [-0.6 / 0.72, -1.0 / 0.72]], rtol=1e-14
    )


def test_ctc_clips_probabilities_to_eps_and_one():
    # LOSSES.md: log(clip(p, eps, 1)). A needed probability of 0 counts as eps: l = -ln 1e-7 =
    # 16.1180956509583198 and the slope is -1 / eps (d/dp log(clip p) taken as 1 / clip p); a
    # certain blank (p = 1) for the empty target: l = -ln 1 = 0, slope -1.
    result = run(
        "ctc", [[[0.5, 0.0, 0.5]], [[1.0, 0.0, 0.0]]], [[1], [0]], {"target_lengths": [1, 0]}
    )
    assert result.per_sample.tolist() == approx([16.11809565095832, 0.0])
    assert result.gradient[0, 0].tolist() == approx([0.0, -1e7, 0.0])
    assert result.gradient[1, 0].tolist() == [-1.0, 0.0, 0.0]


def test_ctc_infeasible_is_an_error_or_zero():
    """T' = 2 cannot hold (1, 1) (it needs L + repeats = 3 frames) but holds (1, 2): a 422
    naming the sample; with zero_infinity its loss and gradient are 0 and it still weighs
    (PyTorch's zero_infinity: the mean is over every sample)."""
    predictions = np.full((2, 2, 3), 1 / 3)
    targets = [[1.0, 1.0], [1.0, 2.0]]
    with pytest.raises(ServiceError) as error:
        run("ctc", predictions, targets, {"target_lengths": [2, 2]})
    assert error.value.status == 422 and "0" in error.value.detail
    params = {"target_lengths": [2, 2], "zero_infinity": True}
    result = run("ctc", predictions, targets, params, "mean")
    # The feasible one by hand: the only path is (1, 2), P = 1/9, l = ln 9.
    assert result.per_sample.tolist() == approx([0.0, math.log(9)])
    assert result.weight_sum == 2.0
    assert np.all(result.gradient[0] == 0.0)
    # d(-log P)/dp = -1/p = -3 on the path's two entries, times w / W = 1/2.
    np.testing.assert_allclose(result.gradient[1], [[0, -1.5, 0], [0, 0, -1.5]], rtol=1e-15)


def test_ctc_ignores_padding_and_length_normalization_divides():
    rng = np.random.default_rng(9)
    y = softmax_rows(rng.normal(0.0, 1.0, (2, 5, 3)))
    params = {"target_lengths": [2, 0]}
    one = run("ctc", y, [[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]], params)
    other = run("ctc", y, [[1.0, 2.0, 2.0], [2.0, 2.0, 1.0]], params)
    np.testing.assert_array_equal(one.per_sample, other.per_sample)
    np.testing.assert_array_equal(one.gradient, other.gradient)
    normalized = run(
        "ctc", y, [[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]], params | {"length_normalized": True}
    )
    # Divided by max(L, 1): 2 for the first sample, 1 for the empty target.
    np.testing.assert_allclose(normalized.per_sample, one.per_sample / [2.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(normalized.gradient[0], one.gradient[0] / 2, rtol=1e-15)


# --- sequence cross-entropy ----------------------------------------------------------------


def test_sequence_cross_entropy_mask_and_ignore_index_by_hand():
    """Tokens -ln 0.8, (ignored), -ln 0.7 with weights 1 x 1, 1 x 0 (ignore_index), 0.5 x 1:
    cost = (-ln 0.8 - 0.5 ln 0.7) / 1.5; tokens = 1.5 (sample_weight not counted), perplexity
    exp(cost); slopes -w / (p W) on the target class."""
    predictions = [[[0.8, 0.2], [0.5, 0.5], [0.3, 0.7]]]
    ln_08, ln_07 = -0.2231435513142097, -0.35667494393873245  # ln 0.8, ln 0.7 by hand
    cost = (-ln_08 - 0.5 * ln_07) / 1.5
    for weight in (1.0, 2.0):
        result = run(
            "sequence_cross_entropy",
            predictions,
            [[0, -100, 1]],
            reduction="mean",
            sample_weight=[weight],
            mask=[[1.0, 1.0, 0.5]],
        )
        assert result.cost == approx(cost)
        assert result.weight_sum == 1.5 * weight
        assert result.extras["tokens"] == 1.5
        assert result.extras["perplexity"] == approx(math.exp(cost))
        np.testing.assert_allclose(
            result.gradient[0],
            [[-1 / 0.8 / 1.5, 0.0], [0.0, 0.0], [0.0, -0.5 / 0.7 / 1.5]],
            rtol=1e-15,
        )


def test_all_ignored_tokens_give_perplexity_1():
    result = run("sequence_cross_entropy", [[[0.3, 0.7], [0.6, 0.4]]], [[-100, -100]], {}, "mean")
    assert (result.cost, result.weight_sum) == (0.0, 0.0)
    assert result.extras == {"log_perplexity": 0.0, "perplexity": 1.0, "tokens": 0.0}


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_sequence_cross_entropy_is_sparse_cce_with_the_class_axis_last(from_logits, reduction):
    """(N, T, C) here is (N, C, T) for sparse_categorical_cross_entropy: the same numbers;
    perplexity = exp(sum / weight_sum) under either reduction."""
    rng = np.random.default_rng(17)
    scores = rng.normal(0.0, 1.0, (3, 5, 4))
    predictions = scores if from_logits else softmax_rows(scores)
    labels = rng.integers(0, 4, (3, 5)).astype(float)
    labels[rng.random((3, 5)) < 0.2] = 2.0  # ignore_index 2, a class
    mask = rng.uniform(0.0, 1.0, (3, 5))
    params = {"from_logits": from_logits, "label_smoothing": 0.1, "ignore_index": 2}
    weights = [1.0, 0.5, 2.0]
    sequence = run("sequence_cross_entropy", predictions, labels, params, reduction, weights, mask)
    sparse = run(
        "sparse_cce", np.moveaxis(predictions, 2, 1), labels, params, reduction, weights, mask
    )
    assert sequence.cost == approx(sparse.cost, 1e-13)
    np.testing.assert_allclose(sequence.per_sample, sparse.per_sample, rtol=1e-13)
    np.testing.assert_allclose(sequence.gradient, np.moveaxis(sparse.gradient, 1, 2), rtol=1e-13)
    assert sequence.extras["perplexity"] == approx(math.exp(sparse.sum / sparse.weight_sum), 1e-13)
    assert sequence.extras["tokens"] == approx(float(np.sum(mask * (labels != 2))), 1e-15)


# --- extreme logits ------------------------------------------------------------------------

EXTREME = np.array([1e4, -1e4, 0.0, -1e4, 1e4, 5e3, 0.0, -2.5e3, 1e4, 7.0, -1e4, 1e4])


@pytest.mark.parametrize(
    ("name", "targets", "params"),
    [
        ("sequence_cross_entropy", [[0.0, 1.0], [2.0, -100.0]], {}),
        ("ctc", [[1.0, 2.0], [2.0, 0.0]], {"target_lengths": [2, 1]}),
        ("ctc", [[1.0, 0.0], [0.0, 1.0]], {"target_lengths": [2, 1], "blank": 2}),
    ],
)
def test_logits_of_1e4_are_finite_and_match_the_reference(name, targets, params):
    """Losses of order 1e4 where a needed class has logit -1e4: finite, equal to the reference
    (log-softmax and log-sum-exp written out) and to its central differences with an absolute
    step of 1e-4 (the losses are ~1e4, so rounding leaves ~1e-8 in slopes of order 1; a step
    relative to 1e4 would be too coarse where two alignments compete at a logit gap of ~7).
    Targets keep the mean token loss of sequence cross-entropy below log(float64 max), where
    its perplexity is representable; beyond it see the next test."""
    predictions = EXTREME.reshape(2, 2, 3)
    params = params | {"from_logits": True}
    case = Case(name, predictions, np.array(targets), params, sample_weight=np.array([1.0, 2.0]))
    result = compute_case(case)
    expected = reference.reference_result(
        name, predictions, case.targets, params, case.sample_weight
    )
    assert np.isfinite(result.cost) and np.all(np.isfinite(result.gradient))
    assert result.cost == approx(expected.cost, 1e-12)
    np.testing.assert_allclose(result.per_sample, expected.per_sample, rtol=1e-12)
    differences = finite_difference_gradient(case, "mean", step=1e-4, relative=False)
    np.testing.assert_allclose(result.gradient, differences, rtol=1e-6, atol=1e-7)


def test_a_perplexity_beyond_float64_does_not_fail_the_loss():
    """Tokens whose loss is ~1e4 (a target logit of -1e4): the mean token loss is ~7e3, so
    exp(mean) overflows float64. The cost, per_sample and gradient are finite (the extreme-
    logit decision: sequence cross-entropy at +-1e4 is finite), so the request must still be
    served; the perplexity, which cannot be represented, must not turn the loss into an error
    (whatever the service reports for it, it is never NaN or infinite)."""
    predictions = EXTREME.reshape(2, 2, 3)
    targets = np.array([[1.0, 0.0], [1.0, 2.0]])
    case = Case("sequence_cross_entropy", predictions, targets, {"from_logits": True})
    result = compute_case(case)
    expected = reference.reference_result(case.name, predictions, targets, case.params)
    assert expected.cost > 1e3
    assert result.cost == approx(expected.cost, 1e-12)
    assert result.extras["tokens"] == 4.0
    assert math.isfinite(result.extras.get("perplexity", 0.0))
