"""Every error of API.md as RFC 9457 problem+json: malformed JSON (400), unknown losses and
routes (404, 405 with ``Allow``), other media types (415) and the body and element limits (413).
The 422s are in test_errors_422.py; no input may produce a 500 or leak Python internals
(test_junk.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.app import create_app
from service.ops.settings import Settings
from tests.api.helpers import (
    assert_problem,
    post,
)

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
