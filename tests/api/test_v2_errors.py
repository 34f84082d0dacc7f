"""/v2 errors through the real ASGI app: every invalid request is a 400 (415 for an unknown
Content-Encoding, 413 over a limit) whose body carries the protocol's ``error`` member beside
the problem+json fields.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.losses.registry import REGISTRY
from service.ops.settings import Settings
from tests.support.oip import (
    HEADER_LENGTH,
    MSE_PREDICTIONS,
    MSE_TARGETS,
    assert_protocol_error,
    binary_body,
    binary_tensor,
    example_request,
    infer,
    mse_request,
    tensor,
)


def test_bad_compressed_data_and_unknown_encoding(client: TestClient) -> None:
    body = json.dumps(mse_request()).encode()
    truncated = gzip.compress(body)[:-12]
    response = infer(client, "mse", truncated, {"Content-Encoding": "gzip"})
    assert_protocol_error(response, 400, "gzip")
    response = infer(client, "mse", b"not deflate", {"Content-Encoding": "deflate"})
    assert_protocol_error(response, 400, "deflate")
    response = infer(client, "mse", body, {"Content-Encoding": "br"})
    assert_protocol_error(response, 415, "'br'")


# ---- every 400 ---------------------------------------------------------------------------


def _nan_binary() -> tuple[bytes, dict[str, str]]:
    entry, raw = binary_tensor("predictions", [[1.0, float("nan")], [3.0, 5.0]], "FP64")
    return binary_body({"inputs": [entry, tensor("targets", MSE_TARGETS)]}, [raw])


def _framing(header_length: str | None, extra: bytes = b"", size: int = 32):
    """An FP64 binary predictions chunk with a chosen length header, trailer and declared size."""
    entry, raw = binary_tensor("predictions", MSE_PREDICTIONS, "FP64")
    entry["parameters"]["binary_data_size"] = size
    encoded = json.dumps({"inputs": [entry, tensor("targets", MSE_TARGETS)]}).encode()
    headers = {} if header_length is None else {HEADER_LENGTH: header_length}
    return encoded + raw + extra, {**headers}, len(encoded)


def _header_length_cases() -> list[tuple[str, bytes, dict[str, str], tuple[str, ...]]]:
    body, _, length = _framing(None)
    return [
        ("header-longer-than-body", body, {HEADER_LENGTH: str(len(body) + 1)}, ("only",)),
        ("header-length-not-a-number", body, {HEADER_LENGTH: "12a"}, ("non-negative integer",)),
        ("binary-without-header", body, {}, ("not valid JSON", HEADER_LENGTH)),
        ("size-without-header", body[:length], {}, ("no Inference-Header-Content-Length",)),
        (
            "size-mismatch",
            _framing(None, size=24)[0],
            {HEADER_LENGTH: str(length)},
            ("binary_data_size 24", "takes 32 bytes"),
        ),
        ("trailing-bytes", body + b"\0\0", {HEADER_LENGTH: str(length)}, ("2 bytes follow",)),
        ("missing-chunk", body[:length], {HEADER_LENGTH: str(length)}, ("missing",)),
        ("malformed-json-header", body, {HEADER_LENGTH: str(length - 1)}, ("not valid JSON",)),
    ]


@pytest.mark.parametrize(
    ("case", "body", "headers", "fragments"),
    _header_length_cases(),
    ids=[case[0] for case in _header_length_cases()],
)
def test_binary_framing_errors(
    client: TestClient, case: str, body: bytes, headers: dict[str, str], fragments: tuple
) -> None:
    assert_protocol_error(infer(client, "mse", body, headers), 400, *fragments)


def _with_input(item: dict[str, Any]) -> dict[str, Any]:
    request = mse_request()
    request["inputs"].append(item)
    return request


BAD_JSON_REQUESTS = {
    "malformed-json": (b'{"inputs": [', ("not valid JSON",)),
    "not-an-object": (b"[1, 2]", ("JSON object",)),
    "no-inputs": ({"inputs": []}, ("inputs",)),
    "unknown-input": (_with_input(tensor("weights", [1.0, 2.0])), ("'weights'", "accepted")),
    "array-param-of-another-loss": (
        _with_input(tensor("class_weight", [1.0, 2.0])),
        ("'class_weight'",),
    ),
    "repeated-input": (_with_input(tensor("targets", MSE_TARGETS)), ("more than once",)),
    "unknown-datatype": (
        {"inputs": [{**tensor("predictions", MSE_PREDICTIONS), "datatype": "BOOL"}]},
        ("datatype", "'FP32'"),
    ),
    "negative-dimension": (
        {"inputs": [{**tensor("predictions", MSE_PREDICTIONS), "shape": [-1, 2]}]},
        ("shape",),
    ),
    "shape-data-count-mismatch": (
        {"inputs": [{**tensor("predictions", [1.0, 2.0, 3.0, 5.0]), "shape": [2, 3]}]},
        ("needs 6 values", "holds 4"),
    ),
    "nested-shape-mismatch": (
        {"inputs": [{**tensor("predictions", MSE_PREDICTIONS), "shape": [4, 1]}]},
        ("nested data has shape [2, 2]",),
    ),
    "ragged-data": (
        {
            "inputs": [
                {"name": "predictions", "shape": [3], "datatype": "FP64", "data": [[1], [2, 3]]}
            ]
        },
        ("ragged",),
    ),
    "no-data": (
        {"inputs": [{"name": "predictions", "shape": [1], "datatype": "FP64"}]},
        ("neither data nor",),
    ),
    "non-integer-int64": (
        _with_input(tensor("sample_weight", [1.5, 2.0], "INT64")),
        ("sample_weight[0] = 1.5 is not an integer",),
    ),
    "nan-json": (
        json.dumps(
            mse_request()
            | {
                "inputs": [
                    tensor("predictions", [[1.0, float("nan")], [3.0, 5.0]]),
                    tensor("targets", MSE_TARGETS),
                ]
            }
        ).encode(),
        ("predictions[0][1] is NaN",),
    ),
    "missing-targets": ({"inputs": [tensor("predictions", MSE_PREDICTIONS)]}, ("'targets'",)),
    "unknown-param": (mse_request(parameters={"delta": 1.0}), ("unknown parameter 'delta'",)),
    "wrong-reduction": (mse_request(parameters={"reduction": "avg"}), ("'avg'",)),
    "binary-output-not-bool": (
        mse_request(parameters={"binary_data_output": "yes"}),
        ("binary_data_output",),
    ),
    "unknown-output": (mse_request(outputs=[{"name": "loss"}]), ("'per_sample'",)),
    "repeated-output": (mse_request(outputs=[{"name": "cost"}, {"name": "cost"}]), ("twice",)),
    "classification-output": (
        mse_request(outputs=[{"name": "cost", "parameters": {"classification": 2}}]),
        ("classification",),
    ),
    "shape-contract": (
        {"inputs": [tensor("predictions", MSE_PREDICTIONS), tensor("targets", [1.0, 2.0])]},
        ("targets has shape (2,) but predictions has (2, 2)",),
    ),
    "unknown-top-level-field": (mse_request(inputz=[]), ("unknown field 'inputz'",)),
}


@pytest.mark.parametrize(
    ("body", "fragments"), list(BAD_JSON_REQUESTS.values()), ids=list(BAD_JSON_REQUESTS)
)
def test_invalid_requests_are_400_with_an_error_member(
    client: TestClient, body: Any, fragments: tuple[str, ...]
) -> None:
    assert_protocol_error(infer(client, "mse", body), 400, *fragments)


def test_nan_in_binary_names_the_input_and_index(client: TestClient) -> None:
    problem = assert_protocol_error(
        infer(client, "mse", *_nan_binary()), 400, "predictions[0][1] is NaN"
    )
    assert problem["errors"][0]["loc"] == ["body", "predictions", 0, 1]


def test_loss_params_are_validated_as_on_v1(client: TestClient) -> None:
    problem = assert_protocol_error(
        infer(client, "huber", mse_request(parameters={"delta": "big"})), 400, "delta"
    )
    assert problem["errors"][0]["loc"] == ["body", "parameters", "delta"]
    spec = REGISTRY["ctc"]
    request = example_request(spec)
    for item in request["inputs"]:
        if item["name"] == "target_lengths":
            item["data"] = [-1, 1]
    problem = assert_protocol_error(infer(client, "ctc", request), 400, "target_lengths")
    assert problem["errors"][0]["loc"][:3] == ["body", "inputs", "target_lengths"]
    request = example_request(spec)
    request["inputs"] = [item for item in request["inputs"] if item["name"] != "target_lengths"]
    assert_protocol_error(infer(client, "ctc", request), 400, "target_lengths is required")


def test_a_probability_domain_error_is_400_suggesting_from_logits(client: TestClient) -> None:
    request = {"inputs": [tensor("predictions", [[2.0, -1.0]]), tensor("targets", [[1.0, 0.0]])]}
    assert_protocol_error(infer(client, "bce", request), 400, "from_logits")
    request["parameters"] = {"from_logits": True}
    assert infer(client, "bce", request).status_code == 200


# ---- limits: 413 -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_client() -> Iterator[TestClient]:
    """An app with a 16 KiB body limit and a 64-element limit."""
    app = create_app(settings=Settings(max_body_bytes=16384, max_elements=64), warm=lambda: 0)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_oversized_body_is_413(small_client: TestClient) -> None:
    body = json.dumps(mse_request(id="x" * 20000)).encode()
    assert_protocol_error(infer(small_client, "mse", body), 413, "16384")


def test_gzip_bomb_is_413(small_client: TestClient) -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)
    assert len(bomb) < 16384
    response = infer(small_client, "mse", bomb, {"Content-Encoding": "gzip"})
    assert_protocol_error(response, 413, "decompressed", "16384")


def test_too_many_elements_is_413(small_client: TestClient) -> None:
    request = {"inputs": [{**tensor("predictions", [0.0]), "shape": [1000, 1000]}]}
    assert_protocol_error(infer(small_client, "mse", request), 413, "LOSS_SERVICE_MAX_ELEMENTS")
