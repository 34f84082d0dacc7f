"""The Open Inference Protocol v2 (KServe v2 / Triton REST) through the real ASGI app.

Every loss is a model: its metadata, and its registry example scored through ``/v2`` (JSON
and Triton's binary tensor extension) gives the numbers of ``POST /v1/losses/{name}``. Every
invalid request is a 400 (404 unknown model, 413 over a limit) whose body carries the
protocol's ``error`` member beside the problem+json fields.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.v2.models import OUTPUTS, TENSOR_INPUTS, array_params
from service.app import create_app
from service.compute import engine
from service.losses.registry import REGISTRY, LossSpec
from service.ops.settings import Settings

HEADER_LENGTH = "Inference-Header-Content-Length"
DTYPES = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8"}
SPECS = list(REGISTRY.values())
MSE_PREDICTIONS = [[1.0, 2.0], [3.0, 5.0]]
MSE_TARGETS = [[1.5, 2.0], [2.0, 3.0]]

# ---- helpers (also used by the tritonclient and Node.js tests) -----------------------------


def tensor(name: str, values: Any, datatype: str = "FP64") -> dict[str, Any]:
    """A JSON request tensor with nested data."""
    return {
        "name": name,
        "shape": list(np.shape(values)),
        "datatype": datatype,
        "data": values,
    }


def example_request(spec: LossSpec) -> dict[str, Any]:
    """The registry example as an inference request: arrays as inputs (the loss's array params
    too), scalar params in ``parameters``."""
    example = dict(spec.example)
    parameters = dict(example.get("params") or {})
    inputs = [tensor(name, example[name]) for name in TENSOR_INPUTS if example.get(name)]
    for name, datatype in array_params(spec).items():
        if isinstance(parameters.get(name), list):
            inputs.append(tensor(name, parameters.pop(name), datatype))
    return {"inputs": inputs, "parameters": parameters}


def v1_example(client: TestClient, spec: LossSpec) -> dict[str, Any]:
    response = client.post(f"/v1/losses/{spec.name}", json=dict(spec.example))
    assert response.status_code == 200, response.text
    return response.json()


def read_outputs(content: bytes, header_length: str | None) -> tuple[dict, dict[str, np.ndarray]]:
    """The response header and its outputs as arrays, from JSON ``data`` or binary chunks."""
    length = len(content) if header_length is None else int(header_length)
    header = json.loads(content[:length])
    arrays, offset = {}, length
    for output in header["outputs"]:
        dtype = np.dtype(DTYPES[output["datatype"]])
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            values = np.array(output["data"], dtype=dtype)
        else:
            values = np.frombuffer(content[offset : offset + size], dtype=dtype)
            offset += size
        arrays[output["name"]] = values.reshape(output["shape"])
    assert offset == len(content), "the binary chunks must end at the end of the body"
    return header, arrays


def expected_outputs(v1: dict[str, Any]) -> dict[str, Any]:
    """The /v1 response's numbers under the v2 output names and shapes."""
    return {
        "per_sample": v1["per_sample"],
        "cost": [v1["cost"]],
        "gradient": v1["gradient"],
        "sum": [v1["sum"]],
        "weight_sum": [v1["weight_sum"]],
    }


def assert_same_numbers(
    outputs: dict[str, np.ndarray], v1: dict[str, Any], rtol: float = 1e-12
) -> None:
    """The v2 outputs equal the /v1 response's numbers (FP32 outputs: /v1's rounded to FP32)."""
    expected = expected_outputs(v1)
    assert outputs, "no outputs"
    for name, values in outputs.items():
        wanted = np.asarray(expected[name], dtype=values.dtype)
        np.testing.assert_allclose(values, wanted, rtol=rtol, atol=0, err_msg=name)


def binary_body(header: dict[str, Any], chunks: list[bytes]) -> tuple[bytes, dict[str, str]]:
    """A binary-extension request: the JSON header, then the chunks, and the length header."""
    encoded = json.dumps(header).encode()
    return encoded + b"".join(chunks), {HEADER_LENGTH: str(len(encoded))}


def binary_tensor(name: str, values: Any, datatype: str) -> tuple[dict[str, Any], bytes]:
    raw = np.asarray(values).astype(DTYPES[datatype]).tobytes()
    entry = {
        "name": name,
        "shape": list(np.shape(values)),
        "datatype": datatype,
        "parameters": {"binary_data_size": len(raw)},
    }
    return entry, raw


def infer(client: TestClient, model: str, body: Any, headers: dict[str, str] | None = None):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/v2/models/{model}/infer", content=content, headers=headers or {})


def assert_protocol_error(response, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["error"] == problem["detail"]
    assert {"type", "title", "detail"} <= problem.keys()
    for fragment in fragments:
        assert fragment in problem["error"], (fragment, problem["error"])
    return problem


def mse_request(**extra: Any) -> dict[str, Any]:
    return {
        "inputs": [tensor("predictions", MSE_PREDICTIONS), tensor("targets", MSE_TARGETS)],
        **extra,
    }


# ---- server, health, metadata ---------------------------------------------------------------


def test_server_metadata_and_health(client: TestClient) -> None:
    metadata = client.get("/v2").json()
    assert metadata["name"] == "loss-service"
    assert "binary_tensor_data" in metadata["extensions"]
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    ready = client.get("/v2/models/bce/ready")
    assert (ready.status_code, ready.json()) == (
        200,
        {"name": "binary_cross_entropy", "ready": True},
    )


def test_readiness_is_503_before_warm_up() -> None:
    app = create_app(warm=lambda: 0)
    test_client = TestClient(app, raise_server_exceptions=False)  # no lifespan: never warmed
    assert test_client.get("/v2/health/live").status_code == 200
    assert test_client.get("/v2/health/ready").status_code == 503
    assert test_client.get("/v2/models/mse/ready").status_code == 503


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_model_metadata(client: TestClient, spec: LossSpec) -> None:
    metadata = client.get(f"/v2/models/{spec.name}").json()
    assert metadata["name"] == spec.name
    assert metadata["versions"] == ["1"]
    names = [item["name"] for item in metadata["inputs"]]
    assert names == [*TENSOR_INPUTS, *array_params(spec)]
    assert [item["name"] for item in metadata["outputs"]] == list(OUTPUTS)
    for item in metadata["inputs"] + metadata["outputs"]:
        assert item["datatype"] in DTYPES
        assert all(dim == -1 or dim > 0 for dim in item["shape"]), item
    outputs = {item["name"]: item for item in metadata["outputs"]}
    assert outputs["cost"]["shape"] == [1]
    assert outputs["per_sample"]["shape"] == [-1]
    assert outputs["gradient"]["shape"] == metadata["inputs"][0]["shape"]
    versioned = client.get(f"/v2/models/{spec.name}/versions/1").json()
    assert versioned == metadata
    for alias in spec.aliases:
        assert client.get(f"/v2/models/{alias}").json()["name"] == spec.name


def test_integer_label_losses_declare_int64_targets(client: TestClient) -> None:
    for name in ("sparse_categorical_cross_entropy", "ctc", "multi_margin"):
        inputs = {item["name"]: item for item in client.get(f"/v2/models/{name}").json()["inputs"]}
        assert inputs["targets"]["datatype"] == "INT64", name
    ctc = {item["name"]: item for item in client.get("/v2/models/ctc").json()["inputs"]}
    assert ctc["target_lengths"]["datatype"] == "INT64"


@pytest.mark.parametrize("path", ["/v2/models/nope", "/v2/models/nope/ready"])
def test_unknown_model_is_404_with_close_matches(client: TestClient, path: str) -> None:
    problem = assert_protocol_error(client.get(path), 404, "unknown loss 'nope'", "mape")
    assert problem["errors"][0]["close_matches"] == ["mape"]


def test_unknown_model_and_version_on_infer_are_404(client: TestClient) -> None:
    assert_protocol_error(infer(client, "msee", mse_request()), 404, "'mse'")
    response = client.post("/v2/models/mse/versions/2/infer", content=json.dumps(mse_request()))
    assert_protocol_error(response, 404, "version")
    response = client.post("/v2/models/mse/versions/1/infer", content=json.dumps(mse_request()))
    assert response.status_code == 200


# ---- JSON inference: the same numbers as /v1 -----------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_every_example_matches_v1(client: TestClient, spec: LossSpec) -> None:
    response = infer(client, spec.name, example_request(spec))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    header, outputs = read_outputs(response.content, response.headers.get(HEADER_LENGTH))
    assert header["model_name"] == spec.name
    assert header["model_version"] == "1"
    v1 = v1_example(client, spec)
    assert header["parameters"] == {"reduction": "mean", "count": v1["count"]}
    assert list(outputs) == list(OUTPUTS)
    assert {name: output.dtype for name, output in outputs.items()} == dict.fromkeys(
        OUTPUTS, np.dtype("<f8")
    )
    assert_same_numbers(outputs, v1)


def test_flat_data_and_integer_targets_give_the_same_numbers(client: TestClient) -> None:
    spec = REGISTRY["sparse_categorical_cross_entropy"]
    request = example_request(spec)
    for item in request["inputs"]:
        item["data"] = np.ravel(item["data"]).tolist()
        if item["name"] == "targets":
            item["datatype"] = "INT64"
    response = infer(client, "sparse_cce", request)
    assert response.status_code == 200, response.text
    assert_same_numbers(read_outputs(response.content, None)[1], v1_example(client, spec))


def test_sum_reduction_and_scalar_params_in_parameters(client: TestClient) -> None:
    request = mse_request(parameters={"reduction": "sum"})
    request["inputs"].append(tensor("sample_weight", [1.0, 3.0]))
    _, outputs = read_outputs(infer(client, "mse", request).content, None)
    v1 = client.post(
        "/v1/losses/mse",
        json={
            "predictions": MSE_PREDICTIONS,
            "targets": MSE_TARGETS,
            "sample_weight": [1.0, 3.0],
            "reduction": "sum",
        },
    ).json()
    assert outputs["cost"][0] == 15.25 == v1["cost"]
    assert_same_numbers(outputs, v1)
    huber = infer(client, "huber", mse_request(parameters={"delta": 0.5}))
    v1 = client.post(
        "/v1/losses/huber",
        json={"predictions": MSE_PREDICTIONS, "targets": MSE_TARGETS, "params": {"delta": 0.5}},
    ).json()
    assert_same_numbers(read_outputs(huber.content, None)[1], v1)


def test_requested_outputs_only_and_no_gradient_computed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []
    original = engine.compute

    def spy(*args: Any, **kwargs: Any):
        calls.append(args[4])  # with_gradient
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "compute", spy)
    request = mse_request(id="batch-7", outputs=[{"name": "weight_sum"}, {"name": "cost"}])
    response = infer(client, "mse", request)
    header, outputs = read_outputs(response.content, None)
    assert [output["name"] for output in header["outputs"]] == ["weight_sum", "cost"]
    assert header["id"] == "batch-7"
    assert outputs["cost"][0] == pytest.approx(1.3125, rel=1e-15)  # (0.25 + 0 + 1 + 4) / 4
    assert calls == [False]
    infer(client, "mse", mse_request(outputs=[{"name": "gradient"}]))
    assert calls == [False, True]


def test_id_is_absent_when_not_sent(client: TestClient) -> None:
    header, _ = read_outputs(infer(client, "mse", mse_request()).content, None)
    assert "id" not in header


# ---- binary tensor extension -------------------------------------------------------------


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT32", "INT64"])
def test_binary_request_and_response_in_every_datatype(client: TestClient, datatype: str) -> None:
    predictions = [[1.0, 2.0], [3.0, 5.0]]  # exact in every datatype
    targets = [[1.0, 2.0], [2.0, 4.0]]
    entries, chunks = zip(
        binary_tensor("predictions", predictions, datatype),
        binary_tensor("targets", targets, datatype),
        binary_tensor("sample_weight", [1, 3], datatype),
        strict=True,
    )
    body, headers = binary_body(
        {"inputs": list(entries), "parameters": {"binary_data_output": True}}, list(chunks)
    )
    response = infer(client, "mse", body, headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    header, outputs = read_outputs(response.content, response.headers[HEADER_LENGTH])
    expected_type = "FP32" if datatype == "FP32" else "FP64"
    assert {output["datatype"] for output in header["outputs"]} == {expected_type}
    assert all("data" not in output for output in header["outputs"])
    v1 = client.post(
        "/v1/losses/mse",
        json={"predictions": predictions, "targets": targets, "sample_weight": [1, 3]},
    ).json()
    assert_same_numbers(outputs, v1)


def test_binary_and_json_inputs_and_outputs_mix(client: TestClient) -> None:
    entry, raw = binary_tensor("predictions", MSE_PREDICTIONS, "FP64")
    request = {
        "inputs": [entry, tensor("targets", MSE_TARGETS)],
        "outputs": [
            {"name": "cost", "parameters": {"binary_data": False}},
            {"name": "gradient", "parameters": {"binary_data": True}},
            {"name": "per_sample"},
        ],
    }
    response = infer(client, "mse", *binary_body(request, [raw]))
    assert response.status_code == 200, response.text
    header, outputs = read_outputs(response.content, response.headers[HEADER_LENGTH])
    kinds = {output["name"]: "data" in output for output in header["outputs"]}
    assert kinds == {"cost": True, "gradient": False, "per_sample": True}
    v1 = client.post(
        "/v1/losses/mse", json={"predictions": MSE_PREDICTIONS, "targets": MSE_TARGETS}
    ).json()
    assert_same_numbers(outputs, v1)


def test_binary_array_param_and_integer_targets(client: TestClient) -> None:
    spec = REGISTRY["ctc"]
    example = spec.example
    pieces = [
        binary_tensor("predictions", example["predictions"], "FP32"),
        binary_tensor("targets", example["targets"], "INT64"),
        binary_tensor("target_lengths", example["params"]["target_lengths"], "INT32"),
    ]
    entries, chunks = zip(*pieces, strict=True)
    response = infer(client, "ctc", *binary_body({"inputs": list(entries)}, list(chunks)))
    assert response.status_code == 200, response.text
    _, outputs = read_outputs(response.content, response.headers.get(HEADER_LENGTH))
    # FP32 predictions: the same float64 computation on float32-rounded inputs, FP32 outputs.
    rounded = np.asarray(example["predictions"], dtype="<f4").astype(float).tolist()
    v1 = client.post("/v1/losses/ctc", json={**example, "predictions": rounded}).json()
    assert outputs["cost"].dtype == np.dtype("<f4")
    assert_same_numbers(outputs, v1)


# ---- Content-Encoding and Content-Type ---------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),  # raw DEFLATE
    ],
    ids=["gzip", "deflate", "raw-deflate"],
)
def test_compressed_bodies(client: TestClient, encoding: str, compress) -> None:
    entry, raw = binary_tensor("predictions", MSE_PREDICTIONS, "FP64")
    body, headers = binary_body({"inputs": [entry, tensor("targets", MSE_TARGETS)]}, [raw])
    response = infer(client, "mse", compress(body), {**headers, "Content-Encoding": encoding})
    assert response.status_code == 200, response.text
    plain = infer(client, "mse", body, headers)
    assert response.content == plain.content


def test_no_content_type_and_any_content_type(client: TestClient) -> None:
    body = json.dumps(mse_request()).encode()
    bare = infer(client, "mse", body)
    assert "content-type" not in bare.request.headers
    assert bare.status_code == 200, bare.text
    typed = infer(client, "mse", body, {"Content-Type": "application/octet-stream"})
    assert typed.content == bare.content


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
