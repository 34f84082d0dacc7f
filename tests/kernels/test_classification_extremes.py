"""Binary and categorical losses at the extremes of float64.

Logits of +-1e4 (and mixes such as [1e4, -1e4, 0]) give finite losses and gradients, equal to
the naive reference (stable at any logit) and to the known limits, for every loss with
``from_logits``; focal losses with gamma < 1 stay finite where 1 - p_t is subnormal;
probabilities exactly 0 and 1 are clipped to [eps, 1 - eps] (LOSSES.md) and give finite results
for every eps the params accept. Limits are by hand, from the formulas in ../shared/LOSSES.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY
from tests import reference
from tests.strategies.samplers import Case, kinds_of, random_case
from tests.support.engine import compute_case
from tests.support.engine import run_loss as run

LOG_2 = 0.6931471805599453  # ln 2 = 0.693147180559945309417...
CLASSIFICATION = sorted(
    name for name, spec in REGISTRY.items() if spec.family in ("binary", "categorical")
)
PROBABILITY_LOSSES = [name for name in CLASSIFICATION if "probabilities" in kinds_of(name)]


def approx(value, rel=1e-15):
    return pytest.approx(value, rel=rel, abs=0.0)


# --- logits of +-1e4 -----------------------------------------------------------------------

EXTREME_LOGITS = [1e4, -1e4, 0.0, 1e4, 5e3, -1e4, 1e4, 0.0, -2.5e3, 1e4, -1e4, 7.0]
EXTREME_PARAMS = [
    ("binary_cross_entropy", {}),
    ("binary_cross_entropy", {"pos_weight": 2.5, "label_smoothing": 0.1}),
    ("binary_cross_entropy", {"pos_weight": [0.5, 1.0, 3.0]}),
    ("binary_focal", {}),
    ("binary_focal", {"gamma": 0.5}),
    ("binary_focal", {"gamma": 0.0, "alpha": 0.25}),
    ("categorical_cross_entropy", {"label_smoothing": 0.1}),
    ("sparse_categorical_cross_entropy", {}),
    ("sparse_categorical_cross_entropy", {"label_smoothing": 0.2, "class_weight": [1, 2, 0.5]}),
    ("categorical_focal", {}),
    ("categorical_focal", {"gamma": 0.5, "alpha": 0.25}),
    ("categorical_focal", {"gamma": 0.0}),
    ("kl_divergence", {}),
]


def extreme_case(name: str, params: dict) -> Case:
    """Logits of +-1e4, 0 and a few between, in (4, 3); every kind of target the loss takes."""
    logits = np.array(EXTREME_LOGITS).reshape(4, 3)
    if REGISTRY[name].family == "binary":
        targets = np.array([[0, 1, 0.3], [1, 0, 1], [0, 0.5, 1], [1, 1, 0]], dtype=float)
    elif reference.REFERENCES[name].layout == "labels":
        targets = np.array([1.0, 0.0, 2.0, -100.0])
    else:  # one-hot, soft and half-zero rows
        targets = np.array([[0, 1, 0], [0.2, 0.3, 0.5], [1, 0, 0], [0.5, 0, 0.5]], dtype=float)
    return Case(name, logits, targets, params | {"from_logits": True}, np.array([1, 2, 0.5, 1]))


@pytest.mark.parametrize(("name", "params"), EXTREME_PARAMS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_logits_of_1e4_are_finite_and_match_the_reference(name, params, reduction):
    # The reference is stable at any logit (log-sigmoid and log-sum-exp written out), so the
    # values must agree to 1e-10. Central differences of the reference check the gradient, with
    # step 1e-4 max(1, |x|) (1 at 1e4, where every loss is linear in the logit): the costs are
    # ~1e3, so a step of 1e-6 would leave a rounding error of ~1e3 x 1e-16 / 1e-6 = 1e-7 in
    # slopes of ~1e-2 at the moderate logits; at 1e-4 it is ~1e-9, and the truncation error
    # (h^2 / 6) x third derivative ~ 1e-9.
    case = extreme_case(name, params)
    result = compute_case(case, reduction)
    expected = reference.reference_result(
        name, case.predictions, case.targets, case.params, case.sample_weight, None, reduction
    )
    assert np.all(np.isfinite(result.per_sample)) and np.all(np.isfinite(result.gradient))
    assert result.cost == pytest.approx(expected.cost, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(result.per_sample, expected.per_sample, rtol=1e-10, atol=1e-12)
    differences = np.zeros(case.predictions.shape)
    for index in np.ndindex(case.predictions.shape):
        x = case.predictions[index]
        step = 1e-4 * max(1.0, abs(x))
        costs = []
        for shifted in (x + step, x - step):
            predictions = case.predictions.copy()
            predictions[index] = shifted
            costs.append(
                reference.reference_cost(
                    name,
                    predictions,
                    case.targets,
                    case.params,
                    case.sample_weight,
                    None,
                    reduction,
                )
            )
        differences[index] = (costs[0] - costs[1]) / ((x + step) - (x - step))
    np.testing.assert_allclose(
        result.gradient, differences, rtol=1e-6, atol=1e-6 * np.abs(differences).max()
    )


@pytest.mark.parametrize(
    ("name", "params", "logits", "target", "loss", "slope"),
    [
        # By hand: softplus(1e4) = 1e4 exactly in float64; sigmoid(1e4) = 1.
        ("bce", {}, 1e4, 0.0, 1e4, 1.0),
        ("bce", {}, -1e4, 1.0, 1e4, -1.0),
        ("bce", {}, 1e4, 1.0, 0.0, 0.0),
        ("bce", {"pos_weight": 2.5}, -1e4, 1.0, 2.5e4, -2.5),
        ("bce", {}, 1e4, 0.3, 7e3, 0.7),  # soft target: (1 - y) softplus(x)
        # Focal: 1 - p_t = 1 at the wrong extreme, so the loss is the bce for any gamma; at the
        # right extreme 1 - p_t = 0 and bce = 0: loss 0 and slope 0.
        ("binary_focal", {"gamma": 0.5}, 1e4, 0.0, 1e4, 1.0),
        ("binary_focal", {"gamma": 0.0}, -1e4, 1.0, 1e4, -1.0),
        ("binary_focal", {"gamma": 0.5}, 1e4, 1.0, 0.0, 0.0),
        ("binary_focal", {"gamma": 2.0, "alpha": 0.25}, 1e4, 0.0, 7.5e3, 0.75),
    ],
)
def test_binary_logit_limits(name, params, logits, target, loss, slope):
    result = run(name, [logits], [target], params | {"from_logits": True})
    assert result.cost == loss
    assert result.gradient[0] == slope


@pytest.mark.parametrize(
    ("name", "params", "target", "loss", "slopes"),
    [
        # By hand, logits [1e4, -1e4, 0]: log-sum-exp = 1e4, q = [1, 0, 0] (e^-1e4 = 0).
        # Target 1: l = 1e4 - (-1e4) = 2e4, slope q - y = [1, -1, 0].
        ("sparse_cce", {}, 1.0, 2e4, [1.0, -1.0, 0.0]),
        ("sparse_cce", {}, 0.0, 0.0, [0.0, 0.0, 0.0]),
        ("cce", {}, [0.0, 1.0, 0.0], 2e4, [1.0, -1.0, 0.0]),
        # Focal, gamma 0.5: (1 - q_1)^0.5 = 1 -> 2e4; g_1 = 1, slopes -(g - q sum g) = [1, -1, 0].
        ("categorical_focal", {"gamma": 0.5}, [0.0, 1.0, 0.0], 2e4, [1.0, -1.0, 0.0]),
        ("categorical_focal", {"gamma": 0.5}, [1.0, 0.0, 0.0], 0.0, [0.0, 0.0, 0.0]),
        # KL, y = [1/2, 1/2, 0]: 1/2 (log 1/2 - 0) + 1/2 (log 1/2 + 2e4) = 1e4 - log 2;
        # slopes q sum y - y = [1/2, -1/2, 0].
        ("kl_divergence", {}, [0.5, 0.5, 0.0], 1e4 - LOG_2, [0.5, -0.5, 0.0]),
    ],
)
def test_categorical_logit_limits(name, params, target, loss, slopes):
    result = run(name, [[1e4, -1e4, 0.0]], [target], params | {"from_logits": True})
    assert result.cost == approx(loss)
    assert result.gradient[0].tolist() == slopes


@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("logit", [20.0, 40.0, 200.0])
def test_focal_keeps_relative_precision_where_the_prediction_is_right(gamma, logit):
    """A confident right prediction: 1 - p_t = r ~ e^-x (~1e-87 at x = 200) and the loss
    ~ r^(1 + gamma) is tiny but representable; 1 - q computed as 1 - (a number that rounds to
    1) would be 0. The kernels take the complement without cancellation (sigmoid(-x), or the
    other classes' share), so the loss keeps its relative precision: the reference (binary
    1 - p_t = sigmoid(-x); categorical 1 - q_c = the sum of the other q, log q_top =
    -log1p(share)) to 1e-12, checked at x = 20 and 40 against 40-digit values too.

    Slopes, against relative central differences of the reference to 1e-6: the binary one, and
    the categorical ones of the other classes, -alpha (g_c - q_c sum g) = alpha q_c g_top. The
    top class's own slope, g_top (1 - q_top) formed as g_top - q_top g_top, cancels like
    cross-entropy's q_top - 1 (0 once r < 1e-16): it is not checked here."""
    for name, logits, target in [
        ("binary_focal", [logit], [1.0]),
        ("categorical_focal", [[logit, 0.0, -1.0]], [[1.0, 0.0, 0.0]]),
    ]:
        params = {"from_logits": True, "gamma": gamma}
        result = run(name, logits, target, params)
        points = np.array(logits)
        expected = reference.reference_cost(
            name, points, np.array(target), params, None, None, "sum"
        )
        assert 0.0 < expected < 1e-8
        assert result.cost == approx(expected, 1e-12)
        for index in np.ndindex(points.shape):
            if index == (0, 0) and name == "categorical_focal":
                continue  # the top class's own slope, see above
            step = 1e-6 * max(1.0, abs(points[index]))
            costs = []
            for shifted in (points[index] + step, points[index] - step):
                moved = points.copy()
                moved[index] = shifted
                costs.append(
                    reference.reference_cost(
                        name, moved, np.array(target), params, None, None, "sum"
                    )
                )
            slope = (costs[0] - costs[1]) / (2.0 * step)
            assert result.gradient[index] == pytest.approx(slope, rel=1e-6), (name, index)


def test_categorical_focal_at_a_confident_prediction_by_hand():
    # By hand (40 digits, Python's decimal): logits [x, 0, -1], target e_0: r = e^-x + e^-(x+1),
    # 1 - q_0 = r / (1 + r), -log q_0 = log(1 + r); gamma 0.5 and 2:
    # x = 20: 1.497053341969045041e-13 and 2.241168705541300163e-26;
    # x = 40: 1.400886077788519771e-26 and 1.962481802941702662e-52.
    for logit, values in [
        (20.0, (1.497053341969045e-13, 2.2411687055413002e-26)),
        (40.0, (1.4008860777885198e-26, 1.9624818029417027e-52)),
    ]:
        for gamma, value in zip((0.5, 2.0), values, strict=True):
            result = run(
                "categorical_focal",
                [[logit, 0.0, -1.0]],
                [[1.0, 0.0, 0.0]],
                {"from_logits": True, "gamma": gamma},
            )
            assert result.cost == approx(value, 1e-13)


@pytest.mark.parametrize("gamma", [0.01, 0.1, 0.5])
@pytest.mark.parametrize("logit", [700.0, 720.0, 740.0, 745.0])
def test_focal_with_gamma_below_1_is_finite_where_1_minus_p_t_is_subnormal(gamma, logit):
    # d/dx of (1 - p_t)^gamma has the factor (1 - p_t)^(gamma - 1), which overflows float64
    # when 1 - p_t = e^-x is subnormal (x > 708) and gamma < 1; the product with
    # d(1 - p_t)/dx ~ e^-x and bce ~ e^-x tends to 0. Loss and slope: ~ -(1 + gamma)
    # e^-(1 + gamma) x, below 1e-300 in magnitude here, and finite.
    for name, logits, target in [
        ("binary_focal", [logit], [1.0]),
        ("categorical_focal", [[logit, 0.0]], [[1.0, 0.0]]),
    ]:
        result = run(name, logits, target, {"from_logits": True, "gamma": gamma})
        assert np.isfinite(result.cost) and np.all(np.isfinite(result.gradient))
        assert 0.0 <= result.cost <= 1e-300
        assert np.abs(result.gradient).max() <= 1e-300


UNBOUNDED = [
    (name, kind)
    for name in CLASSIFICATION
    for kind in kinds_of(name)
    if kind in ("logits", "scores")
]


@pytest.mark.parametrize(("name", "kind"), UNBOUNDED)
def test_inputs_of_1e4_are_finite_and_match_the_reference(name, kind):
    """Every classification loss that takes logits or raw scores: random mixes of +-1e4, 0 and
    moderate values, with the sampler's targets, params, weights and mask, give finite
    results equal to the reference (hinges: (1e4 + 1)^2 ~ 1e8 is still far from overflow)."""
    rng = np.random.default_rng(len(name))
    for _ in range(5):
        case = random_case(name, rng, kind=kind, weighted=True, masked=True)
        values = rng.choice([1e4, -1e4, 0.0, 3.0], case.predictions.shape)
        case = Case(name, values, case.targets, case.params, case.sample_weight, case.mask)
        for reduction in ("mean", "sum"):
            result = compute_case(case, reduction)
            expected = reference.reference_result(
                name, values, case.targets, case.params, case.sample_weight, case.mask, reduction
            )
            assert np.all(np.isfinite(result.gradient)) and np.all(np.isfinite(result.per_sample))
            assert result.cost == pytest.approx(expected.cost, rel=1e-10, abs=1e-12)
            np.testing.assert_allclose(
                result.per_sample, expected.per_sample, rtol=1e-10, atol=1e-12
            )


# --- probabilities of exactly 0 and 1 ------------------------------------------------------


@pytest.mark.parametrize("name", PROBABILITY_LOSSES)
@pytest.mark.parametrize("eps", [None, 1e-3, 1e-12])
def test_probabilities_of_exactly_0_and_1_are_clipped(name, eps):
    """LOSSES.md: pc = clip(p, eps, 1 - eps) before any log, the slope taken at pc. So 0 and 1
    give finite losses and gradients, equal to the reference, and exactly those of the
    clipped values sent as predictions."""
    rng = np.random.default_rng(len(name) + (0 if eps is None else int(-math.log10(eps))))
    for _ in range(3):
        case = random_case(name, rng, kind="probabilities", weighted=True, masked=True)
        params = {key: value for key, value in case.params.items() if key != "eps"}
        params |= {} if eps is None else {"eps": eps}
        extremes = rng.choice([0.0, 1.0, 0.25], case.predictions.shape, p=[0.4, 0.4, 0.2])
        case = Case(name, extremes, case.targets, params, case.sample_weight, case.mask)
        result = compute_case(case)
        assert np.all(np.isfinite(result.per_sample)) and np.all(np.isfinite(result.gradient))
        expected = reference.reference_result(
            name, extremes, case.targets, params, case.sample_weight, case.mask
        )
        assert result.cost == pytest.approx(expected.cost, rel=1e-10, abs=1e-12)
        low = 1e-7 if eps is None else eps
        clipped = np.clip(extremes, low, 1.0 - low)
        same = compute_case(
            Case(name, clipped, case.targets, params, case.sample_weight, case.mask)
        )
        assert result.cost == same.cost
        np.testing.assert_array_equal(result.gradient, same.gradient)


@pytest.mark.parametrize("eps", [1e-15, 1e-16, 1e-17, 1e-20, 1e-300])
@pytest.mark.parametrize(
    ("name", "params", "predictions", "targets"),
    [
        # Each prediction 0 or 1, its target at the other end: every element's loss is about
        # -log(eps), through log(1 - pc) for the entries at 1 and log(pc) for those at 0.
        ("binary_cross_entropy", {}, [1.0, 0.0], [0.0, 1.0]),
        ("binary_focal", {"gamma": 0.5}, [1.0, 0.0], [0.0, 1.0]),
        ("categorical_cross_entropy", {}, [[1.0, 0.0]], [[0.0, 1.0]]),
        ("sparse_categorical_cross_entropy", {}, [[1.0, 0.0]], [1.0]),
        ("categorical_focal", {"gamma": 0.5}, [[1.0, 0.0]], [[0.0, 1.0]]),
        ("kl_divergence", {}, [[1.0, 0.0]], [[0.0, 1.0]]),
    ],
)
def test_every_accepted_eps_keeps_0_and_1_finite(eps, name, params, predictions, targets):
    """Below 2^-53, 1 - eps rounds to 1 in float64, so a literal clip(p, eps, 1 - eps) leaves
    p = 1 at 1 and log(1 - pc) or 1 / (1 - pc) is infinite (a 500 from a ZeroDivisionError,
    or a 422 "overflow" for valid input). API.md: no input may make the service answer 500,
    and a 200 carries finite numbers. So either the params refuse such an eps (a 422 naming
    it), or the result is finite: the reference's where 1 - eps is representable, else
    the mathematical value, each element -log(eps) to 1e-12."""
    try:
        REGISTRY[name].params(**params, eps=eps)
    except ValidationError:
        return  # refused up front (a 422 naming params.eps): acceptable
    result = run(name, predictions, targets, params | {"eps": eps})
    assert np.all(np.isfinite(result.gradient))
    if 1.0 - eps < 1.0:
        expected = reference.reference_result(
            name, np.array(predictions), np.array(targets), params | {"eps": eps}, reduction="sum"
        )
        assert result.cost == approx(expected.cost, 1e-12)
    else:
        assert result.cost == approx(len(targets) * -math.log(eps), 1e-12)
