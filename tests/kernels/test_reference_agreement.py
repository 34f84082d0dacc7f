"""The service agrees with the naive references (tests/reference/) to 1e-10 on random inputs.

Every loss, every input kind it takes (probabilities and logits where it has ``from_logits``;
for the overlap losses every mode times both, for box_iou every variant times every box
format), every rank it takes (elementwise 1 to 4; categorical (N, C) to (N, C, d1, d2); boxes
(N, 4) and (N, K, 4); sequences (N, T, C)), with and without sample weights and a mask, both
reductions: ``cost``, ``per_sample``, ``sum``, ``weight_sum``, ``count`` and the extras the
reference defines (``per_class`` of the overlap losses, ``perplexity`` and ``tokens`` of
sequence cross-entropy). The weights include class_weight, include_background and
ignore_index where the loss has them (the samplers draw them). A fixed grid covers every
combination deterministically; a Hypothesis test explores further seeds, shapes and params.

Tolerance: 1e-10 relative to the magnitude of the quantity, i.e. the same reduction applied to
|l_e| (a sum of losses of both signs, as poisson_nll and kl_divergence have, can cancel far
below its terms; the service cannot be asked to be more accurate than its terms), with an
absolute floor of 1e-12 (log_cosh near d = 0 is a difference of O(1) numbers, good to ~1e-16
absolute, see LOSSES.md).
"""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY
from tests import reference
from tests.strategies.samplers import Case, kinds_of, random_case, ranks_of, select_samples
from tests.support.engine import compute_case

RELATIVE = 1e-10
ABSOLUTE = 1e-12
LOSS_NAMES = sorted(REGISTRY)
REDUCTIONS = ("mean", "sum")


def close(got: float, expected: float, magnitude: float) -> bool:
    return abs(got - expected) <= RELATIVE * max(abs(expected), magnitude) + ABSOLUTE


def check_against_reference(case: Case, reduction: str) -> None:
    result = compute_case(case, reduction, with_gradient=False)
    losses = reference.element_losses(case.name, case.predictions, case.targets, case.params)
    weights = reference.element_weights(
        case.name, case.predictions, case.targets, case.params, case.mask
    )
    expected = reference.reduce(losses, case.n_samples, case.sample_weight, weights, reduction)
    magnitude = reference.reduce(
        [abs(loss) for loss in losses], case.n_samples, case.sample_weight, weights, reduction
    )

    assert result.count == expected.count == case.n_samples
    assert result.per_sample.shape == (case.n_samples,)
    for i, (got, want, size) in enumerate(
        zip(result.per_sample, expected.per_sample, magnitude.per_sample, strict=True)
    ):
        assert close(float(got), want, size), f"per_sample[{i}]: {got!r} != {want!r}"
    assert close(result.weight_sum, expected.weight_sum, 0.0), (
        f"weight_sum {result.weight_sum!r} != {expected.weight_sum!r}"
    )
    assert close(result.sum, expected.sum, magnitude.sum), f"sum {result.sum!r} != {expected.sum!r}"
    assert close(result.cost, expected.cost, magnitude.cost), (
        f"cost {result.cost!r} != {expected.cost!r}"
    )
    for value in (result.cost, result.sum, result.weight_sum, *result.per_sample):
        assert np.isfinite(value)
    check_extras(case, result, losses, weights, magnitude)


def check_extras(case: Case, result, losses, weights, magnitude) -> None:
    """The extras the reference defines, with the tolerance of the quantity they derive from:
    per_class like per_sample; perplexity = exp(cost) relative to the cost's bound; tokens, a
    plain sum of weights, like weight_sum."""
    grid = reference.element_grid(case.name, case.predictions.shape, case.params)
    args = (case.sample_weight, grid, case.targets, case.params, case.mask)
    expected = reference.extras(case.name, losses, weights, *args)
    sizes = reference.extras(case.name, [abs(x) for x in losses], weights, *args)
    for key, want in expected.items():
        assert key in result.extras, f"extras has no {key!r}: {sorted(result.extras)}"
        got = np.asarray(result.extras[key], dtype=np.float64)
        assert got.shape == np.shape(want), f"extras.{key}: shape {got.shape}"
        if key == "perplexity":
            # exp(mean): its relative error is the mean's absolute error.
            mean_size = magnitude.sum / magnitude.weight_sum if magnitude.weight_sum else 0.0
            bound = RELATIVE * max(abs(math.log(want)), mean_size) + ABSOLUTE
            assert abs(float(got) - want) <= want * bound, f"perplexity {got!r} != {want!r}"
            continue
        for index, (value, wanted, scale) in enumerate(
            zip(np.ravel(got), np.ravel(want), np.ravel(sizes[key]), strict=True)
        ):
            assert close(float(value), wanted, scale), (
                f"extras.{key}[{index}]: {value!r} != {wanted!r}"
            )


GRID = [
    (name, kind, rank, weighted, masked, reduction)
    for name in LOSS_NAMES
    for kind in kinds_of(name)
    for rank in ranks_of(name)
    for weighted, masked, reduction in itertools.product((False, True), (False, True), REDUCTIONS)
]


@pytest.mark.parametrize(("name", "kind", "rank", "weighted", "masked", "reduction"), GRID)
def test_grid_matches_reference(name, kind, rank, weighted, masked, reduction):
    seed = zlib.crc32(f"{name}-{kind}-{rank}-{weighted}-{masked}-{reduction}".encode())
    rng = np.random.default_rng(seed)
    case = random_case(name, rng, rank=rank, kind=kind, weighted=weighted, masked=masked)
    check_against_reference(case, reduction)


@pytest.mark.parametrize("name", LOSS_NAMES)
@given(
    seed=st.integers(0, 2**32 - 1),
    weighted=st.booleans(),
    masked=st.booleans(),
    reduction=st.sampled_from(REDUCTIONS),
)
def test_random_inputs_match_reference(name, seed, weighted, masked, reduction):
    """Rank and input kind are drawn from the seed, among those the loss takes."""
    case = random_case(name, np.random.default_rng(seed), weighted=weighted, masked=masked)
    check_against_reference(case, reduction)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_one_sample_of_one_element(name):
    """The smallest batch: N = 1 and one element ((1,) elementwise, (1, C) categorical, one
    sequence for ctc), so per_sample is the element loss itself. Where a sample has several
    elements ((sample, class) pairs, boxes, tokens), a mask keeps the first one alone."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    case = random_case(name, rng, rank=min(ranks_of(name)))
    case = select_samples(Case(name, case.predictions, case.targets, case.params), [0])
    grid = reference.element_grid(name, case.predictions.shape, case.params)
    if np.prod(grid) > 1:
        first = np.zeros(grid)
        first.reshape(-1)[0] = 1.0
        case = Case(name, case.predictions, case.targets, case.params, mask=first)
    for reduction in REDUCTIONS:
        check_against_reference(case, reduction)
    result = compute_case(case)
    element = reference.element_losses(name, case.predictions, case.targets, case.params)[0]
    weight = reference.element_weights(
        name, case.predictions, case.targets, case.params, case.mask
    )[0]
    assert close(float(result.per_sample[0]), element if weight else 0.0, abs(element))
    assert result.weight_sum == weight
    assert close(result.cost, element if weight else 0.0, abs(element))
