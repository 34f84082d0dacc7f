"""The regression losses through POST /v1/losses/{name}, checked against API.md: results computed
by hand, integers and floats, ``include`` and ``reduction``, and the accepted content types.

Expected numbers are derived by hand from API.md's conventions (element weight
w_e = sample_weight[i] * mask_e; per_sample[i] = the sample's mean without its own weight;
cost = sum / weight_sum under "mean"; gradient = d cost / d predictions) and LOSSES.md's
formulas; each case says how.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from tests.api.examples import (
    ALWAYS_KEYS,
    MSE_WEIGHTED_BODY,
    MSE_WEIGHTED_RESULT,
)
from tests.api.helpers import (
    assert_result,
    ok_result,
    post_loss,
)

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
