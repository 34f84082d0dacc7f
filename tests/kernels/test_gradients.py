"""The returned gradient is d cost / d predictions: central differences of the reference cost.

The finite differences differentiate the reference cost (:mod:`tests.reference.gradients`),
which shares no code with the service, so a wrong derivative, a wrong chain-rule scale
(1 / weight_sum under mean, w_e under sum) or a mask, class weight or ignored label applied in
the wrong place all show.
Every loss, every rank it takes, and every input kind: both kinds where it has ``from_logits``
(with logits the derivative is taken with respect to the logits, through the softmax or
sigmoid; with probabilities with respect to the probabilities), every mode of the overlap
losses, every variant and box format of box_iou (the derivative in the format sent; ciou's
alpha is differentiated, not held constant). Inputs come from the samplers with
``smooth=True``: every element is at least 1e-3 from the loss's kinks (boxes: no tie between a
predicted and a target coordinate, no intersection edge near 0), far more than the step, and
probabilities lie in [0.02, 0.98], inside the clipping range. CTC's frames beyond
input_lengths and every entry of a zero-weight element get exactly 0.

Step h = 1e-6 * max(1, |p|). The central difference's error is O(h^2 l''') plus the rounding of
the cost, ~1e-16 |cost| / h; entries are compared with 1e-6 relative to themselves plus 1e-6
relative to the largest entry (an element with a small mask value has a small derivative but
the same absolute rounding error).

At a kink the derivative is 0 by convention (API.md); those points are checked exactly.
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY
from tests import reference
from tests.reference.gradients import finite_difference_gradient
from tests.strategies.samplers import Case, kinds_of, random_case, ranks_of
from tests.support.engine import compute_case

LOSS_NAMES = sorted(REGISTRY)
REDUCTIONS = ("mean", "sum")
TOLERANCE = 1e-6


def element_weights(case: Case) -> np.ndarray:
    """The total weight w_e = sample_weight[i] * v_e (mask, class weight, ignore) of the
    elements each entry of predictions enters, over the predictions' shape (categorical: the
    same for every class of a position; CTC frames beyond input_lengths: 0)."""
    return reference.entry_weights(
        case.name, case.predictions, case.targets, case.params, case.mask, case.sample_weight
    )


WEIGHTINGS = ((False, False), (True, False), (False, True), (True, True))  # (weighted, masked)
GRID = [
    (name, kind, reduction, weighting, rank)
    for name in LOSS_NAMES
    for kind in kinds_of(name)
    for reduction, weighting in itertools.product(REDUCTIONS, WEIGHTINGS)
    for rank in ranks_of(name)
]


@pytest.mark.parametrize(("name", "kind", "reduction", "weighting", "rank"), GRID)
def test_gradient_matches_central_differences(name, kind, reduction, weighting, rank):
    weighted, masked = weighting
    seed = zlib.crc32(f"gradient-{name}-{kind}-{reduction}-{weighting}-{rank}".encode())
    rng = np.random.default_rng(seed)
    case = random_case(
        name,
        rng,
        rank=rank,
        kind=kind,
        weighted=weighted,
        masked=masked,
        smooth=True,
        max_elements=30,
    )
    result = compute_case(case, reduction)
    expected = finite_difference_gradient(case, reduction)

    assert result.gradient.shape == case.predictions.shape
    assert np.all(np.isfinite(result.gradient))
    allowed = TOLERANCE * (np.abs(expected) + np.abs(expected).max()) + 1e-300
    error = np.abs(result.gradient - expected)
    worst = np.unravel_index(int(np.argmax(error - allowed)), error.shape)
    assert np.all(error <= allowed), (
        f"gradient{list(worst)} = {result.gradient[worst]!r}, central differences "
        f"{expected[worst]!r} (p={case.predictions[worst]!r}, y={case.targets[worst]!r}, "
        f"params={case.params})"
    )
    # Elements that weigh nothing (sample weight, mask, class weight 0, ignored label) have
    # exactly no derivative.
    unweighted = element_weights(case) == 0.0
    assert np.all(result.gradient[unweighted] == 0.0)


KINKS = [
    ("mae", {}),
    ("smooth_l1", {"beta": 0.0}),
    ("quantile", {}),
    ("quantile", {"quantile": 0.9}),
    ("mape", {}),
]


@pytest.mark.parametrize(("name", "params"), KINKS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_derivative_is_zero_at_the_kink(name, params, reduction):
    """|x| at 0 (mae, smooth_l1 with beta 0, mape) and the pinball's corner: derivative 0.

    The kinked elements sit beside ordinary ones, so a zero gradient cannot come from a zero
    scale: the ordinary elements' derivatives are checked to be non-zero.
    """
    targets = np.array([[1.5, -2.0], [0.25, 3.0]])
    predictions = np.array([[1.5, -1.0], [0.25, 2.0]])  # entries [0, 0] and [1, 0] at p == y
    case = Case(name, predictions, targets, params, sample_weight=np.array([2.0, 1.0]))
    result = compute_case(case, reduction)
    assert result.gradient[0, 0] == 0.0
    assert result.gradient[1, 0] == 0.0
    assert result.gradient[0, 1] > 0.0  # p > y
    assert result.gradient[1, 1] < 0.0  # p < y


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_huber_and_smooth_l1_slopes_are_continuous_at_their_threshold(reduction):
    """At |d| = delta (huber) and |d| = beta (smooth_l1) both branches have slope sign(d) * delta
    (resp. sign(d)); the returned slope is that value, on both sides of zero."""
    targets = np.zeros(4)
    predictions = np.array([2.0, -2.0, 0.5, -0.5])
    huber = compute_case(Case("huber", predictions, targets, {"delta": 2.0}), reduction)
    smooth = compute_case(Case("smooth_l1", predictions, targets, {"beta": 2.0}), reduction)
    scale = 0.25 if reduction == "mean" else 1.0
    np.testing.assert_array_equal(huber.gradient, scale * np.array([2.0, -2.0, 0.5, -0.5]))
    np.testing.assert_array_equal(smooth.gradient, scale * np.array([1.0, -1.0, 0.25, -0.25]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hinge_derivatives_are_zero_at_the_margin(reduction):
    """API.md: at a kink (hinge at the margin) the derivative is 0. Each kinked element sits
    beside an active one, whose slope is checked to be the full one (by hand from LOSSES.md),
    so a zero cannot come from a zero scale. Sample weights (2, 1): under "mean" the scale is
    w / 3 (hinge, one element each: weight_sum 3)."""
    scale = np.array([2.0, 1.0]) / (3.0 if reduction == "mean" else 1.0)
    # hinge, m = 1: t p = 1 exactly at [0, 0] (y = 1, p = 1) and [1, 0] (y = 0, p = -1).
    hinge = compute_case(
        Case(
            "hinge", np.array([[1.0], [-1.0]]), np.array([[1.0], [0.0]]), {}, np.array([2.0, 1.0])
        ),
        reduction,
    )
    assert hinge.gradient.tolist() == [[0.0], [0.0]]
    active = compute_case(
        Case(
            "hinge", np.array([[0.5], [-0.5]]), np.array([[1.0], [0.0]]), {}, np.array([2.0, 1.0])
        ),
        reduction,
    )
    np.testing.assert_allclose(active.gradient[:, 0], [-scale[0], scale[1]], rtol=1e-15)
    # categorical_hinge: row 0 at h = 0 (pos 1.5, neg 0.5); row 1 active (pos 0.2, neg 0.9,
    # h = 1.7) with a tie between classes 1 and 2: the first takes the subgradient (catalogue
    # note), slopes [-1, 1, 0].
    categorical = compute_case(
        Case(
            "categorical_hinge",
            np.array([[1.5, 0.5, 0.2], [0.2, 0.9, 0.9]]),
            np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
            {},
            np.array([2.0, 1.0]),
        ),
        reduction,
    )
    assert categorical.gradient[0].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(categorical.gradient[1], [-scale[1], scale[1], 0.0], rtol=1e-15)
    # multi_margin, m = 1, t = 1: row 0 has h_0 = 1 - 1.5 + 0.5 = 0 (the kink) and
    # h_2 = -0.3; row 1 has h_0 = 0.5 active and h_2 = 0 at the kink: slopes +-1/3 on 0 and 1.
    margin = compute_case(
        Case(
            "multi_margin",
            np.array([[0.5, 1.5, 0.2], [0.5, 1.0, 0.0]]),
            np.array([1.0, 1.0]),
            {},
            np.array([2.0, 1.0]),
        ),
        reduction,
    )
    assert margin.gradient[0].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(
        margin.gradient[1], [scale[1] / 3.0, -scale[1] / 3.0, 0.0], rtol=1e-15, atol=0.0
    )
