"""Every 422 of API.md about a request's structure, as RFC 9457 problem+json: ``errors:
[{loc, msg}]`` naming the field, the index and the shapes involved, for shapes, missing and
mistyped fields, documents that are not request objects and nesting. Values (params out of
range, weights and masks, domains, non-finite inputs and results) are in
test_errors_422_values.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from tests.api.helpers import (
    assert_names_the_problem,
    assert_problem,
    post,
)


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


# --- 422 -------------------------------------------------------------------------------------

PAIR = {"predictions": [[1, 2], [3, 4]], "targets": [[1, 2], [3, 4]]}
#: (loss, body, loc of the first error, fragments its msg must contain)
INVALID = [
    # shapes
    pytest.param(
        "mse",
        {"predictions": [[1, 2], [3, 4]], "targets": [[1, 2, 3], [4, 5, 6]]},
        ["body", "targets"],
        ["targets", "(2, 3)", "predictions", "(2, 2)"],
        id="shape-mismatch",
    ),
    pytest.param(
        "mse",
        {"predictions": [1, 2], "targets": [[1, 2]]},
        ["body", "targets"],
        ["(1, 2)", "(2,)"],
        id="shape-mismatch-rank",
    ),
    pytest.param(
        "mse",
        {"predictions": [[1, 2], [3]], "targets": [[1, 2], [3, 4]]},
        ["body", "predictions", 1],
        ["predictions[1]", "ragged"],
        id="ragged-length",
    ),
    pytest.param(
        "mse",
        {"predictions": [[1, 2], [3, 4]], "targets": [[1, 2], [3, [4]]]},
        ["body", "targets", 1, 1],
        ["targets[1][1]", "ragged"],
        id="ragged-depth",
    ),
    pytest.param(
        "mse",
        {"predictions": [[1, 2], 3], "targets": [[1, 2], [3, 4]]},
        ["body", "predictions", 1],
        ["predictions[1]", "ragged"],
        id="ragged-number-beside-array",
    ),
    pytest.param(
        "mse",
        {"predictions": [], "targets": []},
        ["body", "predictions"],
        ["predictions", "at least one sample"],
        id="empty-batch",
    ),
    pytest.param(
        "mse",
        {"predictions": [[]], "targets": [[]]},
        ["body", "predictions"],
        ["predictions", "(1, 0)"],
        id="zero-size-trailing-axis",
    ),
    pytest.param(
        "mse",
        {"predictions": 3, "targets": 3},
        ["body", "predictions"],
        ["predictions", "array", "number"],
        id="scalar-predictions",
    ),
    # structure
    pytest.param(
        "mse",
        {"targets": [1]},
        ["body", "predictions"],
        ["predictions", "required"],
        id="missing-predictions",
    ),
    pytest.param(
        "mse",
        {"predictions": [1]},
        ["body", "targets"],
        ["targets", "required"],
        id="missing-targets",
    ),
    pytest.param(
        "mse",
        {"predictions": [1, "2"], "targets": [1, 2]},
        ["body", "predictions", 1],
        ["predictions[1]", "string"],
        id="string-in-array",
    ),
    pytest.param(
        "mse",
        {"predictions": [[1, 2], [True, 4]], "targets": [[1, 2], [3, 4]]},
        ["body", "predictions", 1, 0],
        ["predictions[1][0]", "boolean"],
        id="boolean-in-array",
    ),
    pytest.param(
        "mse",
        {"predictions": [True, False], "targets": [1, 0]},
        ["body", "predictions", 0],
        ["predictions[0]", "boolean"],
        id="booleans-only-array",
    ),
    pytest.param(
        "mse",
        {"predictions": [1, 2], "targets": [1, None]},
        ["body", "targets", 1],
        ["targets[1]", "null"],
        id="null-in-array",
    ),
    pytest.param(
        "mse",
        {"predictions": {"values": [1, 2]}, "targets": [1, 2]},
        ["body", "predictions"],
        ["predictions", "object"],
        id="object-instead-of-array",
    ),
    pytest.param(
        "mse",
        {"predictions": None, "targets": [1]},
        ["body", "predictions"],
        ["predictions", "null"],
        id="null-predictions",
    ),
    pytest.param(
        "mse",
        {"predictions": [1, 2], "targets": [1, 2], "sample_weight": ["1", 1]},
        ["body", "sample_weight", 0],
        ["sample_weight[0]", "string"],
        id="string-in-sample-weight",
    ),
    pytest.param(
        "huber",
        {"predictions": [1], "targets": [1], "params": {"delt": 1.0}},
        ["body", "params", "delt"],
        ["delt", "allowed", "delta"],
        id="unknown-param",
    ),
    pytest.param(
        "poisson_nll",
        {"predictions": [1], "targets": [1], "params": {"log_inputs": True}},
        ["body", "params", "log_inputs"],
        ["log_inputs", "allowed", "log_input", "eps"],
        id="unknown-param-lists-all-allowed",
    ),
    pytest.param(
        "mse",
        {"predictions": [1], "targets": [1], "params": {"delta": 1.0}},
        ["body", "params", "delta"],
        ["delta"],
        id="param-of-a-loss-without-params",
    ),
    pytest.param(
        "mse",
        {"predictions": [1], "targets": [1], "weights": [1]},
        ["body", "weights"],
        ["weights", "allowed", "sample_weight"],
        id="unknown-top-level-key",
    ),
    pytest.param(
        "mse",
        {"predictions": [1], "targets": [1], "reduction": "avg"},
        ["body", "reduction"],
        ["reduction", "'mean'", "'sum'", "avg"],
        id="bad-reduction",
    ),
    pytest.param(
        "mse",
        {"predictions": [1], "targets": [1], "include": ["cost", "grad"]},
        ["body", "include", 1],
        ["include", "grad", "'gradient'"],
        id="bad-include-entry",
    ),
    pytest.param(
        "mse",
        {"predictions": [1], "targets": [1], "include": "cost"},
        ["body", "include"],
        ["include", "list"],
        id="include-not-a-list",
    ),
    # documents that are not request objects
    pytest.param("mse", b"[1, 2]", ["body"], ["object", "array"], id="top-level-array"),
    pytest.param("mse", b'"x"', ["body"], ["object", "string"], id="top-level-string"),
    pytest.param("mse", b"null", ["body"], ["object", "null"], id="top-level-null"),
    pytest.param("mse", b"42", ["body"], ["object", "number"], id="top-level-number"),
    # nesting
    pytest.param(
        "mse",
        f'{{"predictions":{nested(40)},"targets":{nested(40)}}}'.encode(),
        ["body", "predictions", *[0] * 32],
        ["predictions", "32 dimensions"],
        id="nested-40",
    ),
    pytest.param(
        "mse",
        f'{{"predictions":{nested(100)},"targets":[1]}}'.encode(),
        ["body", "predictions", *[0] * 32],
        ["predictions", "32 dimensions"],
        id="nested-100",
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


def test_every_structural_problem_is_listed(client: TestClient) -> None:
    problem = assert_problem(post(client, "mse", {}), 422)
    locs = [item["loc"] for item in problem["errors"]]
    assert ["body", "predictions"] in locs
    assert ["body", "targets"] in locs


# Non-finite input: every token JSON lacks (plus a literal that overflows float64), in every
# array field, at a known first index. Sent as raw bytes.
def test_nesting_beyond_the_parser_is_a_4xx(client: TestClient) -> None:
    body = f'{{"predictions":{nested(2000)},"targets":[1]}}'.encode()
    response = post(client, "mse", body)
    assert response.status_code in (400, 422), response.text
    problem = assert_problem(response, response.status_code)
    assert re.search(r"dept|deep|nest", problem["detail"])
