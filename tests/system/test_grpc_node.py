"""examples/grpc_client.js (Node.js, @grpc/grpc-js and @grpc/proto-loader loading the service's
proto) against a real server's gRPC port: its ModelInfer calls, raw FP64 and FP32 contents and
typed contents, get the numbers of ``POST /v1/losses/{name}``; its metadata is REST's; an
unknown model is NOT_FOUND with REST's message.

The npm packages are installed with ``npm ci`` from examples/package-lock.json into a temporary
directory (the script finds them through NODE_PATH); without node, npm or the npm registry the
tests that need them skip, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.api.v2.models import OUTPUTS
from service.losses.registry import lookup
from tests.support.oip import assert_same_numbers
from tests.support.paths import ROOT
from tests.system.server import clean_env, fetch, free_port, running

EXAMPLES = ROOT / "examples"
SCRIPT = EXAMPLES / "grpc_client.js"
PACKAGES = ("@grpc/grpc-js", "@grpc/proto-loader")
NODE = shutil.which("node")
NPM = shutil.which("npm")
INSTALL_TIMEOUT = 300  # s, for npm ci
SCRIPT_TIMEOUT = 120  # s, for the script's whole run
ARRAY_PARAMS = {"class_weight", "pos_weight", "input_lengths", "target_lengths"}
CASES = ("mse-fp64", "mse-fp32", "bce-logits", "cross-entropy", "cross-entropy-typed")
FP32_RTOL = 1e-6  # the outputs are /v1's float64 numbers rounded to float32
FP64_RTOL = 1e-12

pytestmark = pytest.mark.system


def test_the_lock_file_pins_the_packages_of_package_json() -> None:
    """``npm ci`` installs exactly these versions (and fails on a lock out of step)."""
    manifest = json.loads((EXAMPLES / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((EXAMPLES / "package-lock.json").read_text(encoding="utf-8"))
    wanted = manifest["dependencies"]
    assert sorted(wanted) == sorted(PACKAGES)
    assert lock["packages"][""]["dependencies"] == wanted
    for name, version in wanted.items():
        assert version[0].isdigit(), f"{name} is pinned to one version, not {version!r}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lock file's packages, installed by ``npm ci`` outside the repository."""
    if NODE is None or NPM is None:
        pytest.skip(
            "node or npm is not on PATH: the Node.js gRPC client cannot run here "
            "(Debian: apt-get install nodejs npm; .ci/run does it as root)"
        )
    where = tmp_path_factory.mktemp("grpc_node")
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(EXAMPLES / name, where / name)
    command = [NPM, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--fetch-retries=1"]
    try:
        completed = subprocess.run(
            command,
            cwd=where,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
            env={**os.environ, "npm_config_update_notifier": "false"},
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm ci did not finish in {INSTALL_TIMEOUT} s: is the npm registry reachable?")
    if completed.returncode != 0:
        errors = [line.strip() for line in completed.stderr.splitlines() if line.strip()]
        pytest.skip(
            f"npm ci failed (exit {completed.returncode}), so the Node.js gRPC client cannot "
            f"run (no network to the npm registry?): {' | '.join(errors[:4])}"
        )
    return where / "node_modules"


@pytest.fixture(scope="module")
def ports(node_modules: Path) -> Iterator[tuple[int, int]]:
    """A server's HTTP and gRPC ports (127.0.0.1), ready."""
    http_port = free_port()
    grpc_port = free_port()
    while grpc_port == http_port:
        grpc_port = free_port()
    args = ["--port", str(http_port), "--grpc-port", str(grpc_port)]
    with running(args, clean_env()) as server:
        server.wait_ready()
        yield http_port, grpc_port


@pytest.fixture(scope="module")
def printed(node_modules: Path, ports: tuple[int, int]) -> dict[str, Any]:
    """What the script prints, run once against the server."""
    assert NODE is not None
    env = clean_env(NODE_PATH=str(node_modules))
    for name in ("grpc_proxy", "GRPC_PROXY"):  # grpc-js would route through it
        env.pop(name, None)
    completed = subprocess.run(
        [NODE, str(SCRIPT), f"127.0.0.1:{ports[1]}"],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def get_json(port: int, method: str, path: str, body: object = None) -> tuple[int, Any]:
    status, payload = fetch(port, method, path, body)
    return status, json.loads(payload)


def v1_answer(port: int, sent: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/losses/{model}`` for the batch the script sent (FP32 inputs rounded to
    float32, as the wire carried them)."""
    params = {key: value for key, value in sent["parameters"].items() if key != "reduction"}
    body: dict[str, Any] = {"params": params, "reduction": sent["parameters"]["reduction"]}
    for item in sent["inputs"]:
        values = np.asarray(item["data"], dtype=np.float32 if item["datatype"] == "FP32" else None)
        nested = values.reshape(item["shape"]).tolist()
        (params if item["name"] in ARRAY_PARAMS else body)[item["name"]] = nested
    status, answer = get_json(port, "POST", f"/v1/losses/{sent['model']}", body)
    assert status == 200, answer
    return answer


def test_the_script_scores_every_case(printed: dict[str, Any]) -> None:
    assert [entry["request"]["id"] for entry in printed["calls"]] == list(CASES)
    encodings = {entry["request"]["encoding"] for entry in printed["calls"]}
    assert encodings == {"raw", "contents"}


def test_server_ready_and_model_metadata_are_restful(
    printed: dict[str, Any], ports: tuple[int, int]
) -> None:
    assert printed["ready"] is True
    status, metadata = get_json(ports[0], "GET", "/v2/models/cross_entropy")
    assert status == 200, metadata
    assert printed["metadata"] == metadata


@pytest.mark.parametrize("case", CASES)
def test_model_infer_gets_the_v1_numbers(
    printed: dict[str, Any], ports: tuple[int, int], case: str
) -> None:
    (entry,) = [entry for entry in printed["calls"] if entry["request"]["id"] == case]
    sent, response = entry["request"], entry["response"]
    float_type = sent["inputs"][0]["datatype"]
    assert response["id"] == case
    assert response["model_name"] == lookup(sent["model"]).name
    assert response["model_version"] == "1"
    assert [output["name"] for output in response["outputs"]] == (sent["outputs"] or list(OUTPUTS))
    assert {output["datatype"] for output in response["outputs"]} == {float_type}
    v1 = v1_answer(ports[0], sent)
    assert response["parameters"] == {"reduction": v1["reduction"], "count": v1["count"]}
    assert v1["reduction"] == sent["parameters"]["reduction"]
    dtype = np.float32 if float_type == "FP32" else np.float64
    outputs = {
        output["name"]: np.asarray(output["data"], dtype=dtype).reshape(output["shape"])
        for output in response["outputs"]
    }
    rtol = FP32_RTOL if float_type == "FP32" else FP64_RTOL
    assert_same_numbers(outputs, v1, rtol=rtol)


def test_an_unknown_model_is_not_found_with_the_rest_message(
    printed: dict[str, Any], ports: tuple[int, int]
) -> None:
    error = printed["error"]
    assert (error["code"], error["status"]) == (5, "NOT_FOUND")
    status, problem = get_json(ports[0], "POST", "/v2/models/no_such_loss/infer", {"inputs": []})
    assert status == 404, problem
    assert error["details"] == problem["error"]
    assert "unknown loss 'no_such_loss'" in error["details"]
