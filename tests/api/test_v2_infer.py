"""/v2 inference through the real ASGI app: every loss's registry example scored through ``/v2``
(JSON and Triton's binary tensor extension, in every datatype, compressed or not) gives the
numbers of ``POST /v1/losses/{name}``.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.v2.models import OUTPUTS
from service.compute import engine
from service.losses.registry import REGISTRY, LossSpec
from tests.support.oip import (
    HEADER_LENGTH,
    MSE_PREDICTIONS,
    MSE_TARGETS,
    assert_same_numbers,
    binary_body,
    binary_tensor,
    example_request,
    infer,
    mse_request,
    read_outputs,
    tensor,
    v1_example,
)

SPECS = list(REGISTRY.values())


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
