"""Generic properties, driven by the registry: every loss, present and future.

- coverage: every registered loss has a sampler (tests/strategies/samplers.py, ``SAMPLERS``) and
  a naive reference (tests/reference/losses.py, ``REFERENCES``);
- ``spec.properties``: "nonnegative" (every element loss >= 0) and "zero_at_target" (cost and
  gradient 0 at p == y), only where declared (the classification losses declare
  "nonnegative", except kl_divergence, which declares nothing), and the declarations agree
  with the reference.

Each test runs on every loss that declares the property, at a rank the loss takes, with the
input kinds the loss takes. The weighting conventions are in test_weighting.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY
from tests.properties.cases import LOSS_NAMES, REDUCTIONS, SEEDS, kind_for, rng_for, with_arrays
from tests.reference import REFERENCES, classification, element_grid, element_losses, regression
from tests.strategies.samplers import (
    SAMPLERS,
    Case,
    has_common_domain,
    kinds_of,
    random_case,
    rank_near,
)
from tests.support.engine import compute_case, element_losses_by_mask

# --- coverage ------------------------------------------------------------------------------


def test_every_registered_loss_has_a_sampler_and_a_reference():
    """A loss added to the registry without a sampler and a naive reference fails here."""
    registered = set(REGISTRY)
    assert registered, "no loss is registered"
    without = {name for name in registered - set(SAMPLERS) if not has_common_domain(name)}
    assert without == set(), "losses of an unusual domain without a sampler in SAMPLERS"
    assert registered - set(REFERENCES) == set(), "losses without a reference in REFERENCES"
    assert set(SAMPLERS) - registered == set(), "samplers for losses that are not registered"
    assert set(REFERENCES) - registered == set(), "references for unregistered losses"


def test_properties_are_known_words():
    """A misspelt property would silently skip its test."""
    for spec in REGISTRY.values():
        assert spec.properties <= {"nonnegative", "zero_at_target"}, spec.name


# --- spec.properties -----------------------------------------------------------------------

NONNEGATIVE = [name for name in LOSS_NAMES if "nonnegative" in REGISTRY[name].properties]
ZERO_AT_TARGET = [name for name in LOSS_NAMES if "zero_at_target" in REGISTRY[name].properties]


def one_element_per_sample(case: Case, rng: np.random.Generator) -> Case:
    """The same elements, each its own sample, so per_sample is the element loss itself.

    Elementwise: shape (n,) (a per-entry pos_weight is repeated to match, entry i keeping
    its weight pos_weight[i % last]). Categorical: the class axis moved last, (n, C), and
    targets (n, C) or labels (n,). No weights, no mask: an ignored label still has its loss.
    A third of the elementwise predictions (and of dense categorical positions) are set equal
    to their targets, where a sign error would show first.
    """
    params = dict(case.params)
    if not REFERENCES[case.name].class_axis:
        targets = case.targets.reshape(-1)
        predictions = case.predictions.reshape(-1).copy()
        exact = rng.random(predictions.size) < 1 / 3
        predictions[exact] = targets[exact]
        if isinstance(params.get("pos_weight"), list):
            last = case.predictions.shape[-1]
            params["pos_weight"] = [params["pos_weight"][i % last] for i in range(targets.size)]
    else:
        classes = case.predictions.shape[1]
        predictions = np.moveaxis(case.predictions, 1, -1).reshape(-1, classes).copy()
        if REFERENCES[case.name].layout == "labels":
            targets = case.targets.reshape(-1)
        else:
            targets = np.moveaxis(case.targets, 1, -1).reshape(-1, classes)
            exact = rng.random(len(predictions)) < 1 / 3
            predictions[exact] = targets[exact]
    return dataclasses.replace(
        case,
        predictions=np.ascontiguousarray(predictions),
        targets=np.ascontiguousarray(targets),
        params=params,
        sample_weight=None,
        mask=None,
    )


@pytest.mark.parametrize("name", NONNEGATIVE)
@pytest.mark.parametrize("seed", SEEDS)
def test_nonnegative_element_losses(name, seed):
    rng = rng_for("nonnegative", name, seed)
    case = random_case(name, rng, rank=rank_near(name, 4), kind=kind_for(name, seed))
    if REFERENCES[name].layout == "structured":
        losses = element_losses_by_mask(case)
        assert losses.size == np.prod(element_grid(name, case.predictions.shape, case.params))
    else:
        case = one_element_per_sample(case, rng)
        losses = compute_case(case).per_sample
        assert losses.shape == (case.n_samples,)
    negative = np.flatnonzero(losses < 0.0)
    assert negative.size == 0, f"negative element losses at {negative.tolist()}"
    assert compute_case(case).cost >= 0.0


@pytest.mark.parametrize("name", ZERO_AT_TARGET)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_zero_cost_and_gradient_at_target(name, seed, reduction):
    rng = rng_for("zero_at_target", name, seed, reduction)
    case = random_case(
        name, rng, rank=rank_near(name, 1 + seed), weighted=True, masked=seed % 2 == 0
    )
    case = with_arrays(case, predictions=case.targets.copy())
    result = compute_case(case, reduction)
    assert result.cost == 0.0
    assert result.sum == 0.0
    assert np.all(result.per_sample == 0.0)
    assert np.all(result.gradient == 0.0)


def test_the_declared_properties_hold_in_the_reference():
    """The registry's facts agree with the formulas of LOSSES.md (checked on the reference):
    a loss that is negative somewhere, or non-zero at p == y, must not declare otherwise."""
    rng = rng_for("declared")
    for name in LOSS_NAMES:
        for kind in kinds_of(name):
            case = random_case(name, rng, rank=rank_near(name, 2), kind=kind, max_elements=96)
            properties = REGISTRY[name].properties
            losses = element_losses(name, case.predictions, case.targets, case.params)
            if "nonnegative" in properties:
                assert min(losses) >= 0.0, name
            if "zero_at_target" in properties:
                at_target = element_losses(name, case.targets, case.targets, case.params)
                assert max(abs(value) for value in at_target) == 0.0, name
    # poisson_nll declares neither, and indeed: exp(p) - y p at p = y = 1 is e - 1 != 0, and
    # at p = log 2, y = 4 it is 2 - 4 log 2 < 0.
    assert not REGISTRY["poisson_nll"].properties
    assert regression.poisson_nll(1.0, 1.0, {}) > 0.0
    assert regression.poisson_nll(np.log(2.0), 4.0, {}) < 0.0
    # kl_divergence declares neither: with probabilities that do not sum to 1 it is negative
    # (y = (1/2, 1/2), q = (0.9, 0.9): log(0.5 / 0.9) < 0, LOSSES.md / catalogue note), and at
    # p == y it is 0 only where the clipping leaves y unchanged (y = (1, 0) is clipped).
    assert not REGISTRY["kl_divergence"].properties
    assert classification.kl_divergence([0.9, 0.9], [0.5, 0.5], {}) < 0.0
    assert classification.kl_divergence([1.0, 0.0], [1.0, 0.0], {}) > 0.0
    # Nor may the cross-entropies declare zero_at_target: at p == y == 1 the clipping leaves
    # -log(1 - eps) > 0 (and hinge at p == y == 0 is max(0, 1 - (-1) 0) = 1).
    assert classification.binary_cross_entropy(1.0, 1.0, {}) > 0.0
    assert classification.categorical_cross_entropy([1.0, 0.0], [1.0, 0.0], {}) > 0.0
    assert classification.hinge(0.0, 0.0, {}) == 1.0
    for name in ("binary_cross_entropy", "categorical_cross_entropy", "hinge"):
        assert "zero_at_target" not in REGISTRY[name].properties
