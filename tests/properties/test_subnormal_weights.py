"""Means of tiny weights: the cost is the weighted mean whatever the scale of the weights.

API.md: cost = sum_e w_e l_e / sum_e w_e under "mean"; the gradient is d cost / d predictions.
Both are unchanged when every weight is multiplied by one number, but the products w_e l_e
underflow for subnormal weights (below 2.2e-308: 5e-324 * 0.1 is 0), so dividing the two raw
sums gave a cost of 0.0 (or one wrong in the leading digit) beside a right gradient. The
references here share no code with the service: element losses and weights from
:mod:`tests.reference`, and the reduction in exact rational arithmetic
(:class:`fractions.Fraction`, where nothing underflows), rounded once at the end.

- every loss of the registry, sample weights 5e-324, 1e-310, subnormal and normal mixed, with
  and without a mask: cost against the exact mean, gradient against central differences of the
  exact mean, sum and weight_sum against their exact values (to the subnormal grid), and the
  cost and gradient bit for bit those of the same weights times 2**1074 (normal numbers);
- ordinary weights: the cost is still sum / weight_sum bit for bit, and the reduction gives what
  the unscaled formulas give, bit for bit.

The hand-derived binary cross-entropy case through /v1/losses, /v1/evaluate and /v2, and a
weight sum that overflows, are in tests/api/test_subnormal_weights.py.
"""

from __future__ import annotations

import zlib
from fractions import Fraction

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from service import reduction as reducing
from service.losses.registry import REGISTRY
from service.validation.contracts import Batch
from tests import reference
from tests.strategies.samplers import Case, random_case, rank_near
from tests.support.engine import compute_case

LOSS_NAMES = sorted(REGISTRY)
SMALLEST = 5e-324  # 2**-1074, the smallest positive float64
STEP = 1e-6
TOLERANCE = 1e-6


def weight_pattern(pattern: str, n_samples: int) -> np.ndarray:
    """Sample weights of a named pattern: all 5e-324, all 1e-310, or a cycle of subnormal and
    normal (2**-1000, 2.5e-308 is just above the smallest normal) weights, with one 0."""
    if pattern == "5e-324":
        return np.full(n_samples, SMALLEST)
    if pattern == "1e-310":
        return np.full(n_samples, 1e-310)
    cycle = [SMALLEST, 3e-320, 1e-310, 2.5e-308, 2.0**-1000, 7 * SMALLEST]
    if pattern == "mixed-with-zero":
        cycle = [0.0, *cycle]
    return np.array([cycle[i % len(cycle)] for i in range(n_samples)])


PATTERNS = ("5e-324", "1e-310", "mixed", "mixed-with-zero")


def exact_weights(case: Case) -> list[Fraction]:
    """w_e = sample_weight[i] * v_e for every element, exactly."""
    inner = reference.element_weights(
        case.name, case.predictions, case.targets, case.params, case.mask
    )
    n_samples = case.predictions.shape[0]
    per_sample = len(inner) // n_samples
    if case.sample_weight is None:
        samples = [1.0] * n_samples
    else:
        samples = reference.flat(case.sample_weight)
    return [Fraction(samples[e // per_sample]) * Fraction(v) for e, v in enumerate(inner)]


def exact_mean(values: list[float], weights: list[Fraction]) -> Fraction:
    """sum_e w_e x_e / sum_e w_e in rational arithmetic (0 when every weight is 0)."""
    total = sum(weights, Fraction(0))
    if total == 0:
        return Fraction(0)
    return sum((w * Fraction(x) for w, x in zip(weights, values, strict=True)), Fraction(0)) / total


def exact_gradient(case: Case, weights: list[Fraction]) -> np.ndarray:
    """Central differences of the exact mean, one entry of predictions at a time.

    The mean is linear in the element losses, so the difference of the means is the mean of
    the element-wise differences (as tests/reference/gradients.py does, which keeps the elements an
    entry does not enter at exactly 0)."""
    gradient = np.zeros(case.predictions.shape)
    for index in range(case.predictions.size):
        point = float(case.predictions.reshape(-1)[index])
        h = STEP * max(1.0, abs(point))
        losses = []
        for shifted in (point + h, point - h):
            predictions = case.predictions.copy()
            predictions.reshape(-1)[index] = shifted
            losses.append(
                reference.element_losses(case.name, predictions, case.targets, case.params)
            )
        differences = [up - down for up, down in zip(*losses, strict=True)]
        step = (point + h) - (point - h)
        gradient.reshape(-1)[index] = float(exact_mean(differences, weights)) / step
    return gradient


def tiny_case(name: str, pattern: str, masked: bool) -> Case:
    """A smooth random case of the loss (away from kinks) with the weights of ``pattern``."""
    rng = np.random.default_rng(zlib.crc32(f"subnormal-{name}-{pattern}-{masked}".encode()))
    case = random_case(
        name, rng, rank=rank_near(name, 2), masked=masked, smooth=True, max_elements=24
    )
    weights = weight_pattern(pattern, case.predictions.shape[0])
    return Case(case.name, case.predictions, case.targets, case.params, weights, case.mask)


def tiny_mask_case(name: str, pattern: str) -> Case:
    """A masked case whose mask is tiny: every row times 2**-1060 (subnormal: 14 significant
    bits), or every other row, beside sample weights 1e-310."""
    rng = np.random.default_rng(zlib.crc32(f"tiny-mask-{name}-{pattern}".encode()))
    case = random_case(name, rng, rank=rank_near(name, 2), masked=True, smooth=True)
    n_samples = case.predictions.shape[0]
    rows = np.ones(n_samples) if pattern == "all-rows" else (np.arange(n_samples) % 2 == 0)
    factor = np.where(rows, 2.0**-1060, 1.0).reshape((-1,) + (1,) * (case.mask.ndim - 1))
    mask = np.ldexp(case.mask, -1060) if pattern == "all-rows" else case.mask * factor
    weights = np.full(n_samples, 1e-310)
    return Case(case.name, case.predictions, case.targets, case.params, weights, mask)


def within_subnormal_ulps(got: float, exact: Fraction, ulps: int = 1) -> bool:
    """|got - exact| <= 1e-12 |exact| + ulps x 5e-324 (the spacing of the subnormal grid)."""
    return abs(Fraction(got) - exact) <= Fraction(1e-12) * abs(exact) + ulps * Fraction(SMALLEST)


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_cost_and_gradient_are_the_weighted_mean_for_tiny_weights(
    name: str, pattern: str, masked: bool
) -> None:
    case = tiny_case(name, pattern, masked)
    weights = exact_weights(case)
    losses = reference.element_losses(case.name, case.predictions, case.targets, case.params)
    result = compute_case(case, "mean")

    expected_cost = float(exact_mean(losses, weights))
    assert result.cost == pytest.approx(expected_cost, rel=1e-12, abs=1e-300), (name, pattern)
    exact_sum = sum((w * Fraction(x) for w, x in zip(weights, losses, strict=True)), Fraction(0))
    assert within_subnormal_ulps(result.sum, exact_sum), (result.sum, float(exact_sum))
    assert within_subnormal_ulps(result.weight_sum, sum(weights, Fraction(0)))

    expected = exact_gradient(case, weights)
    allowed = TOLERANCE * (np.abs(expected) + np.abs(expected).max()) + 1e-300
    assert np.all(np.abs(result.gradient - expected) <= allowed), (
        name,
        pattern,
        result.gradient,
        expected,
    )

    # The same weights times 2**1074 are ordinary numbers: a mean does not see the factor, and
    # with powers of two nothing is rounded, so both results are the same bits.
    scaled = Case(
        case.name,
        case.predictions,
        case.targets,
        case.params,
        np.ldexp(case.sample_weight, 1074),
        case.mask,
    )
    ordinary = compute_case(scaled, "mean")
    assert result.cost == ordinary.cost
    np.testing.assert_array_equal(result.gradient, ordinary.gradient)
    np.testing.assert_array_equal(result.per_sample, ordinary.per_sample)


@pytest.mark.parametrize("pattern", ["all-rows", "every-other-row"])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_tiny_masks_give_the_weighted_mean(name: str, pattern: str) -> None:
    """Element weights (mask x class weight x ignore) as small as 2**-1074 as well: each
    sample's own mean (per_sample) and the cost are exact."""
    case = tiny_mask_case(name, pattern)
    weights = exact_weights(case)
    losses = reference.element_losses(case.name, case.predictions, case.targets, case.params)
    inner = reference.element_weights(
        case.name, case.predictions, case.targets, case.params, case.mask
    )
    result = compute_case(case, "mean")
    assert result.cost == pytest.approx(float(exact_mean(losses, weights)), rel=1e-12)
    per_sample = len(losses) // case.predictions.shape[0]
    for i, got in enumerate(result.per_sample):
        rows = slice(i * per_sample, (i + 1) * per_sample)
        row_weights = [Fraction(v) for v in inner[rows]]
        expected = float(exact_mean(losses[rows], row_weights))
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-300), (name, i)
    expected = exact_gradient(case, weights)
    allowed = TOLERANCE * (np.abs(expected) + np.abs(expected).max()) + 1e-300
    assert np.all(np.abs(result.gradient - expected) <= allowed), (name, pattern)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_sum_reduction_of_tiny_weights_is_the_sum(name: str) -> None:
    """Under "sum" the cost is sum_e w_e l_e itself, which may underflow: to the subnormal
    grid."""
    case = tiny_case(name, "mixed", masked=False)
    weights = exact_weights(case)
    losses = reference.element_losses(case.name, case.predictions, case.targets, case.params)
    result = compute_case(case, "sum")
    exact_sum = sum((w * Fraction(x) for w, x in zip(weights, losses, strict=True)), Fraction(0))
    assert result.cost == result.sum
    assert within_subnormal_ulps(result.cost, exact_sum)


def test_tiny_mask_values_give_the_weighted_mean() -> None:
    """The element weights (mask) may be subnormal too: each sample's own mean is exact."""
    predictions = np.array([[0.5, 1.0, 2.0], [2.0, -1.0, 0.0]])
    targets = np.zeros((2, 3))
    mask = np.array([[SMALLEST, 3 * SMALLEST, 0.0], [1.0, 1e-310, 0.25]])
    case = Case("mse", predictions, targets, {}, None, mask)
    result = compute_case(case, "mean")
    # By hand: sample 0: (1 x 0.25 + 3 x 1) / 4 = 0.8125; the whole mean is dominated by sample
    # 1 (weights 1 and 0.25 beside 1e-310): (4 + 0.25 x 0) / 1.25 = 3.2 to 1e-300 relative.
    assert result.per_sample[0] == 0.8125
    weights = exact_weights(case)
    losses = [0.25, 1.0, 4.0, 4.0, 1.0, 0.0]
    assert result.cost == float(exact_mean(losses, weights))
    assert result.per_sample[1] == float(exact_mean(losses[3:], weights[3:]))


# --- ordinary weights: nothing changes -----------------------------------------------------------


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("scale", [1.0, 0.3, 1e-5, 1e5])
def test_ordinary_weights_give_sum_over_weight_sum_bit_for_bit(name: str, scale: float) -> None:
    """For normal weights (below 0.5 they are scaled, above not) the cost is still exactly the
    quotient of the returned sum and weight_sum."""
    rng = np.random.default_rng(zlib.crc32(f"ordinary-{name}-{scale}".encode()))
    case = random_case(name, rng, rank=rank_near(name, 2), weighted=True, masked=True)
    case = Case(
        case.name,
        case.predictions,
        case.targets,
        case.params,
        case.sample_weight * scale,
        case.mask,
    )
    result = compute_case(case, "mean")
    expected = result.sum / result.weight_sum if result.weight_sum > 0 else 0.0
    assert result.cost == expected


def unscaled_reduction(
    losses: np.ndarray, sample: np.ndarray, element: np.ndarray, reduction: str
) -> tuple[float, np.ndarray, np.ndarray]:
    """The formulas the reduction used before weights were scaled (cost, per_sample, c_e),
    with the same numpy operations in the same order."""
    n, k = sample.size, losses.size // sample.size
    grid = element.reshape(n, k)
    per_sample_total = grid.sum(axis=1)
    per_sample_sum = np.einsum("ij,ij->i", losses.reshape(n, k), grid)
    per_sample = np.zeros(n)
    np.divide(per_sample_sum, per_sample_total, out=per_sample, where=per_sample_total > 0)
    total = float(sample @ per_sample_total)
    total_sum = float(sample @ per_sample_sum)
    scale = (grid * sample[:, None]).reshape(-1)
    if reduction == "mean":
        scale /= total
        return total_sum / total, per_sample, scale
    return total_sum, per_sample, scale


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("seed", range(6))
def test_reduction_of_normal_weights_is_the_unscaled_one_bit_for_bit(
    seed: int, reduction: str
) -> None:
    """Weights and masks below 0.5 are scaled by powers of two, which rounds nothing: the
    numbers are those of the unscaled formulas, bit for bit."""
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 2000)), int(rng.integers(1, 8))
    losses = rng.exponential(1.0, n * k)
    sample = rng.uniform(0.0, [0.4, 3.0, 1e-200, 0.01, 5.0, 1e-3][seed], n)
    element = rng.uniform(0.0, 0.45 if seed % 2 else 1.0, n * k)
    element[rng.random(n * k) < 0.2] = 0.0
    batch = Batch(
        predictions=losses,
        targets=losses,
        kernel_arrays=(),
        n_samples=n,
        elements_per_sample=k,
        element_weights=element,
        gradient_shape=(n * k,),
    )
    weights = reducing.weigh(
        batch.n_samples, batch.elements_per_sample, batch.element_weights, sample
    )
    reduced = reducing.reduce(losses, weights, reduction)
    cost, per_sample, scale = unscaled_reduction(losses, sample, element, reduction)
    assert reduced.cost == cost
    np.testing.assert_array_equal(reduced.per_sample, per_sample)
    np.testing.assert_array_equal(reducing.gradient_scale(weights, reduction), scale)
