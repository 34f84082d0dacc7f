"""POST /v1/losses/{name}, /healthz and /readyz through the real app, checked against API.md.

Expected numbers are derived by hand from API.md's conventions (element weight
w_e = sample_weight[i] * mask_e; per_sample[i] = the sample's mean without its own weight;
cost = sum / weight_sum under "mean"; gradient = d cost / d predictions) and LOSSES.md's
formulas; each case says how.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any

import httpx2
import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.app import create_app
from service.losses.registry import REGISTRY, LossSpec

SPECS = [pytest.param(spec, id=name) for name, spec in REGISTRY.items()]
ALIASES = [
    pytest.param(alias, spec, id=alias) for spec in REGISTRY.values() for alias in spec.aliases
]
#: Keys that every 200 carries, whatever ``include`` asks for (merging needs them).
ALWAYS_KEYS = {"loss", "reduction", "sum", "weight_sum", "count", "extras"}
ALL_KEYS = ALWAYS_KEYS | {"cost", "per_sample", "gradient"}

#: The brief's example: element losses (p - y)^2 = [[0, 1], [4, 9]].
MSE_WEIGHTED_BODY = {
    "predictions": [[1, 2], [3, 4]],
    "targets": [[1, 1], [1, 1]],
    "sample_weight": [1, 3],
}
MSE_WEIGHTED_RESULT = {
    "loss": "mse",
    "reduction": "mean",
    "per_sample": [0.5, 6.5],  # (0 + 1) / 2 and (4 + 9) / 2, without the sample's own weight
    "sum": 40.0,  # 1 * (0 + 1) + 3 * (4 + 9)
    "weight_sum": 8.0,  # 1 * 2 elements + 3 * 2 elements
    "cost": 5.0,  # 40 / 8
    # w_e / W * 2 (p - y): [[1/8 * 0, 1/8 * 2], [3/8 * 4, 3/8 * 6]]
    "gradient": [[0.0, 0.25], [1.5, 2.25]],
    "count": 2,
}


def strict_json(text: str) -> Any:
    """Parse a response, refusing NaN / Infinity tokens (a 200 never carries them)."""

    def refuse(token: str) -> None:
        raise AssertionError(f"response carries the non-finite token {token}")

    return json.loads(text, parse_constant=refuse)


def ok_result(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return strict_json(response.text)


def post_loss(client: TestClient, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return ok_result(client.post(f"/v1/losses/{name}", json=body))


def assert_close(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float),
        np.asarray(expected, dtype=float),
        rtol=1e-12,
        atol=1e-15,
        strict=True,  # shapes must match exactly, no broadcasting
    )


def assert_result(result: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if isinstance(value, str):
            assert result[key] == value, key
        else:
            assert_close(result[key], value)


def samples_of(example: dict[str, Any]) -> int:
    return len(example["predictions"])


def _overlap_grid(shape: tuple[int, ...], params: dict[str, Any]) -> tuple[int, ...]:
    # One element per (sample, class); binary mode has one class whatever the layout.
    return (shape[0], 1) if params.get("mode", "binary") == "binary" else shape[:2]


#: API.md "Elements" and LOSSES.md: the element grid (the shape of ``mask``) as a function of
#: the predictions' shape and the params. Regression, binary and multi-label: every entry.
#: Categorical: every position (n, d1, ...), class axis 1 reduced (multi_margin's (N, C): one
#: per sample). Overlap: (N, C). Boxes: every box, shape[:-1]. API.md names the sequence
#: family's elements per loss: every token (N, T) for sequence_cross_entropy, every sequence
#: (N,) for ctc; those two keys take precedence over their family.
ELEMENT_GRIDS = {
    "regression": lambda shape, params: shape,
    "custom": lambda shape, params: shape,
    "binary": lambda shape, params: shape,
    "categorical": lambda shape, params: shape[:1] + shape[2:],
    "overlap": _overlap_grid,
    "boxes": lambda shape, params: shape[:-1],
    "sequence_cross_entropy": lambda shape, params: shape[:2],
    "ctc": lambda shape, params: shape[:1],
}


def element_grid(
    spec: LossSpec, predictions: Any, params: dict[str, Any] | None = None
) -> tuple[int, ...]:
    """The shape of ``spec``'s element grid (and of its ``mask``) for these predictions."""
    key = spec.name if spec.name in ELEMENT_GRIDS else spec.family
    assert key in ELEMENT_GRIDS, (
        f"family {spec.family!r}: add its element grid (API.md, Elements) to ELEMENT_GRIDS"
    )
    return ELEMENT_GRIDS[key](np.shape(predictions), params or {})


def element_weights(spec: LossSpec, body: dict[str, Any]) -> np.ndarray:
    """Each element's weight inside its sample, before sample_weight (API.md): the mask value
    (default 1), times 0 where an integer target equals ``ignore_index`` (default -100)."""
    params = body.get("params") or {}
    grid = element_grid(spec, body["predictions"], params)
    mask = body.get("mask")
    weights = np.ones(grid) if mask is None else np.asarray(mask, dtype=float)
    if "ignore_index" in spec.params.model_fields:
        weights = weights * (np.asarray(body["targets"]) != params.get("ignore_index", -100))
    return weights.reshape(grid[0], -1)


def probabilities_of(
    spec: LossSpec, logits: Any, params: dict[str, Any] | None = None
) -> np.ndarray:
    """What ``from_logits`` applies (LOSSES.md): the sigmoid for binary losses and the binary
    and multilabel overlap modes; the softmax over axis 1 for categorical losses and multiclass
    overlap; over the last axis for sequences."""
    x = np.asarray(logits, dtype=float)
    mode = (params or {}).get("mode", "binary")
    if spec.family == "binary" or (spec.family == "overlap" and mode != "multiclass"):
        return 1.0 / (1.0 + np.exp(-x))
    assert spec.family in ("categorical", "overlap", "sequence"), (
        f"{spec.name}: no documented link for {spec.family!r}"
    )
    axis = -1 if spec.family == "sequence" else 1
    exp = np.exp(x - x.max(axis=axis, keepdims=True))
    return exp / exp.sum(axis=axis, keepdims=True)


def required_params(spec: LossSpec) -> list[str]:
    """Params without a default (LOSSES.md: ctc's target_lengths)."""
    return list(spec.params.model_json_schema().get("required", []))


def default_params(client: TestClient, spec: LossSpec) -> dict[str, Any]:
    """Every optional params key with the default the catalogue publishes (checked against
    LOSSES.md in test_catalogue); required keys have none."""
    entry = client.get(f"/v1/losses/{spec.name}").json()
    required = set(entry["params"].get("required", []))
    properties = entry["params"]["properties"].items()
    return {key: prop["default"] for key, prop in properties if key not in required}


#: Params whose lists run over the samples (API.md: CTC's lengths): sliced with the samples.
PER_SAMPLE_PARAMS = ("target_lengths", "input_lengths")


def shard(body: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    """Samples ``start:stop`` of a request: every per-sample array and per-sample param."""
    part = dict(body)
    for field in ("predictions", "targets", "sample_weight", "mask"):
        if body.get(field) is not None:
            part[field] = body[field][start:stop]
    params = body.get("params") or {}
    if any(params.get(key) is not None for key in PER_SAMPLE_PARAMS):
        part["params"] = {
            key: value[start:stop] if key in PER_SAMPLE_PARAMS and value is not None else value
            for key, value in params.items()
        }
    return part


# --- every registered loss -------------------------------------------------------------------


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


def defaults_body(spec: LossSpec) -> dict[str, Any]:
    """The example with only its required params (if any), made valid under the defaults of
    the others: an example that sends logits (from_logits true) sends their probabilities
    instead, and an integer class map sent for multiclass overlap becomes the one-hot it
    stands for (the default binary mode takes any layout with targets of the same shape)."""
    params = spec.example.get("params") or {}
    body = {key: value for key, value in spec.example.items() if key != "params"}
    required = {key: params[key] for key in required_params(spec)}
    if required:
        body["params"] = required
    if params.get("from_logits"):
        body["predictions"] = probabilities_of(spec, body["predictions"], params).tolist()
    shape, targets = np.shape(body["predictions"]), np.asarray(body["targets"])
    if spec.family == "overlap" and targets.shape != shape:
        one_hot = targets[..., None] == np.arange(shape[1])
        body["targets"] = np.moveaxis(one_hot, -1, 1).astype(int).tolist()
    return body


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


# --- hand-computed numbers -------------------------------------------------------------------

LOG_2 = math.log(2.0)

HAND_COMPUTED = [
    pytest.param("mse", MSE_WEIGHTED_BODY, MSE_WEIGHTED_RESULT, id="mse-sample-weight"),
    pytest.param(
        "mse",
        {**MSE_WEIGHTED_BODY, "reduction": "sum"},
        # Same elements and weights; cost = sum = 40 and the gradient is w_e * 2 (p - y):
        # [[1 * 0, 1 * 2], [3 * 4, 3 * 6]].
        {
            "reduction": "sum",
            "cost": 40.0,
            "sum": 40.0,
            "weight_sum": 8.0,
            "per_sample": [0.5, 6.5],
            "gradient": [[0.0, 2.0], [12.0, 18.0]],
        },
        id="mse-reduction-sum",
    ),
    pytest.param(
        "mse",
        {**MSE_WEIGHTED_BODY, "sample_weight": [0, 1]},
        # Sample 0 weighs 0: per_sample[0] is still its own mean 0.5 (per_sample excludes the
        # sample's weight); sum = 13, W = 2, cost 6.5; gradient [[0, 0], [2*2/2, 2*3/2]].
        {
            "per_sample": [0.5, 6.5],
            "sum": 13.0,
            "weight_sum": 2.0,
            "cost": 6.5,
            "gradient": [[0.0, 0.0], [2.0, 3.0]],
        },
        id="mse-zero-sample-weight",
    ),
    pytest.param(
        "mse",
        {"predictions": [[1, 2], [3, 4]], "targets": [[1, 1], [1, 1]], "mask": [[1, 0], [0.5, 1]]},
        # Unmasked cost would be 14 / 4 = 3.5. With w_e = m_e: sample 0 keeps only the 0 loss,
        # per_sample[0] = 0 / 1 = 0; sample 1: (0.5 * 4 + 1 * 9) / 1.5 = 22/3.
        # sum = 11, W = 1 + 1.5 = 2.5, cost = 4.4; gradient m_e / W * 2 (p - y).
        {
            "per_sample": [0.0, 22 / 3],
            "sum": 11.0,
            "weight_sum": 2.5,
            "cost": 4.4,
            "gradient": [[0.0, 0.0], [0.5 / 2.5 * 4, 1 / 2.5 * 6]],
        },
        id="mse-mask",
    ),
    pytest.param(
        "mse",
        {**MSE_WEIGHTED_BODY, "mask": [[1, 0], [0.5, 1]]},
        # w_e = s_i * m_e: sum = 1 * 0 + 3 * 11 = 33, W = 1 * 1 + 3 * 1.5 = 5.5, cost 6;
        # per_sample as without sample weights; gradient s_i m_e / W * 2 (p - y).
        {
            "per_sample": [0.0, 22 / 3],
            "sum": 33.0,
            "weight_sum": 5.5,
            "cost": 6.0,
            "gradient": [[0.0, 0.0], [3 * 0.5 / 5.5 * 4, 3 * 1 / 5.5 * 6]],
        },
        id="mse-mask-and-sample-weight",
    ),
    pytest.param(
        "mse",
        {"predictions": [[1, 2]], "targets": [[0, 0]], "mask": [[0, 0]]},
        # Every weight 0: the mean cost is 0.0 and per_sample 0.0 (API.md), gradient 0.
        {
            "cost": 0.0,
            "sum": 0.0,
            "weight_sum": 0.0,
            "per_sample": [0.0],
            "gradient": [[0.0, 0.0]],
        },
        id="mse-all-masked",
    ),
    pytest.param(
        "mse",
        {"predictions": [1, 3], "targets": [0, 0]},
        # Rank 1: two samples of one element: losses [1, 9], W = 2, gradient 2 d / 2.
        {
            "count": 2,
            "per_sample": [1.0, 9.0],
            "sum": 10.0,
            "weight_sum": 2.0,
            "cost": 5.0,
            "gradient": [1.0, 3.0],
        },
        id="mse-rank-1",
    ),
    pytest.param(
        "mae",
        {"predictions": [[[1, -1]], [[2, 2]]], "targets": [[[0, 0]], [[0, 0]]]},
        # Rank 3, shape (2, 1, 2): |d| = [[1, 1], [2, 2]], W = 4, gradient sign(d) / 4.
        {
            "count": 2,
            "per_sample": [1.0, 2.0],
            "sum": 6.0,
            "weight_sum": 4.0,
            "cost": 1.5,
            "gradient": [[[0.25, -0.25]], [[0.25, 0.25]]],
        },
        id="mae-rank-3",
    ),
    pytest.param(
        "mse",
        {"predictions": [[[[1, 0]], [[0, 2]]]], "targets": [[[[0, 0]], [[0, 0]]]]},
        # Rank 4, shape (1, 2, 1, 2): losses [1, 0, 0, 4], one sample, W = 4; gradient 2 d / 4.
        {
            "count": 1,
            "per_sample": [1.25],
            "sum": 5.0,
            "weight_sum": 4.0,
            "cost": 1.25,
            "gradient": [[[[0.5, 0.0]], [[0.0, 1.0]]]],
        },
        id="mse-rank-4",
    ),
    pytest.param(
        "mae",
        {"predictions": [[1, 1]], "targets": [[1, 3]]},
        # d = [0, -2]: losses [0, 2]; at the kink d = 0 the derivative is 0 (API.md).
        {"per_sample": [1.0], "cost": 1.0, "gradient": [[0.0, -0.5]]},
        id="mae-kink",
    ),
    pytest.param(
        "huber",
        {"predictions": [0, 0.5, 3], "targets": [0, 0, 0]},
        # Default delta 1: [0, 0.5^2 / 2, 1 * (3 - 1/2)] = [0, 0.125, 2.5]; W = 3;
        # gradient [0, d, delta sign(d)] / 3.
        {
            "per_sample": [0.0, 0.125, 2.5],
            "sum": 2.625,
            "cost": 0.875,
            "gradient": [0.0, 0.5 / 3, 1 / 3],
        },
        id="huber-default-delta",
    ),
    pytest.param(
        "huber",
        {"predictions": [0, 0.5, 3], "targets": [0, 0, 0], "params": {"delta": 2}},
        # delta 2 (an integer where a float is expected): 3 -> 2 * (3 - 1) = 4.
        {"per_sample": [0.0, 0.125, 4.0], "cost": 1.375, "gradient": [0.0, 0.5 / 3, 2 / 3]},
        id="huber-delta-2",
    ),
    pytest.param(
        "smooth_l1",
        {"predictions": [0.5, 2], "targets": [0, 0]},
        # Default beta 1: [0.5^2 / 2, 2 - 1/2] = [0.125, 1.5]; gradient [d / beta, 1] / 2.
        {"per_sample": [0.125, 1.5], "cost": 0.8125, "gradient": [0.25, 0.5]},
        id="smooth-l1-default-beta",
    ),
    pytest.param(
        "smooth_l1",
        {"predictions": [0.5, 2], "targets": [0, 0], "params": {"beta": 0}},
        # beta 0 is |d|: [0.5, 2]; gradient sign(d) / 2.
        {"per_sample": [0.5, 2.0], "cost": 1.25, "gradient": [0.5, 0.5]},
        id="smooth-l1-beta-0",
    ),
    pytest.param(
        "log_cosh",
        {"predictions": [0, 1, 1000], "targets": [0, 0, 0]},
        # [0, log cosh 1, 1000 - log 2] (cosh 1000 overflows; the stable form does not);
        # gradient tanh(d) / 3.
        {
            "per_sample": [0.0, math.log(math.cosh(1.0)), 1000 - LOG_2],
            "cost": (math.log(math.cosh(1.0)) + 1000 - LOG_2) / 3,
            "gradient": [0.0, math.tanh(1.0) / 3, 1 / 3],
        },
        id="log-cosh",
    ),
    pytest.param(
        "msle",
        {"predictions": [1, 3], "targets": [0, 1]},
        # log1p: [log 2 - 0, log 4 - log 2] = [log 2, log 2]: losses (log 2)^2 each;
        # gradient 2 r / (1 + p) / 2 = [log 2 / 2, log 2 / 4].
        {
            "per_sample": [LOG_2**2, LOG_2**2],
            "cost": LOG_2**2,
            "gradient": [LOG_2 / 2, LOG_2 / 4],
        },
        id="msle",
    ),
    pytest.param(
        "mape",
        {"predictions": [90, 1e-9], "targets": [100, 0]},
        # 100 |y - p| / max(|y|, eps), default eps 1e-7: [10, 100 * 1e-9 / 1e-7 = 1];
        # gradient 100 sign(p - y) / max(|y|, eps) / 2 = [-0.5, 5e8].
        {"per_sample": [10.0, 1.0], "cost": 5.5, "gradient": [-0.5, 5e8]},
        id="mape-default-eps",
    ),
    pytest.param(
        "quantile",
        {"predictions": [0, 3], "targets": [1, 1]},
        # Default q 0.5, r = y - p = [1, -2]: [0.5 * 1, -0.5 * -2] = [0.5, 1];
        # gradient [-q, 1 - q] / 2.
        {"per_sample": [0.5, 1.0], "cost": 0.75, "gradient": [-0.25, 0.25]},
        id="quantile-default",
    ),
    pytest.param(
        "pinball",
        {"predictions": [0, 3], "targets": [1, 1], "params": {"quantile": 0.9}},
        # q 0.9: [0.9 * 1, -0.1 * -2] = [0.9, 0.2]; gradient [-0.9, 0.1] / 2.
        {
            "loss": "quantile",
            "per_sample": [0.9, 0.2],
            "cost": 0.55,
            "gradient": [-0.45, 0.05],
        },
        id="pinball-alias-q-0.9",
    ),
    pytest.param(
        "poisson",
        {"predictions": [0, 1], "targets": [1, 2]},
        # Default log_input: exp(p) - y p = [1, e - 2]; gradient (exp(p) - y) / 2.
        {
            "loss": "poisson_nll",
            "per_sample": [1.0, math.e - 2],
            "cost": (math.e - 1) / 2,
            "gradient": [0.0, (math.e - 2) / 2],
        },
        id="poisson-alias-log-input",
    ),
    pytest.param(
        "poisson_nll",
        {"predictions": [1, 2], "targets": [1, 2], "params": {"log_input": False}},
        # Rates, default eps 1e-8: p - y log(p + eps); gradient (1 - y / (p + eps)) / 2.
        {
            "per_sample": [1 - math.log(1 + 1e-8), 2 - 2 * math.log(2 + 1e-8)],
            "cost": (3 - math.log(1 + 1e-8) - 2 * math.log(2 + 1e-8)) / 2,
            "gradient": [(1 - 1 / (1 + 1e-8)) / 2, (1 - 2 / (2 + 1e-8)) / 2],
        },
        id="poisson-rates-default-eps",
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), HAND_COMPUTED)
def test_hand_computed_results(
    client: TestClient, name: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert_result(post_loss(client, name, body), expected)


def test_integers_and_floats_give_the_same_answer(client: TestClient) -> None:
    integers = {**MSE_WEIGHTED_BODY, "mask": [[1, 0], [1, 1]]}
    floats = {
        "predictions": [[1.0, 2.0], [3.0, 4.0]],
        "targets": [[1.0, 1.0], [1.0, 1.0]],
        "sample_weight": [1.0, 3.0],
        "mask": [[1.0, 0.0], [1.0, 1.0]],
    }
    assert post_loss(client, "mse", integers) == post_loss(client, "mse", floats)


def test_integer_beyond_int64_is_read_as_a_float(client: TestClient) -> None:
    # JSON has one number type; 10**30 is 1e30 in float64, (1e30 - 1)^2 = 1e60 in float64.
    result = post_loss(client, "mse", {"predictions": [10**30], "targets": [1]})
    assert_result(result, {"cost": 1e60, "gradient": [2e30]})


# --- include and reduction -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("include", "expected_keys"),
    [
        (["cost"], ALWAYS_KEYS | {"cost"}),
        (["per_sample", "gradient"], ALWAYS_KEYS | {"per_sample", "gradient"}),
        (["gradient"], ALWAYS_KEYS | {"gradient"}),
        ([], ALWAYS_KEYS),
    ],
    ids=["cost-only", "no-cost", "gradient-only", "empty"],
)
def test_include_trims_the_response_but_keeps_the_merge_fields(
    client: TestClient, include: list[str], expected_keys: set[str]
) -> None:
    trimmed = post_loss(client, "mse", {**MSE_WEIGHTED_BODY, "include": include})
    assert set(trimmed) == expected_keys
    assert_result(trimmed, {key: MSE_WEIGHTED_RESULT[key] for key in expected_keys - {"extras"}})
    assert trimmed["extras"] == {}


def test_reduction_is_echoed(client: TestClient) -> None:
    for reduction in ("mean", "sum"):
        result = post_loss(
            client, "mae", {"predictions": [1], "targets": [0], "reduction": reduction}
        )
        assert result["reduction"] == reduction


# --- content types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json; charset=utf-8"},
        {"content-type": "Application/JSON"},
        {},
    ],
    ids=["json-charset", "json-mixed-case", "no-content-type"],
)
def test_json_content_types_and_none_are_accepted(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post(
        "/v1/losses/mse", content=json.dumps(MSE_WEIGHTED_BODY).encode(), headers=headers
    )
    assert response.request.headers.get("content-type") == headers.get("content-type")
    assert_result(ok_result(response), MSE_WEIGHTED_RESULT)


def test_nan_in_the_body_is_a_422_not_a_400(client: TestClient) -> None:
    response = client.post(
        "/v1/losses/mse",
        content=b'{"predictions":[1,NaN],"targets":[1,2]}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "predictions", 1]


# --- health and readiness --------------------------------------------------------------------


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_readyz_after_warm_up(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_readiness_waits_for_warm_up_while_requests_are_served() -> None:
    release = threading.Event()

    def blocked_warm_up() -> int:
        release.wait(timeout=60)  # the timeout only guards against a hung test run
        return 0

    app = create_app(warm=blocked_warm_up)
    with TestClient(app, raise_server_exceptions=False) as early_client:
        try:
            assert early_client.get("/readyz").status_code == 503
            assert early_client.get("/healthz").status_code == 200
            # "A request that arrives first is still served correctly."
            early = ok_result(early_client.post("/v1/losses/mse", json=MSE_WEIGHTED_BODY))
            assert_result(early, MSE_WEIGHTED_RESULT)
            assert not app.state.readiness.done.is_set()
            assert early_client.get("/readyz").status_code == 503
        finally:
            release.set()
        assert app.state.readiness.done.wait(timeout=30)
        response = early_client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["status"] == "ready"


def test_failed_warm_up_stays_not_ready_and_hides_the_exception() -> None:
    def failing_warm_up() -> int:
        raise RuntimeError("secret-cache-path /var/kernels is corrupt")

    app = create_app(warm=failing_warm_up)
    with TestClient(app, raise_server_exceptions=False) as failed_client:
        assert app.state.readiness.done.wait(timeout=30)
        response = failed_client.get("/readyz")
        assert response.status_code == 503
        for internal in ("secret-cache-path", "/var/kernels", "RuntimeError", "Traceback"):
            assert internal not in response.text
        assert failed_client.get("/healthz").status_code == 200
        still_served = ok_result(failed_client.post("/v1/losses/mse", json=MSE_WEIGHTED_BODY))
        assert_result(still_served, MSE_WEIGHTED_RESULT)
