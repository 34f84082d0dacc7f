"""The Open Inference Protocol v2 (KServe v2 / Triton REST) as the tests speak it: request
tensors (JSON and Triton's binary extension), reading the outputs back, and the check that they
carry the numbers of ``POST /v1/losses/{name}``. Shared by the /v2 tests through the ASGI app
(tests/api/test_v2_*.py) and against real servers (tritonclient, Node.js: tests/system/).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from service.api.v2.models import TENSOR_INPUTS, array_params
from service.losses.registry import LossSpec

HEADER_LENGTH = "Inference-Header-Content-Length"
DTYPES = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8"}
MSE_PREDICTIONS = [[1.0, 2.0], [3.0, 5.0]]
MSE_TARGETS = [[1.5, 2.0], [2.0, 3.0]]


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
