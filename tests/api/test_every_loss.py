"""POST /v1/losses/{name} for every registered loss, through the real app, checked against API.md:
its example answers with the full response, shards merge into the whole batch, the gradient is
the derivative of the returned cost, aliases answer with the canonical name, and params omitted,
empty, null or spelled out with their published defaults all mean the same.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY, LossSpec
from tests.api.examples import (
    ALL_KEYS,
)
from tests.api.helpers import (
    default_params,
    defaults_body,
    element_grid,
    element_weights,
    post_loss,
    samples_of,
    shard,
)

SPECS = [pytest.param(spec, id=name) for name, spec in REGISTRY.items()]
ALIASES = [
    pytest.param(alias, spec, id=alias) for spec in REGISTRY.values() for alias in spec.aliases
]


@pytest.mark.parametrize("spec", SPECS)
def test_every_loss_answers_its_example_with_the_full_response(
    client: TestClient, spec: LossSpec
) -> None:
    example = dict(spec.example)
    result = post_loss(client, spec.name, example)

    assert set(result) == ALL_KEYS
    assert result["loss"] == spec.name
    assert result["reduction"] == "mean"
    n_samples = samples_of(example)
    assert result["count"] == n_samples
    assert len(result["per_sample"]) == n_samples
    assert np.shape(result["gradient"]) == np.shape(example["predictions"])
    assert isinstance(result["extras"], dict)
    # Without sample weights every element weighs its mask value (1 without a mask; 0 where
    # ignored): W = the sum of those over the family's element grid (not over predictions),
    # cost = sum / W and sum = sum_i V_i * per_sample[i] with V_i the weights of sample i.
    weights = element_weights(spec, example)
    assert result["weight_sum"] == pytest.approx(weights.sum(), rel=1e-12)
    assert result["cost"] == pytest.approx(result["sum"] / result["weight_sum"], rel=1e-12)
    assert result["sum"] == pytest.approx(weights.sum(axis=1) @ result["per_sample"], rel=1e-12)


@pytest.mark.parametrize("spec", SPECS)
def test_merging_shards_reproduces_the_whole_batch(client: TestClient, spec: LossSpec) -> None:
    """API.md "Merging": mean = sum(sums) / sum(weight_sums) over shards of one data set."""
    example = dict(spec.example)
    n_samples = samples_of(example)
    weights = [float(i + 1) for i in range(n_samples)]
    whole = post_loss(client, spec.name, {**example, "sample_weight": weights})

    body = {**example, "sample_weight": weights}
    shards = [post_loss(client, spec.name, shard(body, i, i + 1)) for i in range(n_samples)]
    total_sum = sum(part["sum"] for part in shards)
    total_weight = sum(part["weight_sum"] for part in shards)
    assert whole["sum"] == pytest.approx(total_sum, rel=1e-12)
    assert whole["weight_sum"] == pytest.approx(total_weight, rel=1e-12)
    assert whole["cost"] == pytest.approx(total_sum / total_weight, rel=1e-12)
    assert whole["count"] == sum(part["count"] for part in shards)
    assert whole["per_sample"] == pytest.approx([s["per_sample"][0] for s in shards], rel=1e-12)


@pytest.mark.parametrize("spec", SPECS)
def test_gradient_is_the_derivative_of_the_returned_cost(
    client: TestClient, spec: LossSpec
) -> None:
    """Central differences of the API's own cost, with sample weights and a mask in play.

    The example is shifted by 0.0123 so that no element sits on a kink (d = 0, |d| = delta,
    a hinge at its margin); probabilities stay inside [eps, 1 - eps]. The mask has the shape of
    the element grid (positions for categorical losses).
    """
    example = dict(spec.example)
    predictions = np.asarray(example["predictions"], dtype=float) + 0.0123
    n_samples = predictions.shape[0]
    grid = element_grid(spec, predictions, example.get("params"))
    body = {
        **example,
        "predictions": predictions.tolist(),
        "sample_weight": [float(i + 1) for i in range(n_samples)],
        "mask": np.linspace(0.25, 1.0, math.prod(grid)).reshape(grid).tolist(),
    }
    gradient = np.asarray(post_loss(client, spec.name, body)["gradient"])

    def cost_at(values: np.ndarray) -> float:
        trimmed = {**body, "predictions": values.tolist(), "include": ["cost"]}
        return post_loss(client, spec.name, trimmed)["cost"]

    numeric = np.empty_like(predictions)
    for index in np.ndindex(predictions.shape):
        step = 1e-6 * max(1.0, abs(predictions[index]))
        up, down = predictions.copy(), predictions.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (cost_at(up) - cost_at(down)) / (2 * step)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("alias", "spec"), ALIASES)
def test_every_alias_answers_with_the_canonical_name(
    client: TestClient, alias: str, spec: LossSpec
) -> None:
    by_alias = post_loss(client, alias, dict(spec.example))
    by_name = post_loss(client, spec.name, dict(spec.example))
    assert by_alias["loss"] == spec.name
    assert by_alias == by_name


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("mean_squared_error", "mse"),
        ("l1", "mae"),
        ("logcosh", "log_cosh"),
        ("pinball", "quantile"),
        ("poisson", "poisson_nll"),
    ],
)
def test_documented_aliases_resolve(client: TestClient, alias: str, canonical: str) -> None:
    body = {"predictions": [0.5, 2.0], "targets": [1.0, 1.0]}
    assert post_loss(client, alias, body)["loss"] == canonical


@pytest.mark.parametrize("spec", SPECS)
def test_params_omitted_empty_or_null_all_mean_the_defaults(
    client: TestClient, spec: LossSpec
) -> None:
    body = defaults_body(spec)
    required = body.get("params") or {}
    omitted = post_loss(client, spec.name, body)
    if not required:
        assert post_loss(client, spec.name, {**body, "params": {}}) == omitted
        assert post_loss(client, spec.name, {**body, "params": None}) == omitted
    # Every other key spelled out with its published default (null included) changes nothing.
    explicit = {**default_params(client, spec), **required}
    assert post_loss(client, spec.name, {**body, "params": explicit}) == omitted


@pytest.mark.parametrize("spec", SPECS)
def test_example_params_over_explicit_defaults_give_the_same_answer(
    client: TestClient, spec: LossSpec
) -> None:
    """An example's own params, completed with every other key at its default."""
    example = dict(spec.example)
    completed = {**default_params(client, spec), **(example.get("params") or {})}
    as_given = post_loss(client, spec.name, example)
    assert post_loss(client, spec.name, {**example, "params": completed}) == as_given
