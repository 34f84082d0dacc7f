"""Every error of API.md as RFC 9457 problem+json: status, type/title/status/detail and, for
422, ``errors: [{loc, msg}]`` naming the field, the index and the shapes involved.

No input may produce a 500 or leak Python internals.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import service.losses  # noqa: F401  (registers every loss)
from service.app import create_app
from service.losses.registry import REGISTRY
from service.ops.settings import Settings

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Strings that would mean a traceback, a module path or an exception type reached the client.
INTERNALS = (
    "Traceback",
    'File "',
    "site-packages",
    "/work/",
    ".py",
    "numpy",
    "numba",
    "pydantic",
    "orjson",
    "Exception",
    "RuntimeError",
    "ValueError",
    "TypeError",
    "KeyError",
    "RecursionError",
)


def assert_problem(response: httpx2.Response, status: int) -> dict[str, Any]:
    """The response is a problem+json of ``status`` with no internals; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    for internal in INTERNALS:
        assert internal not in response.text, f"{internal!r} leaked: {response.text}"
    problem = response.json()
    assert problem["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(problem[key], str)
        assert problem[key]
    if status == 422:
        assert problem["errors"], "a 422 lists its errors"
        for item in problem["errors"]:
            assert isinstance(item["loc"], list)
            assert isinstance(item["msg"], str)
            assert item["msg"]
    return problem


def encode(body: dict[str, Any] | bytes) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def post(
    client: TestClient,
    loss: str,
    body: dict[str, Any] | bytes,
    content_type: str = "application/json",
) -> httpx2.Response:
    return client.post(
        f"/v1/losses/{loss}", content=encode(body), headers={"content-type": content_type}
    )


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


# --- 400 malformed JSON ----------------------------------------------------------------------

MALFORMED = [
    pytest.param(b'{"predictions":[1,2],"targets":[1,2', id="truncated"),
    pytest.param(b'{"predictions":[1,2],"targets":[1,2],}', id="trailing-comma"),
    pytest.param(b"", id="empty"),
    pytest.param(b" \n\t", id="whitespace-only"),
    pytest.param(b'{"predictions":[1],"targets":[1]} x', id="content-after-document"),
    pytest.param(b"predictions=1&targets=1", id="form-encoded-text"),
    pytest.param(b"{'predictions': [1], 'targets': [1]}", id="single-quotes"),
    pytest.param(b'{"predictions":[1],"targets":[1],"\xff":1}', id="invalid-utf8"),
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_json_is_400(client: TestClient, body: bytes) -> None:
    problem = assert_problem(post(client, "mse", body), 400)
    assert "JSON" in problem["title"] or "JSON" in problem["detail"]


# --- 404 and 405 -----------------------------------------------------------------------------


def test_unknown_loss_is_404_listing_close_matches(client: TestClient) -> None:
    problem = assert_problem(post(client, "msse", {"predictions": [1], "targets": [1]}), 404)
    assert "'mse'" in problem["detail"]
    assert "msse" in problem["detail"]


def test_unknown_loss_without_close_match_is_404(client: TestClient) -> None:
    problem = assert_problem(post(client, "zzqqxx", {"predictions": [1], "targets": [1]}), 404)
    assert "zzqqxx" in problem["detail"]
    assert "did you mean" not in problem["detail"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/no/such/route", 404),
        ("POST", "/v1/nothing", 404),
        ("PUT", "/v1/losses/mse", 405),
        ("DELETE", "/v1/losses", 405),
        ("POST", "/healthz", 405),
    ],
)
def test_routing_errors_are_problem_json(
    client: TestClient, method: str, path: str, status: int
) -> None:
    assert_problem(client.request(method, path), status)


def test_405_allow_header_lists_every_method_of_the_resource(client: TestClient) -> None:
    # RFC 9110 15.5.6: a 405 carries Allow with the resource's supported methods;
    # /v1/losses/mse answers GET (catalogue entry) and POST (compute).
    response = client.put("/v1/losses/mse")
    assert_problem(response, 405)
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed


# --- 415 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data"],
)
def test_non_json_content_type_is_415(client: TestClient, content_type: str) -> None:
    body = {"predictions": [1], "targets": [1]}  # valid JSON: only the media type is wrong
    problem = assert_problem(post(client, "mse", body, content_type=content_type), 415)
    assert content_type in problem["detail"]


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
    problem = assert_problem(post(client, loss, body), 422)
    first = problem["errors"][0]
    assert first["loc"] == loc
    for fragment in fragments:
        assert fragment in first["msg"], f"{fragment!r} not in {first['msg']!r}"
        assert fragment in problem["detail"]


def test_every_structural_problem_is_listed(client: TestClient) -> None:
    problem = assert_problem(post(client, "mse", {}), 422)
    locs = [item["loc"] for item in problem["errors"]]
    assert ["body", "predictions"] in locs
    assert ["body", "targets"] in locs


# Non-finite input: every token JSON lacks (plus a literal that overflows float64), in every
# array field, at a known first index. Sent as raw bytes.
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
    # 10**30 is accepted as 1e30 in a standard body (test_api); a NaN elsewhere in the same
    # body must still be the error reported, naming its field and index (API.md).
    body = b'{"predictions":[[1,2],[3,1000000000000000000000000000000]],"targets":[[1,2],[3,NaN]]}'
    problem = assert_problem(post(client, "mse", body), 422)
    assert problem["errors"][0]["loc"] == ["body", "targets", 1, 1]
    assert "NaN" in problem["errors"][0]["msg"]


def test_nesting_beyond_the_parser_is_a_4xx(client: TestClient) -> None:
    body = f'{{"predictions":{nested(2000)},"targets":[1]}}'.encode()
    response = post(client, "mse", body)
    assert response.status_code in (400, 422), response.text
    problem = assert_problem(response, response.status_code)
    assert re.search(r"dept|deep|nest", problem["detail"])


# --- 413 -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_body_client() -> Iterator[TestClient]:
    app = create_app(settings=Settings(max_body_bytes=1000), warm=lambda: 0)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def few_elements_client() -> Iterator[TestClient]:
    app = create_app(settings=Settings(max_elements=10), warm=lambda: 0)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def padded_body(size: int) -> bytes:
    """A valid mse request, padded with JSON whitespace to exactly ``size`` bytes."""
    body = b'{"predictions":[1,2],"targets":[1,3]}'
    return body + b" " * (size - len(body))


def test_body_at_the_limit_is_served(small_body_client: TestClient) -> None:
    response = post(small_body_client, "mse", padded_body(1000))
    assert response.status_code == 200
    assert response.json()["cost"] == 0.5


def test_body_over_the_limit_is_413(small_body_client: TestClient) -> None:
    problem = assert_problem(post(small_body_client, "mse", padded_body(2000)), 413)
    assert "1000" in problem["detail"]


def test_streamed_body_over_the_limit_is_413(small_body_client: TestClient) -> None:
    body = padded_body(2000)
    chunks = iter([body[:800], body[800:1600], body[1600:]])  # no Content-Length: chunked
    response = small_body_client.post(
        "/v1/losses/mse", content=chunks, headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


def test_elements_at_the_limit_are_served(few_elements_client: TestClient) -> None:
    body = {"predictions": [1, 2, 3, 4, 5], "targets": [1, 2, 3, 4, 5]}  # 10 elements
    assert post(few_elements_client, "mse", body).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"predictions": [1] * 6, "targets": [1] * 6}, id="predictions-and-targets"),
        pytest.param(
            {"predictions": [1] * 4, "targets": [1] * 4, "sample_weight": [1] * 4},
            id="sample-weight-counted",
        ),
        pytest.param(
            {"predictions": [[1, 1]] * 2, "targets": [[1, 1]] * 2, "mask": [[1, 1]] * 2},
            id="mask-counted",
        ),
    ],
)
def test_elements_over_the_limit_are_413(
    few_elements_client: TestClient, body: dict[str, Any]
) -> None:
    problem = assert_problem(post(few_elements_client, "mse", body), 413)
    assert "10" in problem["detail"]


# --- junk never gets a 5xx -------------------------------------------------------------------

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities too: json.dumps writes them as NaN / Infinity tokens
    | st.text(max_size=6)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
NUMBER_ARRAYS = st.lists(st.floats(), min_size=1, max_size=4) | st.lists(
    st.lists(st.floats() | st.integers(-3, 3), min_size=2, max_size=2), min_size=1, max_size=3
)
#: Every params key of every loss (LOSSES.md), and one no loss has.
PARAM_KEYS = sorted({key for spec in REGISTRY.values() for key in spec.params.model_fields})
#: Values near the edges of the classification params' ranges, and lists for pos_weight and
#: class_weight (lengths 1 to 4, negative, huge).
EDGE_NUMBERS = st.sampled_from(
    [0, 1, 2, -1, 0.5, 1e-7, 1e-17, 0.49999, 0.999999, -100, 255, 1e308, -1e308, 5e-324, 1.5]
)
#: The string choices of LOSSES.md's params (overlap mode, box variant and format), and one
#: that is none of them.
OVERLAP_MODES = ["binary", "multilabel", "multiclass"]
BOX_CHOICES = ["iou", "giou", "diou", "ciou", "xyxy", "xywh", "cxcywh"]
PARAM_CHOICES = st.sampled_from([*OVERLAP_MODES, *BOX_CHOICES, "Binary", "xyxy."])
PARAM_VALUES = (
    JSON_LEAVES | EDGE_NUMBERS | PARAM_CHOICES | st.lists(EDGE_NUMBERS | JSON_LEAVES, max_size=4)
)
PARAMS = st.dictionaries(st.sampled_from([*PARAM_KEYS, "unknown"]), PARAM_VALUES)
FIELD_VALUES = {
    "predictions": NUMBER_ARRAYS | JSON_VALUES,
    "targets": NUMBER_ARRAYS | JSON_VALUES,
    "sample_weight": NUMBER_ARRAYS | JSON_VALUES,
    "mask": NUMBER_ARRAYS | JSON_VALUES,
    "reduction": st.sampled_from(["mean", "sum"]) | JSON_VALUES,
    "include": st.lists(st.sampled_from(["cost", "per_sample", "gradient"])) | JSON_VALUES,
    "params": PARAMS | JSON_VALUES,
    "unexpected": JSON_VALUES,
}
REQUESTS = st.fixed_dictionaries({}, optional=FIELD_VALUES) | JSON_VALUES


@given(loss=st.sampled_from(sorted(REGISTRY)), document=REQUESTS)
def test_junk_json_never_gets_a_5xx(client: TestClient, loss: str, document: Any) -> None:
    response = post(client, loss, json.dumps(document).encode())
    assert response.status_code < 500, response.text
    if response.status_code == 200:

        def refuse(token: str) -> None:
            raise AssertionError(f"a 200 carries {token}")

        json.loads(response.text, parse_constant=refuse)
    else:
        assert_problem(response, response.status_code)


CLASSIFICATION_LOSSES = sorted(
    name for name, spec in REGISTRY.items() if spec.family in ("binary", "categorical")
)
#: Probabilities (exact 0 and 1, within eps of them, a subnormal), or logits up to +-1e4.
PROBABILITIES = st.sampled_from([0, 1, 0.5, 1e-9, 1 - 1e-9, 5e-324]) | st.floats(0, 1)
LOGITS = st.sampled_from([1e4, -1e4, 0, 710, -745]) | st.floats(-50, 50)
WEIGHTS = st.sampled_from([0, 1, 0.5, 2, 1e-300, 1e308, -1])
MASK_VALUES = st.sampled_from([0, 1, 0.5, 1e-300, 1.5, -1])
#: One-hot and soft entries, both hinge conventions, labels in and out of range, ignore_index.
LABELS = st.sampled_from([0, 1, 2, 3, -1, 0.5, -100, 255, 1.5])


@st.composite
def classification_requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A binary or categorical loss and a request for it: well-formed arrays in the layouts
    these losses take (N, C, d...), targets of the predictions' shape or without the class
    axis, optional weights and a mask, and params that are mostly the loss's own keys with
    edge values (or none), so that requests reach the contracts, domains and kernels."""
    loss = draw(st.sampled_from(CLASSIFICATION_LOSSES))
    own_keys = sorted(REGISTRY[loss].params.model_fields) or ["unknown"]
    plausible = EDGE_NUMBERS | st.booleans() | st.none() | st.lists(EDGE_NUMBERS, max_size=4)
    own = st.dictionaries(st.sampled_from(own_keys), plausible, max_size=2)
    params = st.just({}) | own | PARAMS
    shapes = REGISTRY[loss].contract.shapes  # the catalogue's layouts, to aim mostly right
    n, classes = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    only_2d = shapes["predictions"] == "(N, C)" and draw(st.integers(0, 3))
    shape = (n, classes, *(() if only_2d else draw(st.sampled_from([(), (2,), (2, 1)]))))
    grid = shape[:1] + shape[2:]
    dense = shapes["targets"].startswith("same shape")
    target_shape = (shape if dense else grid) if draw(st.integers(0, 3)) else (grid, shape)[dense]
    scores = draw(st.sampled_from([PROBABILITIES, LOGITS]))
    document: dict[str, Any] = {
        "predictions": draw(arrays(np.float64, shape, elements=scores)).tolist(),
        "targets": draw(arrays(np.float64, target_shape, elements=LABELS)).tolist(),
        "params": draw(params),
    }
    if draw(st.booleans()):
        document["sample_weight"] = draw(arrays(np.float64, (n,), elements=WEIGHTS)).tolist()
    if draw(st.booleans()):
        mask_shape = grid if draw(st.integers(0, 3)) else shape
        document["mask"] = draw(arrays(np.float64, mask_shape, elements=MASK_VALUES)).tolist()
    if draw(st.booleans()):
        document["reduction"] = "sum"
    return loss, document


@given(request=classification_requests())
def test_classification_params_junk_never_gets_a_5xx(
    client: TestClient, request: tuple[str, dict[str, Any]]
) -> None:
    loss, document = request
    response = post(client, loss, json.dumps(document).encode())
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:

        def refuse(token: str) -> None:
            raise AssertionError(f"a 200 carries {token}")

        result = json.loads(response.text, parse_constant=refuse)
        assert np.shape(result["gradient"]) == np.shape(document["predictions"])
        for key in ("cost", "per_sample", "gradient", "sum", "weight_sum"):
            # float() turns a null (how orjson writes NaN) into NaN, which fails here.
            assert np.isfinite(np.asarray(result[key], dtype=float)).all(), key
    else:
        assert_problem(response, 422)
