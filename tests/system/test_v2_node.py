"""examples/oip_binary_request.js (Node.js, no npm packages) against a real server: its
hand-built binary request gets the numbers of ``POST /v1/losses/{name}``."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.support.oip import assert_same_numbers
from tests.support.paths import ROOT
from tests.system.server import clean_env, fetch, free_port, running

SCRIPT = ROOT / "examples" / "oip_binary_request.js"
NODE = shutil.which("node")
ARRAY_PARAMS = {"class_weight", "pos_weight", "input_lengths", "target_lengths"}

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        NODE is None, reason="node is not on PATH: the Node.js example cannot run here"
    ),
]


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    chosen = free_port()
    with running(["--port", str(chosen)], clean_env()) as server:
        server.wait_ready()
        yield chosen


def run_script(port: int, float_type: str) -> dict[str, Any]:
    assert NODE is not None
    completed = subprocess.run(
        [NODE, str(SCRIPT), f"http://127.0.0.1:{port}", float_type],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def v1_equivalent(port: int, sent: dict[str, Any]) -> dict[str, Any]:
    """The request the script sent, as /v1 takes it (FP32 inputs rounded as the wire did)."""
    params = {k: v for k, v in sent["parameters"].items() if k != "reduction"}
    body: dict[str, Any] = {"params": params, "reduction": sent["parameters"]["reduction"]}
    for item in sent["inputs"]:
        values = np.asarray(item["data"], dtype=np.float32 if item["datatype"] == "FP32" else None)
        nested = values.reshape(item["shape"]).tolist()
        (params if item["name"] in ARRAY_PARAMS else body)[item["name"]] = nested
    status, payload = fetch(port, "POST", f"/v1/losses/{sent['model']}", body)
    assert status == 200, payload
    return json.loads(payload)


@pytest.mark.parametrize("float_type", ["FP64", "FP32"])
def test_the_node_script_gets_the_v1_numbers(port: int, float_type: str) -> None:
    printed = run_script(port, float_type)
    response = printed["response"]
    assert response["id"] == "node-1"
    assert response["model_name"] == "sparse_categorical_cross_entropy"
    dtype = np.float32 if float_type == "FP32" else np.float64
    outputs = {
        output["name"]: np.asarray(output["data"], dtype=dtype).reshape(output["shape"])
        for output in response["outputs"]
    }
    assert {output["datatype"] for output in response["outputs"]} == {float_type}
    assert_same_numbers(outputs, v1_equivalent(port, printed["request"]))
