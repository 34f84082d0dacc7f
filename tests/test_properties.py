"""Generic properties, driven by the registry: every loss, present and future.

- coverage: every registered loss has a sampler and a naive reference;
- ``spec.properties``: "nonnegative" (every element loss >= 0) and "zero_at_target" (cost and
  gradient 0 at p == y), only where declared (the classification losses declare
  "nonnegative", except kl_divergence, which declares nothing);
- the weighting conventions of API.md: a zero sample weight removes the sample, an integer
  weight k repeats it k times, the order of samples does not matter, shards merge exactly,
  sum = mean x weight_sum, all-zero weights give 0 (never NaN), and the "mean" and "sum"
  gradients differ by the factor weight_sum; scaling every weight leaves the mean unchanged.

Each test runs on every loss, at a rank the loss takes (categorical losses (N, C, d1, ...),
multi_margin (N, C), boxes (N, K, 4), sequences (N, T, C)), with the input kinds the loss takes
(both where it has ``from_logits``; overlap modes, box variants and formats); the samplers add
class weights and ignored labels where the loss has them. Selecting samples (removing,
repeating, permuting, sharding) selects CTC's per-sample lengths with them.

Quantities that are the same arithmetic on the same numbers are compared exactly; where the
service may legitimately add in another order (a removed or moved sample), to 1e-12.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY
from tests.reference import (
    REFERENCE_LOSSES,
    element_grid,
    element_losses,
    element_weights,
    has_class_axis,
)
from tests.reference_classification import LABELS
from tests.reference_structured import STRUCTURED
from tests.samplers import (
    SAMPLERS,
    Case,
    compute_case,
    element_losses_by_mask,
    kinds_of,
    random_case,
    rank_near,
    select_samples,
)

LOSS_NAMES = sorted(REGISTRY)
REDUCTIONS = ("mean", "sum")
SEEDS = (0, 1, 2)
RELATIVE = 1e-12


def rng_for(*parts: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("-".join(map(str, parts)).encode()))


def assert_close(got, expected, what: str) -> None:
    """Equal up to 1e-12 relative to the largest value compared (plus a 1e-300 floor)."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    scale = max(float(np.abs(expected).max(initial=0.0)), float(np.abs(got).max(initial=0.0)))
    error = float(np.abs(got - expected).max(initial=0.0))
    assert error <= RELATIVE * scale + 1e-300, f"{what}: {got!r} != {expected!r}"


def with_arrays(case: Case, **changes) -> Case:
    """A copy of ``case`` with some arrays replaced (made C-contiguous float64)."""
    arrays = {
        key: None if value is None else np.ascontiguousarray(value, dtype=np.float64)
        for key, value in changes.items()
    }
    return dataclasses.replace(case, **arrays)


def kind_for(name: str, *parts: object) -> str:
    """One of the loss's input kinds, by a hash of ``parts`` (both kinds over a test's cases)."""
    kinds = kinds_of(name)
    return kinds[zlib.crc32("-".join(map(str, parts)).encode()) % len(kinds)]


def batch_case(
    name: str, *parts: object, n_samples: int = 5, masked: bool = True, rank: int = 3
) -> Case:
    """A weighted (and masked) case with exactly ``n_samples`` samples, of the rank the loss
    takes nearest to ``rank``, repeating a random case with at least two samples of non-zero
    weight inside (mask, class weight, ignored labels)."""
    rng = rng_for(name, *parts)
    kind = kind_for(name, *parts)
    while True:
        case = random_case(
            name, rng, rank=rank_near(name, rank), kind=kind, weighted=True, masked=masked
        )
        inner = element_weights(name, case.predictions, case.targets, case.params, case.mask)
        if np.count_nonzero(np.reshape(inner, (case.n_samples, -1)).sum(axis=1) > 0) >= 2:
            break
    index = np.arange(n_samples) % case.n_samples
    return select_samples(case, index, sample_weight=rng.uniform(0.5, 2.0, n_samples))


# --- coverage ------------------------------------------------------------------------------


def test_every_registered_loss_has_a_sampler_and_a_reference():
    """A loss added to the registry without a sampler and a naive reference fails here."""
    registered = set(REGISTRY)
    assert registered, "no loss is registered"
    assert registered - set(SAMPLERS) == set(), "losses without a sampler in tests/samplers.py"
    assert registered - set(REFERENCE_LOSSES) == set(), "losses without a tests/reference.py"
    assert set(SAMPLERS) - registered == set(), "samplers for losses that are not registered"
    assert set(REFERENCE_LOSSES) - registered == set(), "references for unregistered losses"


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
    if not has_class_axis(case.name):
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
        if case.name in LABELS:
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
    if name in STRUCTURED:
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
    assert REFERENCE_LOSSES["poisson_nll"](1.0, 1.0, {}) > 0.0
    assert REFERENCE_LOSSES["poisson_nll"](np.log(2.0), 4.0, {}) < 0.0
    # kl_divergence declares neither: with probabilities that do not sum to 1 it is negative
    # (y = (1/2, 1/2), q = (0.9, 0.9): log(0.5 / 0.9) < 0, LOSSES.md / catalogue note), and at
    # p == y it is 0 only where the clipping leaves y unchanged (y = (1, 0) is clipped).
    assert not REGISTRY["kl_divergence"].properties
    assert REFERENCE_LOSSES["kl_divergence"]([0.9, 0.9], [0.5, 0.5], {}) < 0.0
    assert REFERENCE_LOSSES["kl_divergence"]([1.0, 0.0], [1.0, 0.0], {}) > 0.0
    # Nor may the cross-entropies declare zero_at_target: at p == y == 1 the clipping leaves
    # -log(1 - eps) > 0 (and hinge at p == y == 0 is max(0, 1 - (-1) 0) = 1).
    assert REFERENCE_LOSSES["binary_cross_entropy"](1.0, 1.0, {}) > 0.0
    assert REFERENCE_LOSSES["categorical_cross_entropy"]([1.0, 0.0], [1.0, 0.0], {}) > 0.0
    assert REFERENCE_LOSSES["hinge"](0.0, 0.0, {}) == 1.0
    for name in ("binary_cross_entropy", "categorical_cross_entropy", "hinge"):
        assert "zero_at_target" not in REGISTRY[name].properties


# --- sample weights ------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_zero_sample_weight_is_a_removed_sample(name, reduction):
    case = batch_case(name, "removed", reduction)
    removed = 2
    weights = case.sample_weight.copy()
    weights[removed] = 0.0
    keep = np.arange(case.n_samples) != removed
    weighted = compute_case(with_arrays(case, sample_weight=weights), reduction)
    without = compute_case(select_samples(case, np.flatnonzero(keep)), reduction)
    assert_close(weighted.cost, without.cost, "cost")
    assert_close(weighted.sum, without.sum, "sum")
    assert_close(weighted.weight_sum, without.weight_sum, "weight_sum")
    assert_close(weighted.per_sample[keep], without.per_sample, "per_sample of the others")
    assert_close(weighted.gradient[keep], without.gradient, "gradient of the others")
    assert np.all(weighted.gradient[removed] == 0.0)
    assert weighted.count == case.n_samples
    assert without.count == case.n_samples - 1


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_integer_sample_weight_is_a_repeated_sample(name, reduction):
    """Weights (2, 0, 1, 3, 1): the same as the batch with sample 0 twice, sample 1 gone,
    sample 3 three times, unweighted."""
    case = batch_case(name, "repeated", reduction)
    repeats = np.array([2, 0, 1, 3, 1])
    weighted = compute_case(with_arrays(case, sample_weight=repeats.astype(float)), reduction)
    copies = np.repeat(np.arange(case.n_samples), repeats)
    repeated = compute_case(select_samples(case, copies, keep_weight=False), reduction)
    assert_close(weighted.cost, repeated.cost, "cost")
    assert_close(weighted.sum, repeated.sum, "sum")
    assert_close(weighted.weight_sum, repeated.weight_sum, "weight_sum")
    assert_close(np.repeat(weighted.per_sample, repeats), repeated.per_sample, "per_sample")
    # Each copy's gradient is its share; the copies together make the weighted sample's.
    owner = np.repeat(np.arange(case.n_samples), repeats)
    summed = np.zeros_like(weighted.gradient)
    np.add.at(summed, owner, repeated.gradient)
    assert_close(weighted.gradient, summed, "gradient summed over the copies")


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sample_order_does_not_matter(name, reduction):
    case = batch_case(name, "permutation", reduction, n_samples=6)
    order = rng_for("order", name).permutation(case.n_samples)
    original = compute_case(case, reduction)
    permuted = compute_case(select_samples(case, order), reduction)
    assert_close(permuted.cost, original.cost, "cost")
    assert_close(permuted.sum, original.sum, "sum")
    assert_close(permuted.weight_sum, original.weight_sum, "weight_sum")
    np.testing.assert_array_equal(permuted.per_sample, original.per_sample[order])
    assert_close(permuted.gradient, original.gradient[order], "gradient")


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("seed", SEEDS)
def test_shards_merge_into_the_batch_mean(name, seed):
    """mean = sum(shard sums) / sum(shard weight_sums), as API.md promises for shards."""
    rng = rng_for("shards", name, seed)
    batch = batch_case(name, "shards", seed, n_samples=7)
    for _ in range(100):  # some weights 0, but not every element's (masks and labels too)
        weights = batch.sample_weight.copy()
        weights[rng.random(7) < 0.3] = 0.0
        case = with_arrays(batch, sample_weight=weights)
        whole = compute_case(case, "mean")
        if whole.weight_sum > 0.0:
            break
    cuts = np.sort(rng.choice(np.arange(1, 7), size=int(rng.integers(1, 4)), replace=False))
    shards = [
        compute_case(select_samples(case, np.arange(start, stop)), "mean")
        for start, stop in zip([0, *cuts], [*cuts, 7], strict=True)
    ]
    merged_sum = sum(shard.sum for shard in shards)
    merged_weight = sum(shard.weight_sum for shard in shards)
    assert merged_weight > 0.0
    assert_close(merged_sum / merged_weight, whole.cost, "merged mean")
    assert_close(merged_sum, whole.sum, "merged sum")
    assert_close(merged_weight, whole.weight_sum, "merged weight_sum")
    assert sum(shard.count for shard in shards) == whole.count == 7
    assert_close(np.concatenate([s.per_sample for s in shards]), whole.per_sample, "per_sample")


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("seed", SEEDS)
def test_sum_is_mean_times_weight_sum(name, seed):
    rng = rng_for("sum-mean", name, seed)
    case = random_case(
        name,
        rng,
        rank=rank_near(name, 1 + seed),
        kind=kind_for(name, seed),
        weighted=True,
        masked=True,
    )
    mean = compute_case(case, "mean")
    total = compute_case(case, "sum")
    assert total.cost == total.sum
    assert mean.sum == total.sum
    assert mean.weight_sum == total.weight_sum
    np.testing.assert_array_equal(mean.per_sample, total.per_sample)
    if mean.weight_sum > 0.0:
        assert_close(mean.cost * mean.weight_sum, mean.sum, "mean x weight_sum")
        # The gradients differ by the same factor.
        assert_close(mean.gradient * mean.weight_sum, total.gradient, "gradient x weight_sum")
    else:
        assert mean.cost == 0.0


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_zero_weights_give_zero_not_nan(name, reduction):
    """Every weight 0: cost 0.0 and gradient 0 (not NaN from 0 / 0). per_sample does not use the
    sample's own weight, so it is still each sample's (masked) mean loss."""
    case = batch_case(name, "zero-weights", reduction)
    weighted = compute_case(with_arrays(case, sample_weight=np.zeros(case.n_samples)), reduction)
    assert weighted.cost == 0.0
    assert weighted.sum == 0.0
    assert weighted.weight_sum == 0.0
    assert np.all(weighted.gradient == 0.0)
    unweighted = compute_case(with_arrays(case, sample_weight=None), reduction)
    np.testing.assert_array_equal(weighted.per_sample, unweighted.per_sample)
    assert np.all(np.isfinite(weighted.per_sample))


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_zero_mask_gives_zero_not_nan(name, reduction):
    case = batch_case(name, "zero-mask", reduction)
    result = compute_case(with_arrays(case, mask=np.zeros(case.mask.shape)), reduction)
    assert result.cost == 0.0
    assert result.sum == 0.0
    assert result.weight_sum == 0.0
    assert np.all(result.per_sample == 0.0)
    assert np.all(result.gradient == 0.0)


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("factor", [2.0**-20, 2.0**20])
def test_mean_does_not_depend_on_the_scale_of_the_weights(name, factor):
    """Weights times a power of two (exact): mean cost, per_sample and mean gradient unchanged,
    sum and weight_sum scaled by the factor."""
    case = batch_case(name, "scale", factor)
    original = compute_case(case, "mean")
    scaled = compute_case(with_arrays(case, sample_weight=case.sample_weight * factor), "mean")
    assert_close(scaled.cost, original.cost, "cost")
    np.testing.assert_array_equal(scaled.per_sample, original.per_sample)
    assert_close(scaled.gradient, original.gradient, "gradient")
    assert_close(scaled.sum, original.sum * factor, "sum")
    assert_close(scaled.weight_sum, original.weight_sum * factor, "weight_sum")


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_tiny_equal_weights_give_the_unweighted_mean(name):
    """Every sample weight 1e-310 (positive, subnormal): the weights are all equal, so the mean
    cost and its gradient are those of the unweighted batch. API.md: the mean is
    sum_e w_e l_e / sum_e w_e for any non-negative weights not all 0; nothing here overflows
    (the gradient's factor w_e / W is 1 / (number of elements)). Five samples of one element:
    W = 5e-310, whose reciprocal is beyond float64's range, so w_e / W must not be formed as
    w_e * (1 / W). (Categorical losses: (N, C), one element per sample.)"""
    case = batch_case(name, "tiny", masked=False, rank=1)
    unweighted = compute_case(with_arrays(case, sample_weight=None), "mean")
    tiny = compute_case(with_arrays(case, sample_weight=np.full(case.n_samples, 1e-310)), "mean")
    # Subnormal products keep ~40 bits, hence 1e-9 rather than 1e-12.
    assert abs(tiny.cost - unweighted.cost) <= 1e-9 * abs(unweighted.cost)
    np.testing.assert_allclose(tiny.gradient, unweighted.gradient, rtol=1e-9, atol=0.0)
