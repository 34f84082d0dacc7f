"""NVIDIA's own client (``tritonclient[http]``) against a real server: ``python -m service``.

Health, model metadata and inference with JSON and binary tensors, both ways, give the same
numbers as ``POST /v1/losses/{name}`` on the same server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.support.oip import assert_same_numbers
from tests.system.server import clean_env, fetch, free_port, running

pytestmark = pytest.mark.system

httpclient = pytest.importorskip(
    "tritonclient.http", reason="tritonclient[http] is not installed (pip install -e '.[dev]')"
)
triton_utils = pytest.importorskip("tritonclient.utils")

RNG = np.random.default_rng(20240607)
CTC_PREDICTIONS = [
    [[0.5, 0.3, 0.2], [0.4, 0.1, 0.5], [0.6, 0.3, 0.1]],
    [[0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4]],
]
CASES: dict[str, dict[str, Any]] = {
    "mse": {
        "loss": "mse",
        "inputs": {
            "predictions": RNG.normal(size=(8, 3)),
            "targets": RNG.normal(size=(8, 3)),
            "sample_weight": RNG.uniform(0.5, 2.0, size=8),
        },
        "parameters": {},
    },
    "sparse_categorical_cross_entropy": {
        "loss": "sparse_categorical_cross_entropy",
        "inputs": {
            "predictions": RNG.normal(size=(6, 4)),
            "targets": np.array([0, 3, 1, 2, 3, 0], dtype=np.int64),
            "class_weight": np.array([1.0, 2.0, 0.5, 1.5]),
        },
        "parameters": {"from_logits": True},
    },
    "ctc": {
        "loss": "ctc",
        "inputs": {
            "predictions": np.array(CTC_PREDICTIONS),
            "targets": np.array([[1, 2], [1, 0]], dtype=np.int64),
            "target_lengths": np.array([2, 1], dtype=np.int64),
        },
        "parameters": {},
    },
}
ARRAY_PARAMS = {"class_weight", "target_lengths"}
OUTPUTS = ("per_sample", "cost", "gradient", "sum", "weight_sum")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    chosen = free_port()
    with running(["--port", str(chosen)], clean_env()) as server:
        server.wait_ready()
        yield chosen


@pytest.fixture
def triton(port: int) -> Iterator[Any]:
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{port}")
    try:
        yield client
    finally:
        client.close()


def v1(port: int, case: dict[str, Any]) -> dict[str, Any]:
    """The same request through /v1 on the same server."""
    inputs = case["inputs"]
    params = dict(case["parameters"])
    body: dict[str, Any] = {"params": params}
    for name, values in inputs.items():
        if name in ARRAY_PARAMS:
            params[name] = values.tolist()
        else:
            body[name] = values.tolist()
    status, payload = fetch(port, "POST", f"/v1/losses/{case['loss']}", body)
    assert status == 200, payload
    return json.loads(payload)


def infer_inputs(inputs: dict[str, np.ndarray], binary: bool) -> list:
    """tritonclient inputs, each with the datatype of its NumPy array."""
    prepared = []
    for name, values in inputs.items():
        datatype = triton_utils.np_to_triton_dtype(values.dtype)
        item = httpclient.InferInput(name, list(values.shape), datatype)
        item.set_data_from_numpy(values, binary_data=binary)
        prepared.append(item)
    return prepared


def test_health_and_metadata(triton: Any) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready("cross_entropy")
    metadata = triton.get_server_metadata()
    assert "binary_tensor_data" in metadata["extensions"]
    model = triton.get_model_metadata("cross_entropy")
    assert model["name"] == "sparse_categorical_cross_entropy"
    assert [item["name"] for item in model["outputs"]] == list(OUTPUTS)


@pytest.mark.parametrize("binary_out", [True, False], ids=["binary-out", "json-out"])
@pytest.mark.parametrize("binary_in", [True, False], ids=["binary-in", "json-in"])
@pytest.mark.parametrize("name", list(CASES))
def test_infer_matches_v1(
    triton: Any, port: int, name: str, binary_in: bool, binary_out: bool
) -> None:
    case = CASES[name]
    outputs = [
        httpclient.InferRequestedOutput(output, binary_data=binary_out) for output in OUTPUTS
    ]
    result = triton.infer(
        case["loss"],
        infer_inputs(case["inputs"], binary_in),
        outputs=outputs,
        request_id="42",
        parameters=case["parameters"],
    )
    response = result.get_response()
    assert response["id"] == "42"
    assert response["model_name"] == case["loss"]
    arrays = {output: result.as_numpy(output) for output in OUTPUTS}
    assert all(array.dtype == np.float64 for array in arrays.values())
    assert_same_numbers(arrays, v1(port, case))


def test_default_outputs_come_back_binary_and_fp32_stays_fp32(triton: Any, port: int) -> None:
    """No requested outputs: tritonclient asks for every output in binary."""
    case = CASES["mse"]
    single = {name: values.astype(np.float32) for name, values in case["inputs"].items()}
    result = triton.infer("mse", infer_inputs(single, binary=True))
    arrays = {output: result.as_numpy(output) for output in OUTPUTS}
    assert all(array.dtype == np.float32 for array in arrays.values())
    # The service computes in float64 on the FP32 inputs and rounds the outputs to FP32.
    widened = {name: values.astype(np.float64) for name, values in single.items()}
    assert_same_numbers(arrays, v1(port, {**case, "inputs": widened}))


def test_gzip_request_sum_reduction_and_only_the_cost(triton: Any, port: int) -> None:
    case = CASES["sparse_categorical_cross_entropy"]
    result = triton.infer(
        case["loss"],
        infer_inputs(case["inputs"], binary=True),
        outputs=[httpclient.InferRequestedOutput("cost", binary_data=False)],
        parameters={**case["parameters"], "reduction": "sum"},
        request_compression_algorithm="gzip",
    )
    assert [output["name"] for output in result.get_response()["outputs"]] == ["cost"]
    expected = v1(port, case)["sum"]  # the cost under reduction "sum"
    np.testing.assert_allclose(result.as_numpy("cost"), [expected], rtol=1e-12, atol=0)


def test_errors_reach_the_client_as_its_exception(triton: Any) -> None:
    with pytest.raises(triton_utils.InferenceServerException, match="unknown loss 'msee'"):
        triton.get_model_metadata("msee")
    case = CASES["mse"]
    with pytest.raises(
        triton_utils.InferenceServerException, match="unknown parameter 'delta'"
    ) as caught:
        triton.infer("mse", infer_inputs(case["inputs"], binary=True), parameters={"delta": 1.0})
    assert caught.value.status() == "400"
