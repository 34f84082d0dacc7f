"""Every 422 of API.md about a request's values, as RFC 9457 problem+json: ``errors:
[{loc, msg}]`` naming the field and the index, for params out of range or of the wrong type,
sample weights and masks, domains, non-finite inputs and non-finite results. Structure and
shapes are in test_errors_422_structure.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from tests.api.helpers import (
    assert_names_the_problem,
    assert_problem,
    post,
)

# --- 422 -------------------------------------------------------------------------------------

PAIR = {"predictions": [[1, 2], [3, 4]], "targets": [[1, 2], [3, 4]]}
#: (loss, body, loc of the first error, fragments its msg must contain)
INVALID = [
    # params out of range or of the wrong type
    pytest.param(
        "huber",
        {"predictions": [1], "targets": [1], "params": {"delta": 0}},
        ["body", "params", "delta"],
        ["delta", "greater than 0"],
        id="huber-delta-zero",
    ),
    pytest.param(
        "huber",
        {"predictions": [1], "targets": [1], "params": {"delta": -1.5}},
        ["body", "params", "delta"],
        ["delta", "-1.5"],
        id="huber-delta-negative",
    ),
    pytest.param(
        "quantile",
        {"predictions": [1], "targets": [1], "params": {"quantile": 0}},
        ["body", "params", "quantile"],
        ["quantile", "greater than 0"],
        id="quantile-zero",
    ),
    pytest.param(
        "quantile",
        {"predictions": [1], "targets": [1], "params": {"quantile": 1}},
        ["body", "params", "quantile"],
        ["quantile", "less than 1"],
        id="quantile-one",
    ),
    pytest.param(
        "quantile",
        {"predictions": [1], "targets": [1], "params": {"quantile": 1.5}},
        ["body", "params", "quantile"],
        ["quantile", "1.5"],
        id="quantile-above-one",
    ),
    pytest.param(
        "smooth_l1",
        {"predictions": [1], "targets": [1], "params": {"beta": -0.1}},
        ["body", "params", "beta"],
        ["beta", "-0.1"],
        id="smooth-l1-beta-negative",
    ),
    pytest.param(
        "mape",
        {"predictions": [1], "targets": [1], "params": {"eps": 0}},
        ["body", "params", "eps"],
        ["eps"],
        id="mape-eps-zero",
    ),
    pytest.param(
        "huber",
        {"predictions": [1], "targets": [1], "params": {"delta": "1.0"}},
        ["body", "params", "delta"],
        ["delta", "number", "'1.0'"],
        id="string-for-float-param",
    ),
    pytest.param(
        "huber",
        {"predictions": [1], "targets": [1], "params": {"delta": True}},
        ["body", "params", "delta"],
        ["delta", "number"],
        id="boolean-for-float-param",
    ),
    pytest.param(
        "poisson_nll",
        {"predictions": [1], "targets": [1], "params": {"log_input": "yes"}},
        ["body", "params", "log_input"],
        ["log_input", "boolean"],
        id="string-for-boolean-param",
    ),
    pytest.param(
        "huber",
        b'{"predictions":[1],"targets":[1],"params":{"delta":NaN}}',
        ["body", "params", "delta"],
        ["delta", "finite"],
        id="nan-param",
    ),
    pytest.param(
        "mse",
        {"predictions": [1], "targets": [1], "params": [1]},
        ["body", "params"],
        ["params"],
        id="params-not-an-object",
    ),
    # sample_weight and mask
    pytest.param(
        "mse",
        {**PAIR, "sample_weight": [1, -2]},
        ["body", "sample_weight", 1],
        ["sample_weight[1]", "-2", "negative"],
        id="negative-sample-weight",
    ),
    pytest.param(
        "mse",
        {**PAIR, "sample_weight": [1, 1, 1]},
        ["body", "sample_weight"],
        ["sample_weight", "(3,)", "(2,)"],
        id="sample-weight-too-long",
    ),
    pytest.param(
        "mse",
        {**PAIR, "sample_weight": [[1], [1]]},
        ["body", "sample_weight"],
        ["sample_weight", "(2, 1)", "(2,)"],
        id="sample-weight-2d",
    ),
    pytest.param(
        "mse",
        {**PAIR, "sample_weight": 1},
        ["body", "sample_weight"],
        ["sample_weight", "array"],
        id="sample-weight-scalar",
    ),
    pytest.param(
        "mse",
        {**PAIR, "mask": [1, 1]},
        ["body", "mask"],
        ["mask", "(2,)", "(2, 2)"],
        id="mask-wrong-shape",
    ),
    pytest.param(
        "mse",
        {**PAIR, "mask": [[1, 1.5], [1, 1]]},
        ["body", "mask", 0, 1],
        ["mask[0][1]", "1.5", "[0, 1]"],
        id="mask-above-one",
    ),
    pytest.param(
        "mse",
        {**PAIR, "mask": [[1, 1], [-0.5, 1]]},
        ["body", "mask", 1, 0],
        ["mask[1][0]", "-0.5", "[0, 1]"],
        id="mask-negative",
    ),
    # domains
    pytest.param(
        "msle",
        {"predictions": [[1, 2], [-1, 0]], "targets": [[1, 2], [3, 4]]},
        ["body", "predictions", 1, 0],
        ["predictions[1][0]", "-1", "msle"],
        id="msle-prediction-minus-one",
    ),
    pytest.param(
        "msle",
        {"predictions": [[1, 2], [3, 4]], "targets": [[1, -2.5], [3, 4]]},
        ["body", "targets", 0, 1],
        ["targets[0][1]", "-2.5"],
        id="msle-target-below-minus-one",
    ),
    pytest.param(
        "poisson_nll",
        {"predictions": [[1, 2], [3, 4]], "targets": [[1, 2], [-1, 4]]},
        ["body", "targets", 1, 0],
        ["targets[1][0]", "-1", ">= 0"],
        id="poisson-negative-target",
    ),
    pytest.param(
        "poisson_nll",
        {
            "predictions": [[1, -2], [3, 4]],
            "targets": [[1, 2], [3, 4]],
            "params": {"log_input": False},
        },
        ["body", "predictions", 0, 1],
        ["predictions[0][1]", "-2", ">= 0"],
        id="poisson-negative-rate",
    ),
    # non-finite results
    pytest.param(
        "mse",
        {"predictions": [[1, 2], [1e200, 0]], "targets": [[0, 0], [0, 0]]},
        ["body", "predictions", 1],
        ["sample 1"],
        id="mse-overflow",
    ),
    pytest.param(
        "poisson_nll",
        {"predictions": [[0, 1], [1000, 0]], "targets": [[0, 0], [0, 0]]},
        ["body", "predictions", 1],
        ["sample 1"],
        id="poisson-exp-overflow",
    ),
    pytest.param(
        "mse",
        {"predictions": [1e150], "targets": [0], "sample_weight": [1e300], "reduction": "sum"},
        ["body", "predictions", 0],
        ["sample 0"],
        id="weighted-gradient-overflow",
    ),
    pytest.param(
        "mse",
        {"predictions": [1e154, 1e154], "targets": [0, 0]},
        ["body", "predictions"],
        ["overflow"],
        id="sum-overflow",
    ),
    pytest.param(
        "huber",
        # 3e8 x 8.7e299 = 2.61e308 > float64 max 1.797e308 (2e8 would give 1.74e308: finite)
        {"predictions": [[0.0]], "targets": [[8.7e299]], "sample_weight": [3e8]},
        ["body", "predictions"],
        ["overflow"],
        id="weighted-sum-overflow",
    ),
]


@pytest.mark.parametrize(("loss", "body", "loc", "fragments"), INVALID)
def test_invalid_request_is_422_naming_the_problem(
    client: TestClient,
    loss: str,
    body: dict[str, Any] | bytes,
    loc: list[str | int],
    fragments: list[str],
) -> None:
    assert_names_the_problem(post(client, loss, body), loc, fragments, in_detail=True)


NON_FINITE_TOKENS = [
    pytest.param("NaN", "NaN", id="NaN"),
    pytest.param("Infinity", "Infinity", id="Infinity"),
    pytest.param("-Infinity", "-Infinity", id="minus-Infinity"),
    pytest.param("1e400", "Infinity", id="1e400"),
    pytest.param("-1e400", "-Infinity", id="minus-1e400"),
]
#: field -> (its value with T at the first bad entries, loc of the first one, text naming it)
NON_FINITE_FIELDS = [
    pytest.param("predictions", "[[1,2],[T,T]]", [1, 0], "predictions[1][0]", id="predictions"),
    pytest.param("targets", "[[1,T],[3,T]]", [0, 1], "targets[0][1]", id="targets"),
    pytest.param("sample_weight", "[1,T]", [1], "sample_weight[1]", id="sample_weight"),
    pytest.param("mask", "[[1,1],[T,1]]", [1, 0], "mask[1][0]", id="mask"),
]
FINITE_FIELDS = {
    "predictions": "[[1,2],[3,4]]",
    "targets": "[[1,2],[3,4]]",
    "sample_weight": "[1,1]",
    "mask": "[[1,1],[1,1]]",
}


@pytest.mark.parametrize(("token", "kind"), NON_FINITE_TOKENS)
@pytest.mark.parametrize(("field", "value", "index", "named"), NON_FINITE_FIELDS)
def test_non_finite_input_is_422_naming_field_and_first_index(
    client: TestClient,
    token: str,
    kind: str,
    field: str,
    value: str,
    index: list[int],
    named: str,
) -> None:
    fields = {**FINITE_FIELDS, field: value.replace("T", token)}
    body = "{" + ",".join(f'"{key}":{text}' for key, text in fields.items()) + "}"
    problem = assert_problem(post(client, "mse", body.encode()), 422)
    first = problem["errors"][0]
    assert first["loc"] == ["body", field, *index]
    assert named in first["msg"]
    assert kind in first["msg"]


def test_non_finite_input_is_named_even_beside_a_huge_integer(client: TestClient) -> None:
    # 10**30 is accepted as 1e30 in a standard body (test_regression_values.py); a NaN elsewhere
    # in the same body must still be the error reported, naming its field and index (API.md).
    body = b'{"predictions":[[1,2],[3,1000000000000000000000000000000]],"targets":[[1,2],[3,NaN]]}'
    problem = assert_problem(post(client, "mse", body), 422)
    assert problem["errors"][0]["loc"] == ["body", "targets", 1, 1]
    assert "NaN" in problem["errors"][0]["msg"]
