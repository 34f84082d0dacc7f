"""Talking to the real ASGI app the way API.md describes it: posting a loss request, reading a 200
strictly (no NaN or Infinity), checking a problem+json error, and API.md's element grid, element
weights and links (sigmoid, softmax) as the API tests compute their expected numbers.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY, LossSpec

# ---- responses -------------------------------------------------------------------------------


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


def assert_finite(result: dict[str, Any]) -> None:
    """Every number of a 200 is finite (float() turns orjson's null for NaN into NaN)."""
    values = [result[key] for key in ("cost", "per_sample", "gradient", "sum", "weight_sum")]
    for value in [*values, *result["extras"].values()]:
        if isinstance(value, str):
            continue  # the custom loss reports its expression and derivative as text
        assert np.isfinite(np.asarray(value, dtype=float)).all(), result


def finite_numbers(result: dict[str, Any]) -> None:
    """Every number of a 200 is finite (a null, which is how orjson writes NaN, fails too)."""
    for key in ("cost", "per_sample", "gradient", "sum", "weight_sum"):
        assert np.isfinite(np.asarray(result[key], dtype=float)).all(), (key, result[key])


# ---- errors (RFC 9457 problem+json) ---------------------------------------------------------

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


def assert_names_the_problem(
    response: httpx2.Response,
    loc: list[str | int],
    fragments: list[str],
    *,
    in_detail: bool = False,
) -> dict[str, Any]:
    """A 422 whose first error is at ``loc`` and whose message holds every one of
    ``fragments`` (and ``detail`` too, with ``in_detail``); returns the problem."""
    problem = assert_problem(response, 422)
    first = problem["errors"][0]
    assert first["loc"] == loc, first
    for fragment in fragments:
        assert fragment in first["msg"], f"{fragment!r} not in {first['msg']!r}"
        if in_detail:
            assert fragment in problem["detail"]
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


# ---- API.md's conventions -----------------------------------------------------------------------


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
    LOSSES.md in tests/api/test_catalogue.py); required keys have none."""
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


# ---- classification ----------------------------------------------------------------------------

CLASSIFICATION = [
    name for name, spec in REGISTRY.items() if spec.family in ("binary", "categorical")
]
#: Losses with from_logits: predictions are probabilities unless it is true.
PROBABILISTIC = [
    name for name in CLASSIFICATION if "from_logits" in REGISTRY[name].params.model_fields
]


def spec_params(names: list[str]) -> list[Any]:
    return [pytest.param(REGISTRY[name], id=name) for name in names]
