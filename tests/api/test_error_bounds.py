"""A request with a million mistakes gets a small 422, found early (issue 11, finding 6).

A 422 lists at most ``MAX_LISTED_ERRORS`` problems and counts the rest in ``detail``; objects
with more unknown keys than that are refused in one pass over their keys, before Pydantic would
build an error for each (``params`` with 1M unknown keys took 15 s, +1.5 GB and answered 87 MB).
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.validation.errors import MAX_LISTED_ERRORS

KEYS = 200_000
#: Bodies of 200,000 keys (a few MB of JSON each): make test-fast leaves them out.
SLOW = pytest.mark.slow


def unknown(count: int) -> dict[str, int]:
    return {f"k{i}": i for i in range(count)}


def post(client: TestClient, path: str, body: dict) -> dict:
    response = client.post(
        path, content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert len(response.content) < 20_000, "the answer is small whatever the request"
    return response.json()


def assert_capped(problem: dict, total: int, first_loc: list, first_msg: str) -> None:
    assert len(problem["errors"]) == MAX_LISTED_ERRORS
    assert problem["errors"][0] == {"loc": first_loc, "msg": first_msg}
    assert (
        f"(and {total - 1} more problem(s); errors lists the first {MAX_LISTED_ERRORS})"
        in (problem["detail"])
    )


@SLOW
def test_many_unknown_params(client: TestClient) -> None:
    problem = post(
        client,
        "/v1/losses/huber",
        {"predictions": [1.0], "targets": [2.0], "params": unknown(KEYS)},
    )
    assert_capped(
        problem,
        KEYS,
        ["body", "params", "k0"],
        "unknown parameter 'k0'; allowed: delta",
    )
    assert [item["loc"][-1] for item in problem["errors"]] == [f"k{i}" for i in range(20)]


@SLOW
def test_many_unknown_fields(client: TestClient) -> None:
    body = {"predictions": [1.0], "targets": [2.0], **unknown(KEYS)}
    problem = post(client, "/v1/losses/mse", body)
    allowed = "predictions, targets, sample_weight, mask, reduction, include, params"
    assert_capped(problem, KEYS, ["body", "k0"], f"unknown field 'k0'; allowed: {allowed}")


def test_a_few_unknown_params_are_all_listed_as_before(client: TestClient) -> None:
    problem = post(
        client, "/v1/losses/huber", {"predictions": [1.0], "targets": [2.0], "params": unknown(3)}
    )
    assert [item["loc"] for item in problem["errors"]] == [
        ["body", "params", f"k{i}"] for i in range(3)
    ]
    assert problem["detail"].endswith("(and 2 more problem(s), see errors)")


def test_a_long_include_list_is_refused_at_once(client: TestClient) -> None:
    problem = post(
        client, "/v1/losses/mse", {"predictions": [1.0], "targets": [2.0], "include": ["x"] * 500}
    )
    assert len(problem["errors"]) == 1
    assert problem["errors"][0]["loc"] == ["body", "include"]
    assert "at most 16" in problem["errors"][0]["msg"]


@SLOW
def test_a_huge_list_outside_the_tensors_is_refused_before_it_is_built(client: TestClient) -> None:
    """200,000 one-letter strings would take ~17 MiB of Python objects for 1 MB of JSON: past
    the reader's budget (5 x the body), a 413 that names the field, before anything is built."""
    body = {"predictions": [1.0], "targets": [2.0], "include": ["x"] * KEYS}
    response = client.post(
        "/v1/losses/mse", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["detail"].startswith("include: building this value would take")


NESTED = 2_000  # unknown keys of a params object inside a list: within the reader's budget


@pytest.mark.parametrize("where", ["term", "metric", pytest.param("top", marks=SLOW)])
def test_many_unknown_keys_in_evaluate(client: TestClient, where: str) -> None:
    body: dict = {"predictions": [0.2, 0.8], "targets": [0.0, 1.0], "terms": [{"loss": "mse"}]}
    total = NESTED
    if where == "term":
        body["terms"] = [{"loss": "huber", "params": unknown(NESTED)}]
        loc, msg = (
            ["body", "terms", 0, "params", "k0"],
            "terms[0]: unknown field 'k0'; allowed: delta",
        )
    elif where == "metric":
        body["metrics"] = [{"name": "f1", "params": unknown(NESTED)}]
        loc = ["body", "metrics", 0, "params", "k0"]
        msg = "unknown parameter 'k0' for f1; allowed: threshold, from_logits, average, one_hot"
    else:
        total = KEYS
        body.update(unknown(KEYS))
        loc = ["body", "k0"]
        msg = (
            "unknown field 'k0'; allowed: predictions, targets, sample_weight, mask, terms, "
            "regularization, metrics, reduction, include, state, groups, top_k, offset"
        )
    problem = post(client, "/v1/evaluate", body)
    assert_capped(problem, total, loc, msg)


@SLOW
@pytest.mark.parametrize("field", ["terms", "metrics"])
def test_huge_nested_objects_are_refused_before_they_are_built(
    client: TestClient, field: str
) -> None:
    """A list whose entry holds 200,000 unknown keys would take several times its JSON as
    Python objects: the reader refuses it (413, naming the field) before building it."""
    entry = {"loss": "huber"} if field == "terms" else {"name": "f1"}
    body: dict = {"predictions": [0.2, 0.8], "targets": [0.0, 1.0], "terms": [{"loss": "mse"}]}
    body[field] = [{**entry, "params": unknown(KEYS)}]
    response = client.post(
        "/v1/evaluate", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["detail"].startswith(f"{field}: building this value would take")


def test_many_invalid_values_are_capped(client: TestClient) -> None:
    """Errors Pydantic finds one by one (a list param with every entry wrong) are capped too."""
    body = {
        "predictions": [[0.2, 0.8]],
        "targets": [1],
        "params": {"class_weight": ["x"] * 5000},
    }
    problem = post(client, "/v1/losses/sparse_cce", body)
    assert len(problem["errors"]) == MAX_LISTED_ERRORS
    assert "(and 4999 more problem(s); errors lists the first 20)" in problem["detail"]


@SLOW
def test_many_unknown_parameters_on_v2(client: TestClient) -> None:
    body = {
        "parameters": {"delta": 0.5, **unknown(KEYS)},
        "inputs": [
            {"name": "predictions", "shape": [1], "datatype": "FP64", "data": [1.0]},
            {"name": "targets", "shape": [1], "datatype": "FP64", "data": [2.0]},
        ],
    }
    response = client.post(
        "/v2/models/huber/infer",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text  # /v2 answers 400 with an error member
    assert len(response.content) < 20_000
    problem = response.json()
    assert len(problem["errors"]) == MAX_LISTED_ERRORS
    assert problem["errors"][0] == {
        "loc": ["body", "parameters", "k0"],
        "msg": "unknown parameter 'k0'; allowed: delta",
    }
    assert f"(and {KEYS - 1} more problem(s); errors lists the first 20)" in problem["detail"]


def test_many_inputs_on_v2_are_refused_at_once(client: TestClient) -> None:
    tensor = {"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}
    response = client.post(
        "/v2/models/mse/infer",
        content=json.dumps({"inputs": [tensor] * 100}),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert len(response.json()["errors"]) == 1
