"""The weighting conventions of API.md, driven by the registry: every loss, present and future.

A zero sample weight removes the sample, an integer weight k repeats it k times, the order of
samples does not matter, shards merge exactly, sum = mean x weight_sum, all-zero weights give 0
(never NaN), and the "mean" and "sum" gradients differ by the factor weight_sum; scaling every
weight leaves the mean unchanged.

Each test runs on every loss, at a rank the loss takes (categorical losses (N, C, d1, ...),
multi_margin (N, C), boxes (N, K, 4), sequences (N, T, C)), with the input kinds the loss takes
(both where it has ``from_logits``; overlap modes, box variants and formats); the samplers add
class weights and ignored labels where the loss has them. Selecting samples (removing,
repeating, permuting, sharding) selects CTC's per-sample lengths with them.

Quantities that are the same arithmetic on the same numbers are compared exactly; where the
service may legitimately add in another order (a removed or moved sample), to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

import service.losses  # noqa: F401  (registers every loss)
from tests.properties.cases import (
    LOSS_NAMES,
    REDUCTIONS,
    SEEDS,
    assert_close,
    batch_case,
    kind_for,
    rng_for,
    with_arrays,
)
from tests.strategies.samplers import random_case, rank_near, select_samples
from tests.support.engine import compute_case


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
