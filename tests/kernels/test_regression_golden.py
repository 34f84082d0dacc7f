"""Regression losses: hand-computed values, each with where it comes from, and the extremes of
float64.

Provenance is written next to every number: "by hand" means from the formula in
../shared/LOSSES.md and the conventions in ../shared/API.md with pencil-and-paper arithmetic;
identities quoted from PyTorch, Keras or scikit-learn documentation are named as such.
Exact binary fractions are compared with ==; values involving log, exp or division by 3 to
1e-15 relative.
"""

from __future__ import annotations

import dataclasses
import decimal
import math

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY
from service.validation.errors import NonFiniteResult
from tests.strategies.samplers import Case, random_case
from tests.support.engine import compute_case

RELATIVE = 1e-15


def run(name, predictions, targets, params=None, reduction="mean", sample_weight=None, mask=None):
    def as_array(values):
        return None if values is None else np.ascontiguousarray(values, dtype=np.float64)

    case = Case(
        name,
        as_array(predictions),
        as_array(targets),
        params or {},
        as_array(sample_weight),
        as_array(mask),
    )
    return compute_case(case, reduction)


def same_inputs(case: Case, name: str, params: dict) -> Case:
    """The same arrays, weights and mask, scored by another loss or with other params."""
    return dataclasses.replace(case, name=name, params=params)


def approx(value):
    return pytest.approx(value, rel=RELATIVE, abs=0.0)


# --- one loss at a time --------------------------------------------------------------------


def test_mse_with_sample_weights():
    # By hand: d = [1, 2, 3] -> l = [1, 4, 9]; weights [1, 0, 2]: sum = 1 + 0 + 18 = 19,
    # weight_sum = 3, mean = 19/3. Gradient (mean) = w 2d / 3 = [2/3, 0, 4]; (sum) = [2, 0, 12].
    mean = run("mse", [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], sample_weight=[1.0, 0.0, 2.0])
    assert mean.cost == approx(19.0 / 3.0)
    assert mean.sum == 19.0
    assert mean.weight_sum == 3.0
    assert mean.count == 3
    assert mean.per_sample.tolist() == [1.0, 4.0, 9.0]  # per_sample ignores the sample's weight
    np.testing.assert_allclose(mean.gradient, [2.0 / 3.0, 0.0, 4.0], rtol=RELATIVE)
    total = run(
        "mse", [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], reduction="sum", sample_weight=[1.0, 0.0, 2.0]
    )
    assert total.cost == 19.0
    assert total.gradient.tolist() == [2.0, 0.0, 12.0]


def test_mae_with_a_mask():
    # By hand: d = [[1, -2], [3, 4]], |d| = [[1, 2], [3, 4]], mask [[1, 0.5], [0, 0]].
    # per_sample[0] = (1*1 + 0.5*2) / 1.5 = 4/3; per_sample[1] = 0 (its mask sums to 0).
    # sum = 2, weight_sum = 1.5, mean = 4/3;
    # gradient = mask sign(d) / 1.5 = [[2/3, -1/3], [0, 0]].
    result = run("mae", [[1.0, -2.0], [3.0, 4.0]], np.zeros((2, 2)), mask=[[1.0, 0.5], [0.0, 0.0]])
    assert result.per_sample[0] == approx(4.0 / 3.0)
    assert result.per_sample[1] == 0.0
    assert result.sum == 2.0
    assert result.weight_sum == 1.5
    assert result.cost == approx(4.0 / 3.0)
    np.testing.assert_allclose(result.gradient, [[2.0 / 3.0, -1.0 / 3.0], [0.0, 0.0]], rtol=1e-15)


def test_huber_delta_1():
    # By hand from LOSSES.md: delta = 1, d = [0.5, 2] -> [0.5 * 0.25, 1 * (2 - 0.5)]
    # = [0.125, 1.5], mean 0.8125; gradient (mean) = [0.5, 1] / 2 = [0.25, 0.5].
    result = run("huber", [0.5, 2.0], [0.0, 0.0], {"delta": 1.0})
    assert result.per_sample.tolist() == [0.125, 1.5]
    assert result.cost == 0.8125
    assert result.gradient.tolist() == [0.25, 0.5]


def test_huber_default_delta_is_1():
    # LOSSES.md: delta defaults to 1.0; the same numbers as above without params.
    assert run("huber", [0.5, 2.0], [0.0, 0.0]).cost == 0.8125


def test_huber_delta_2():
    # By hand: delta = 2, d = [1, 3, -4] -> [0.5, 2 (3 - 1), 2 (4 - 1)] = [0.5, 4, 6], sum 10.5;
    # gradient (sum) = [1, 2, -2].
    result = run("huber", [1.0, 3.0, -4.0], [0.0, 0.0, 0.0], {"delta": 2.0}, "sum")
    assert result.per_sample.tolist() == [0.5, 4.0, 6.0]
    assert result.cost == 10.5
    assert result.gradient.tolist() == [1.0, 2.0, -2.0]


@pytest.mark.parametrize(
    ("beta", "distances", "expected"),
    [
        # By hand from LOSSES.md: d^2 / (2 beta) below beta, |d| - beta / 2 from beta on.
        (1.0, [0.5, 2.0], [0.125, 1.5]),
        (2.0, [1.0, -3.0], [0.25, 2.0]),
        # beta = 0 is |d| (LOSSES.md; PyTorch's SmoothL1Loss docs: beta = 0 is L1Loss).
        (0.0, [-1.5, 0.25], [1.5, 0.25]),
    ],
)
def test_smooth_l1(beta, distances, expected):
    result = run("smooth_l1", distances, np.zeros(len(distances)), {"beta": beta})
    assert result.per_sample.tolist() == expected


def test_log_cosh_at_1():
    # log(cosh 1) = log((e + 1/e) / 2) = log(1.5430806348152437...) = 0.4337808304830271...;
    # derivative tanh 1 = 0.7615941559557649.
    result = run("log_cosh", [1.0], [0.0])
    assert result.cost == approx(0.4337808304830271)
    assert result.gradient[0] == approx(0.7615941559557649)


def test_log_cosh_is_accurate_near_zero_in_absolute_terms():
    # Series: log cosh d = d^2/2 - d^4/12 + d^6/45 - ...; at d = 1e-3 that is
    # 4.999999166666889e-07. The documented form |d| + softplus(-2|d|) - log 2 subtracts numbers
    # of size log 2, so it is good to ~1e-16 absolute, not relative, for small d.
    result = run("log_cosh", [1e-3], [0.0])
    assert abs(result.cost - 4.999999166666889e-07) <= 1e-15
    assert result.gradient[0] == approx(math.tanh(1e-3))


def test_msle():
    # By hand: p = e - 1, y = 0: (log e - log 1)^2 = 1, derivative 2 * 1 / e = 0.7357588823428847.
    # p = 0, y = e^2 - 1: (0 - 2)^2 = 4. p = y = 3: 0.
    result = run("msle", [math.e - 1.0, 0.0, 3.0], [0.0, math.exp(2.0) - 1.0, 3.0], reduction="sum")
    np.testing.assert_allclose(result.per_sample, [1.0, 4.0, 0.0], rtol=1e-15, atol=0.0)
    assert result.gradient[0] == approx(2.0 / math.e)
    assert result.gradient[1] == approx(-4.0)  # 2 * (0 - 2) / (1 + 0)
    assert result.gradient[2] == 0.0


def _msle_exact(p: float, y: float) -> float:
    """(log1p(p) - log1p(y))^2 in 60-digit decimal arithmetic (1 + p is exact there)."""
    with decimal.localcontext(decimal.Context(prec=60)):
        r = (1 + decimal.Decimal(p)).ln() - (1 + decimal.Decimal(y)).ln()
        return float(r * r)


def test_msle_is_accurate_where_p_and_y_are_close_and_at_the_domain_edges():
    """Against 60-digit decimal logarithms: within 1e-14 relative on 2,000 pairs where y is p
    moved by 1e-12 to 1e-3 relative (the difference of two float64 log1p lost up to 1e-10 here),
    and where 1 + y or 1 + p is the smallest float64 above 0 against huge values (a quotient
    (p - y) / (1 + y) overflows there: those entries take the difference of two log1p)."""
    rng = np.random.default_rng(7)
    p = rng.uniform(0.0, 5.0, 2000)
    y = p * (1.0 + rng.choice([-1.0, 1.0], 2000) * 10.0 ** rng.uniform(-12, -3, 2000))
    edge_p = [1e300, -1.0 + 2.0**-53, -1.0 + 2.0**-53, 1e308, -0.5, 1e-300]
    edge_y = [-1.0 + 2.0**-53, 1e300, 3.0, -0.999999, 1e308, 0.0]
    p, y = np.concatenate([p, edge_p]), np.concatenate([y, edge_y])
    result = run("msle", p, y, reduction="sum")
    exact = np.array([_msle_exact(a, b) for a, b in zip(p, y, strict=True)])
    assert np.all(np.isfinite(result.per_sample))
    np.testing.assert_allclose(result.per_sample, exact, rtol=1e-14, atol=0.0)


def test_mape_on_the_registry_example():
    # By hand: 100 |y - p| / |y| for (90, 100), (210, 200), (48, 50), (5, 4) = 10, 5, 4, 25;
    # per_sample [7.5, 14.5], mean 11. Gradient (mean) = 100 sign(p - y) / |y| / 4
    # = [[-0.25, 0.125], [-0.5, 6.25]].
    result = run("mape", [[90.0, 210.0], [48.0, 5.0]], [[100.0, 200.0], [50.0, 4.0]])
    np.testing.assert_allclose(result.per_sample, [7.5, 14.5], rtol=1e-15)
    assert result.cost == approx(11.0)
    np.testing.assert_allclose(result.gradient, [[-0.25, 0.125], [-0.5, 6.25]], rtol=1e-15)


def test_mape_floors_small_targets_at_eps():
    # By hand: y = 0, p = 1 -> 100 / 1e-7 = 1e9 (default eps, LOSSES.md); eps = 1e-3 -> 1e5;
    # y = 5e-8 < eps: 100 (1 - 5e-8) / 1e-7 = 999999950.
    assert run("mape", [1.0], [0.0]).cost == approx(1e9)
    assert run("mape", [1.0], [0.0], {"eps": 1e-3}).cost == approx(1e5)
    assert run("mape", [1.0], [5e-8]).cost == approx(999999950.0)


@pytest.mark.parametrize(
    ("quantile", "predictions", "expected"),
    [
        # scikit-learn's mean_pinball_loss docstring (y_true = [1, 2, 3]); by hand:
        # q = 0.1, p = [0, 2, 3]: r = [1, 0, 0] -> 0.1 / 3; p = [1, 2, 4]: r = -1 -> 0.9 / 3.
        (0.1, [0.0, 2.0, 3.0], 0.1 / 3.0),
        (0.1, [1.0, 2.0, 4.0], 0.9 / 3.0),
        (0.9, [0.0, 2.0, 3.0], 0.9 / 3.0),
        (0.9, [1.0, 2.0, 4.0], 0.1 / 3.0),
        (0.9, [1.0, 2.0, 3.0], 0.0),
    ],
)
def test_quantile_matches_scikit_learn_examples(quantile, predictions, expected):
    result = run("quantile", predictions, [1.0, 2.0, 3.0], {"quantile": quantile})
    assert result.cost == approx(expected)


def test_quantile_gradient():
    # By hand: q = 0.9; r = y - p = 1 > 0 -> slope -q = -0.9; r = -1 < 0 -> slope 1 - q = 0.1.
    result = run("quantile", [0.0, 1.0], [1.0, 0.0], {"quantile": 0.9}, "sum")
    assert result.per_sample.tolist() == pytest.approx([0.9, 0.1], rel=1e-15)
    assert result.gradient.tolist() == pytest.approx([-0.9, 0.1], rel=1e-15)


def test_poisson_nll_rates():
    # By hand: log_input false, p = 2, y = 3, eps = 1e-8: 2 - 3 log(2 + 1e-8)
    # = 2 - 3 log 2 - 1.5e-8 (+ O(1e-17)) = -0.0794415566798357;
    # derivative 1 - 3 / (2 + 1e-8) = -0.5 + 7.5e-9 (+ O(1e-17)).
    result = run("poisson_nll", [2.0], [3.0], {"log_input": False, "eps": 1e-8})
    assert result.cost == pytest.approx(2.0 - 3.0 * math.log(2.0) - 1.5e-8, rel=1e-14)
    assert result.cost == pytest.approx(-0.0794415566798357, rel=1e-14)
    assert result.gradient[0] == pytest.approx(-0.4999999925, rel=1e-14)


def test_poisson_nll_log_rates():
    # By hand (PyTorch PoissonNLLLoss, log_input=True: exp(p) - y p): p = 0, y = 1 -> 1;
    # p = log 2, y = 2 -> 2 - 2 log 2 = 0.6137056388801094. Both are at the optimum
    # exp(p) = y, so the derivative exp(p) - y is 0 (to rounding for exp(log 2)).
    result = run("poisson_nll", [0.0, math.log(2.0)], [1.0, 2.0], reduction="sum")
    assert result.per_sample[0] == 1.0
    assert result.per_sample[1] == approx(0.6137056388801094)
    assert result.gradient[0] == 0.0
    assert abs(result.gradient[1]) <= 4.5e-16


# --- identities from library documentation -------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_smooth_l1_with_beta_0_is_mae(seed, reduction):
    # PyTorch SmoothL1Loss docs: with beta = 0 it is equivalent to L1Loss; so does LOSSES.md.
    case = random_case("mae", np.random.default_rng(seed), rank=3, weighted=True, masked=True)
    mae = compute_case(case, reduction)
    smooth = compute_case(same_inputs(case, "smooth_l1", {"beta": 0.0}), reduction)
    assert smooth.cost == mae.cost
    np.testing.assert_array_equal(smooth.per_sample, mae.per_sample)
    np.testing.assert_array_equal(smooth.gradient, mae.gradient)


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.5])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_huber_is_delta_times_smooth_l1(delta, reduction):
    # PyTorch HuberLoss docs: "this loss differs from SmoothL1Loss by a factor of delta
    # (AKA beta in Smooth L1)": huber(delta) = delta * smooth_l1(beta = delta), values and slopes.
    rng = np.random.default_rng(int(delta * 10))
    case = random_case("huber", rng, rank=2, weighted=True, masked=True)
    huber = compute_case(same_inputs(case, "huber", {"delta": delta}), reduction)
    smooth = compute_case(same_inputs(case, "smooth_l1", {"beta": delta}), reduction)
    assert huber.cost == pytest.approx(delta * smooth.cost, rel=1e-14)
    np.testing.assert_allclose(huber.per_sample, delta * smooth.per_sample, rtol=1e-14)
    np.testing.assert_allclose(huber.gradient, delta * smooth.gradient, rtol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_quantile_one_half_is_half_the_mae(reduction):
    # scikit-learn mean_pinball_loss docs: "equivalent to Mean absolute error when alpha=0.5"
    # (up to the factor 1/2: max(r/2, -r/2) = |r| / 2). Halving is exact in binary.
    case = random_case("mae", np.random.default_rng(7), rank=2, weighted=True, masked=True)
    mae = compute_case(case, reduction)
    pinball = compute_case(same_inputs(case, "quantile", {"quantile": 0.5}), reduction)
    assert pinball.cost == 0.5 * mae.cost
    np.testing.assert_array_equal(pinball.per_sample, 0.5 * mae.per_sample)
    np.testing.assert_array_equal(pinball.gradient, 0.5 * mae.gradient)


# --- extremes ------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", [1e4, -1e4, 1e3, 1e300])
def test_log_cosh_is_finite_where_cosh_overflows(distance):
    # cosh overflows float64 beyond |d| ~ 710; log cosh d = |d| - log 2 + log1p(exp(-2|d|)) and the
    # last term underflows to 0, so the value is |d| - log 2 and the derivative tanh d = sign d.
    result = run("log_cosh", [distance], [0.0])
    assert result.cost == abs(distance) - math.log(2.0)
    assert result.gradient[0] == math.copysign(1.0, distance)


def test_huber_is_finite_where_mse_overflows():
    # By hand: delta = 1, d = 1e200: 1 * (1e200 - 0.5) = 1e200 (the 0.5 is below an ulp); slope 1.
    result = run("huber", [1e200], [0.0])
    assert result.cost == 1e200
    assert result.gradient[0] == 1.0


def test_overflowing_mse_names_the_sample():
    # (1e200)^2 = 1e400 > float64 max (~1.8e308): API.md, a non-finite result is a 422 naming
    # the first sample; here the third (index 2).
    predictions = [[0.0, 1.0], [2.0, 0.5], [1e200, 0.0], [1e200, 1.0]]
    with pytest.raises(NonFiniteResult) as raised:
        run("mse", predictions, np.zeros((4, 2)))
    assert raised.value.errors[0]["loc"] == ["body", "predictions", 2]
    assert raised.value.status == 422


@pytest.mark.compiled  # exp overflows to inf under numba (error_model="numpy"); Python raises
def test_overflowing_rate_names_the_sample():
    # poisson_nll with log_input: exp(710) > float64 max (exp(709.78) ~ 1.8e308); sample 1.
    with pytest.raises(NonFiniteResult) as raised:
        run("poisson_nll", [[0.0], [710.0], [1.0]], [[1.0], [1.0], [1.0]])
    assert raised.value.errors[0]["loc"] == ["body", "predictions", 1]


def test_every_loss_has_a_golden_value():
    """A loss added to the registry gets its own hand-computed test: the regression losses in
    this file, the binary and categorical ones in test_classification_golden.py, the overlap
    ones in test_overlap_golden.py, box_iou in test_box_golden.py, and the sequence ones in
    test_sequence_golden.py (all in tests/kernels/)."""
    regression = {
        "mse",
        "mae",
        "huber",
        "smooth_l1",
        "log_cosh",
        "msle",
        "mape",
        "quantile",
        "poisson_nll",
    }
    classification = {
        "binary_cross_entropy",
        "binary_focal",
        "hinge",
        "squared_hinge",
        "categorical_cross_entropy",
        "sparse_categorical_cross_entropy",
        "categorical_focal",
        "categorical_hinge",
        "multi_margin",
        "kl_divergence",
    }
    structured = {"dice", "jaccard", "tversky", "box_iou", "sequence_cross_entropy", "ctc"}
    custom = {"custom"}  # tests/expressions/
    assert set(REGISTRY) == regression | classification | structured | custom


def test_overflowing_sum_is_a_non_finite_result():
    # Each element (1e154)^2 = 1e308 is finite, their sum 2e308 is not: API.md, a 422
    # (NonFiniteResult), raised cleanly. Which sample to name is not pinned down here.
    with pytest.raises(NonFiniteResult) as raised:
        run("mse", [1e154, 1e154, 0.0], [0.0, 0.0, 0.0])
    assert raised.value.errors[0]["loc"][:2] == ["body", "predictions"]
