"""NVIDIA's ``tritonclient.grpc`` against a real server (``python -m service --grpc-port``):
health, metadata, inference in FP32 / FP64 / INT64 (raw contents, as the client sends them;
gzip too) with the numbers of ``POST /v1/losses/{name}`` on the same server, and every error
status the API names, with the REST problem's ``detail`` as its message.

The tritonclient that installs beside protobuf 7 (2.41.0; releases from 2.41.1 on require
protobuf below 5, 6 or 7) refuses float request parameters on the client side (2.73 sends them as
``double_param``): float params are tested with grpc's own client (tests/api/test_v2_grpc.py).

The client runs in its own process (tests/system/tritonclient_grpc.py): its stubs and the
service's are both package ``inference``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.oip import assert_same_numbers
from tests.system.server import clean_env, fetch, free_port, running

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        importlib.util.find_spec("tritonclient") is None,
        reason="tritonclient[grpc] is not installed (pip install -e '.[dev]')",
    ),
]

CLIENT = Path(__file__).with_name("tritonclient_grpc.py")
RNG = np.random.default_rng(20261205)
ARRAY_PARAMS = {"class_weight", "target_lengths"}
LIMITS = {"LOSS_SERVICE_MAX_BODY_BYTES": "4000000", "LOSS_SERVICE_MAX_ELEMENTS": "300000"}


def serve(**variables: str) -> Any:
    http, grpc = free_port(), free_port()
    args = ["--port", str(http), "--grpc-port", str(grpc)]
    return running(args, clean_env(**variables)), http, grpc


@pytest.fixture(scope="module")
def ports() -> Iterator[tuple[int, int]]:
    server, http, grpc = serve(**LIMITS)
    with server as running_server:
        running_server.wait_ready()
        yield http, grpc


def calls(grpc_port: int, *batch: dict[str, Any], headers: dict | None = None) -> list[dict]:
    """Run ``batch`` through tritonclient.grpc in its own process; one result per call."""
    request = {"url": f"127.0.0.1:{grpc_port}", "headers": headers or {}, "calls": list(batch)}
    done = subprocess.run(
        [sys.executable, str(CLIENT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def tensor(name: str, values: Any, datatype: str) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "values": np.asarray(values).tolist()}


def v1(http_port: int, loss: str, inputs: dict[str, Any], parameters: dict[str, Any]) -> dict:
    """The same data through /v1 on the same server."""
    params = {k: v for k, v in parameters.items() if k != "reduction"}
    body: dict[str, Any] = {"params": params, "reduction": parameters.get("reduction", "mean")}
    for name, values in inputs.items():
        target = params if name in ARRAY_PARAMS else body
        target[name] = np.asarray(values).tolist()
    status, payload = fetch(http_port, "POST", f"/v1/losses/{loss}", body)
    assert status == 200, payload
    return json.loads(payload)


def arrays(result: dict[str, Any]) -> dict[str, np.ndarray]:
    dtypes = {"FP32": np.float32, "FP64": np.float64}
    return {
        name: np.array(output["values"], dtype=dtypes[output["datatype"]])
        for name, output in result["outputs"].items()
    }


CASES = {
    "mse-fp64-weighted": (
        "mse",
        {
            "predictions": RNG.normal(size=(8, 3)),
            "targets": RNG.normal(size=(8, 3)),
            "sample_weight": RNG.uniform(0.5, 2.0, size=8),
        },
        {"predictions": "FP64", "targets": "FP64", "sample_weight": "FP64"},
        {},
    ),
    "sparse-cce-int64-class-weight": (
        "sparse_categorical_cross_entropy",
        {
            "predictions": RNG.normal(size=(6, 4)),
            "targets": np.array([0, 3, 1, 2, 3, 0]),
            "class_weight": np.array([1.0, 2.0, 0.5, 1.5]),
        },
        {"predictions": "FP64", "targets": "INT64", "class_weight": "FP64"},
        {"from_logits": True, "ignore_index": 2},
    ),
    "ctc-int64-lengths-sum": (
        "ctc",
        {
            "predictions": RNG.dirichlet(np.ones(3), size=(2, 3)),
            "targets": np.array([[1, 2], [1, 0]]),
            "target_lengths": np.array([2, 1]),
        },
        {"predictions": "FP64", "targets": "INT64", "target_lengths": "INT64"},
        {"reduction": "sum"},
    ),
    "huber-fp32": (
        "huber",
        {
            # FP32 values, so /v1 (float64 JSON) computes on exactly what gRPC receives.
            "predictions": RNG.normal(size=(5, 2)).astype(np.float32).astype(np.float64),
            "targets": RNG.normal(size=(5, 2)).astype(np.float32).astype(np.float64),
        },
        {"predictions": "FP32", "targets": "FP32"},
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_infer_gives_the_numbers_of_v1(ports: tuple[int, int], case: str) -> None:
    http, grpc = ports
    loss, inputs, datatypes, parameters = CASES[case]
    call = {
        "kind": "infer",
        "model": loss,
        "id": f"case-{case}",
        "inputs": [tensor(name, values, datatypes[name]) for name, values in inputs.items()],
        "parameters": parameters,
    }
    plain, gzipped = calls(grpc, call, {**call, "compression": "gzip"})
    expected = v1(http, loss, inputs, parameters)
    for result in (plain, gzipped):
        assert result["ok"], result
        assert result["id"] == f"case-{case}"
        assert result["model_name"] == loss
        assert result["parameters"] == {
            "reduction": parameters.get("reduction", "mean"),
            "count": expected["count"],
        }
        outputs = arrays(result)
        assert list(outputs) == ["per_sample", "cost", "gradient", "sum", "weight_sum"]
        fp32 = datatypes["predictions"] == "FP32"
        assert {o["datatype"] for o in result["outputs"].values()} == {"FP32" if fp32 else "FP64"}
        assert_same_numbers(outputs, expected, rtol=1e-6 if fp32 else 0)


def test_health_and_metadata(ports: tuple[int, int]) -> None:
    _, grpc = ports
    health, server, model = calls(
        grpc,
        {"kind": "health", "model": "cross_entropy"},
        {"kind": "server_metadata"},
        {"kind": "model_metadata", "model": "cross_entropy"},
    )
    assert health == {"ok": True, "live": True, "ready": True, "model_ready": True}
    assert server["name"] == "loss-service" and server["ok"]
    assert model["name"] == "sparse_categorical_cross_entropy"
    assert [item["name"] for item in model["inputs"]][:2] == ["predictions", "targets"]
    assert model["inputs"][1]["datatype"] == "INT64"


def failure(result: dict[str, Any], status: str, *fragments: str) -> None:
    assert not result["ok"], result
    assert result["status"] == f"StatusCode.{status}", result
    for fragment in fragments:
        assert fragment in result["message"], result["message"]


def test_every_error_status(ports: tuple[int, int]) -> None:
    _, grpc = ports

    def mse(predictions: Any, targets: Any, **extra: Any) -> dict[str, Any]:
        return {
            "kind": "infer",
            "model": extra.pop("model", "mse"),
            "inputs": [
                tensor("predictions", predictions, "FP64"),
                tensor("targets", targets, "FP64"),
            ],
            **extra,
        }

    big = np.zeros(260_000)  # 2 x 2.08 MB: past the 4 MB message limit
    many = np.zeros(160_000)  # 320,000 elements in 2.56 MB: past the element limit only
    results = calls(
        grpc,
        mse([[1.0, 2.0]], [[1.0], [2.0]]),
        mse([1.0, float("nan")], [1.0, 2.0]),
        mse([1.0], [2.0], parameters={"deltta": 1}, model="huber"),
        mse([1.0], [2.0], model="msee"),
        mse(big, big),
        mse(many, many),
        mse([3.0], [1.0]),
    )
    failure(results[0], "INVALID_ARGUMENT", "targets has shape (2, 1) but predictions has (1, 2)")
    failure(results[1], "INVALID_ARGUMENT", "predictions[1]")
    failure(results[2], "INVALID_ARGUMENT", "deltta")
    failure(results[3], "NOT_FOUND", "unknown loss 'msee'", "'mse'")
    failure(results[4], "RESOURCE_EXHAUSTED", "4000000")
    failure(results[5], "RESOURCE_EXHAUSTED", "320000 elements", "LOSS_SERVICE_MAX_ELEMENTS")
    assert results[6]["ok"] and arrays(results[6])["cost"][0] == 4.0  # still serving


def test_api_keys_as_metadata() -> None:
    server, _, grpc = serve(LOSS_SERVICE_API_KEYS="key-a,key-b")
    with server as running_server:
        running_server.wait_ready()
        infer = {
            "kind": "infer",
            "model": "mae",
            "inputs": [
                tensor("predictions", [1.0, -2.0], "FP64"),
                tensor("targets", [0.0, 0.0], "FP64"),
            ],
        }
        results = calls(
            grpc,
            infer,
            {**infer, "headers": {"authorization": "Bearer wrong"}},
            {**infer, "headers": {"authorization": "Bearer key-a"}},
            {**infer, "headers": {"x-api-key": "key-b"}},
            {"kind": "health", "model": "mae", "headers": {"x-api-key": "key-b"}},
        )
    failure(results[0], "UNAUTHENTICATED", "API key")
    failure(results[1], "UNAUTHENTICATED", "not valid")
    for result in results[2:4]:
        assert result["ok"] and arrays(result)["cost"][0] == 1.5
    assert results[4]["ready"] and results[4]["model_ready"]
